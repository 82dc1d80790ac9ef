"""Instrumentation hooks: how metrics and traces see each iteration.

Lifecycle changes (started, stopped, failed, restarted, escalated) reach
observers through the events hub. Iterations do not: a successful iteration
is not an event, so that a loop with nobody watching pays nothing for it.
Metrics and traces still need every iteration (its duration, its lateness,
its outcome), so the loop engine calls the one process-wide
`Instrumentation` installed here, when there is one.

The contract for the hot path: when nothing is installed, an iteration costs
one module-attribute read and an ``is None`` test, and allocates nothing.
When something is installed, each iteration allocates one `IterationStart`
(a named tuple).

This module is a leaf of the package: it imports nothing from
supervised_loops, so the core can call it and the telemetry extras (which
sit above everything) can implement it.
"""

from __future__ import annotations

from typing import Literal, NamedTuple, Protocol

__all__ = [
    "Instrumentation",
    "IterationStart",
    "Outcome",
    "SkipReason",
    "Trigger",
    "current",
    "install",
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


class IterationStart(NamedTuple):
    """What is known of an iteration when its body is called.

    A named tuple, not an attrs class: one is made for every observed
    iteration, and a tuple is built in a third of the time.

    Attributes:
        path: the actor's path in its tree (``"app/ingest/poller"``).
        name: the loop's name (the body's ``__qualname__`` unless named).
        iteration: the loop's iteration counter for this call (``current_loop``).
        scheduled: when it was due, in seconds on the event loop's clock
            (``loop.time()``, virtual under virtual time).
        started: when the body was called, same clock; ``started - scheduled``
            is the lag.
        trigger: what started it (see `Trigger`).
        attempt: 1 for a first try, 2 and more for retries of the same slot.
        message: the control message that triggered it (a RunNow), or None.
    """

    path: str
    name: str
    iteration: int
    scheduled: float
    started: float
    trigger: Trigger
    attempt: int
    message: object | None = None


class Instrumentation(Protocol):
    """What the loop engine calls, on the event loop's thread, never awaited.

    Implementations must be fast and must not raise: an exception raised here
    is logged by the engine and the instrumentation is uninstalled, so a
    broken exporter can never break the loops it observes.
    """

    def iteration_started(self, start: IterationStart) -> object:
        """An iteration's body is about to be called; returns a token (a span, say)."""

    def iteration_ended(
        self,
        start: IterationStart,
        token: object,
        outcome: Outcome,
        error: BaseException | None,
        ended: float,
    ) -> None:
        """The iteration ended (``ended`` on the event loop's clock)."""

    def iteration_skipped(self, path: str, name: str, reason: SkipReason) -> None:
        """A due iteration did not run, for ``reason``."""


installed: Instrumentation | None = None
"""The instrumentation in force, or None. Read it, do not assign it: use `install`."""


def install(instrumentation: Instrumentation | None) -> Instrumentation | None:
    """Put ``instrumentation`` in force for the whole process; None removes it.

    Returns the one it replaces, so a test can put it back.
    """
    global installed
    previous = installed
    installed = instrumentation
    return previous


def current() -> Instrumentation | None:
    """The instrumentation in force, or None."""
    return installed
