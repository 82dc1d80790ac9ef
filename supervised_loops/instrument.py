"""Instrumentation hooks: how metrics and traces see each iteration.

Lifecycle changes (started, stopped, failed, restarted, escalated) reach
observers through the events hub. Iterations do not: a successful iteration
is not an event, so that a loop with nobody watching pays nothing for it.
Metrics and traces still need every iteration (its duration, its lateness,
its outcome), so the loop engine calls the one process-wide
`Instrumentation` installed here, when there is one.

The contract for the hot path: when nothing is installed, an iteration costs
one module-attribute read and an ``is None`` test, and allocates nothing.
When something is installed, the engine allocates nothing for it either: it
passes the iteration's values as plain arguments (a record object per
iteration cost more than the rest of the hook together), and it makes one
call per iteration, at its end, unless the instrumentation asks to be told
of starts too (`Instrumentation.observes_starts`: a tracer that opens a span
around the body does).

Which instrumentation hears of an iteration: the one installed when the
iteration began, start and end alike. One installed while an iteration runs
hears of the iterations that begin after it; one replaced while an iteration
runs still gets that iteration's end (its span ended, its context detached).
One that raised is uninstalled and hears nothing more of the iteration it
raised in.

This module is a leaf of the package: it imports nothing from
supervised_loops, so the core can call it and the telemetry extras (which
sit above everything) can implement it.
"""

from __future__ import annotations

import logging
import weakref
from typing import Any, Literal, Protocol

__all__ = [
    "Instrumentation",
    "Outcome",
    "SkipReason",
    "Trigger",
    "current",
    "install",
    "log_broken",
]

Trigger = Literal["schedule", "run-now", "retry"]
"""What started an iteration: its scheduled time, a RunNow message, or a retry."""

Outcome = Literal["ok", "retried", "failed", "cancelled"]
"""How an iteration ended: returned; raised a whitelisted error that will be
retried; raised an error that ends the run (it goes to the error handler and
the parent); cancelled (Stop, Cancel, Restart, a lost lease, shutdown)."""

SkipReason = Literal["overlap", "missed", "paused", "standby"]
"""Why a due iteration did not run: the overlap limit was reached; its slot
was missed and the policy is to skip; the loop is paused; the loop's lease
is held elsewhere."""

_METHODS = ("iteration_started", "iteration_ended", "iteration_skipped")


class Instrumentation(Protocol):
    """What the loop engine calls, on the event loop's thread, never awaited.

    Implementations must be fast and must not raise: an exception raised here
    is logged by the engine and the instrumentation is uninstalled, so a
    broken exporter can never break the loops it observes.

    The engine passes every argument positionally, in the order below (an
    implementation may name its parameters as it likes). An iteration is
    described by the same values at its start and its end:

    * ``path``: the actor's path in its tree (``"app/ingest/poller"``);
    * ``name``: the loop's name (the body's ``__qualname__`` unless named);
    * ``iteration``: the loop's iteration counter for this call (``current_loop``);
    * ``trigger``: what started it (see `Trigger`);
    * ``attempt``: 1 for a first try, 2 and more for retries of the same slot;
    * ``scheduled``: when it was due, in seconds on the event loop's clock
      (``loop.time()``, virtual under virtual time);
    * ``started``: when the body was called, same clock; ``started -
      scheduled`` is the lag.
    """

    @property
    def observes_starts(self) -> bool:
        """Whether the engine calls `iteration_started` before each body.

        False saves a call per iteration, for an instrumentation that only
        records ended iterations (``started`` and ``scheduled`` are passed
        to `iteration_ended` too): the engine then passes None as the token.
        A class attribute is the usual way to say it.
        """

    def iteration_started(
        self,
        path: str,
        name: str,
        iteration: int,
        trigger: Trigger,
        attempt: int,
        scheduled: float,
        started: float,
    ) -> object:
        """An iteration's body is about to be called; returns a token (a span, say).

        Called only when `observes_starts` is true, in the task that runs the
        body, just before it: a context made current here is current in the body.
        """

    def iteration_ended(
        self,
        path: str,
        name: str,
        iteration: int,
        trigger: Trigger,
        attempt: int,
        scheduled: float,
        started: float,
        ended: float,
        outcome: Outcome,
        error: BaseException | None,
        token: object,
    ) -> None:
        """The iteration ended (``ended`` on the event loop's clock).

        ``token`` is what `iteration_started` returned for it (None when
        starts are not observed). ``error`` is what the body raised, None
        for ``"ok"``. Called in the body's task, just after it.
        """

    def iteration_skipped(self, path: str, name: str, reason: SkipReason) -> None:
        """A due iteration did not run, for ``reason``."""


installed: Instrumentation | None = None
"""The instrumentation in force, or None. Read it, do not assign it: use `install`."""


def install(instrumentation: Instrumentation | None) -> Instrumentation | None:
    """Put ``instrumentation`` in force for the whole process; None removes it.

    Returns the one it replaces, so a test can put it back. Iterations
    already running are still reported to the one they began with.

    Raises:
        TypeError: ``instrumentation`` lacks a method of the protocol, or
            its ``observes_starts`` is not a bool (checked here, once, so
            that the engine never meets a half-made instrumentation).
    """
    global installed
    if instrumentation is not None:
        missing = [m for m in _METHODS if not callable(getattr(instrumentation, m, None))]
        if missing:
            raise TypeError(
                f"'instrumentation' must have the methods {', '.join(_METHODS)}"
                f" (got {instrumentation!r}, without {', '.join(missing)})"
            )
        observes = getattr(instrumentation, "observes_starts", None)
        if not isinstance(observes, bool):
            raise TypeError(f"'instrumentation.observes_starts' must be a bool (got {observes!r})")
    previous = installed
    installed = instrumentation
    return previous


def current() -> Instrumentation | None:
    """The instrumentation in force, or None."""
    return installed


# Instrumentations that raised, so that one with several iterations in
# flight is logged once, not once per iteration (weakly: forgotten with them).
_failed: weakref.WeakSet[Any] = weakref.WeakSet()


def log_broken(
    instrumentation: object, error: BaseException, *, detached: bool, logger: logging.Logger
) -> None:
    """Log that ``instrumentation`` raised ``error`` and is uninstalled.

    Logged when it is detached (``detached``: the caller has just
    uninstalled it), and not again when it raises again for the iterations
    it saw begin and still gets the ends of; installed anew and raising, it
    is logged anew. The one rule for the engine's hook and for the telemetry
    fan-out.
    """
    if not detached:
        try:
            if instrumentation in _failed:
                return
        except TypeError:  # not weakly referenceable: logged each time it raises
            pass
    try:
        _failed.add(instrumentation)
    except TypeError:
        pass
    logger.error("instrumentation %r raised; it is uninstalled", instrumentation, exc_info=error)
