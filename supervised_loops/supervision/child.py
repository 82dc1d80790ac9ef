"""A supervisor's record of one child: what its hooks receive as ``child``.

The spec (`ChildSpec`) is immutable: it
says how the child is supervised. A `Child` is the supervisor's live
record of it: the arguments of its next start, its counters, whether it is
parked, and the bookkeeping that ties each exit report to the run that made
it. Hooks read it; they change it only through `Child.set_args`.

The supervisor changes it only through the transitions below (`Child._begin_run`,
`Child._exited`, `Child._adopt_run`, `Child._park`, `Child._forget`, ...),
so every rule about a child's life is in one place.

Run ids are the child actor's own (every run of a runnable actor has one,
whoever started it): a report about a run older than the one the record
tracks is never mistaken for news about the current run, and a run the
child started by itself (its own ``Restart`` message) is still recognised.

May import: ``core``, ``supervision.specs``, ``supervision.intensity`` and the
pure top-level modules.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Mapping
from typing import Any

import attrs

from ..backoff import BackoffTracker, ExponentialBackoff
from ..core.actor import Actor
from ..messages import ActorStatus, Exit, State
from .intensity import RestartWindow
from .specs import ChildInfo, ChildSpec, Quarantine, RestartType

__all__ = ["Child", "TimerKind"]

_NO_KWARGS: dict[str, Any] = {}


class _Pending(enum.Enum):
    """A tracked run that has not ended, and nobody waits for its exit yet."""

    PENDING = 0


_PENDING = _Pending.PENDING


class TimerKind(enum.Enum):
    """What a parked child waits for."""

    PROBE = "probe"  #: a quarantine probe
    RETRY = "retry"  #: a restart after a RETRY directive's backoff


class Child:
    """One child of a supervisor, as the supervisor sees it (read-mostly).

    Passed to every hook that is about a child (``decide``,
    ``on_child_failure``, ``should_retry``, ...).
    """

    __slots__ = (
        "_abandoned",
        "_args",
        "_ended",
        "_failure_count",
        "_handled",
        "_kept_down",
        "_kwargs",
        "_last_error",
        "_last_exit",
        "_probation_until",
        "_quarantined",
        "_removed",
        "_restart_count",
        "_retry_exit",
        "_run_id",
        "_running",
        "_spec",
        "_terminating",
        "_timer",
        "_timer_kind",
        "_tracker",
        "_window",
    )

    def __init__(self, spec: ChildSpec, quarantine: Quarantine | None = None) -> None:
        self._spec = spec
        self._args: tuple[Any, ...] = spec.args
        # A copy of the spec's (set_args replaces it, nothing changes it in
        # place), or one shared empty dict for the many children without any.
        self._kwargs: dict[str, Any] = dict(spec.kwargs) if spec.kwargs else _NO_KWARGS
        # Each start gets a number; an exit report carries the number of the
        # run it ends, so a late report about an old run is never mistaken for
        # news about the current one.
        self._run_id = 0
        self._handled = 0  # the latest run whose exit has been dealt with
        # The tracked run's end (see `_exit`): None while no run is tracked.
        self._ended: asyncio.Future[Exit] | Exit | _Pending | None = None
        self._last_exit: Exit | None = None
        self._running = False  # a run we know of has not reported its end yet
        self._terminating = False
        self._kept_down = False  # ended for good: strategies leave it down
        self._quarantined = False
        self._probation_until: float | None = None
        # The quarantine budget, when a quarantine policy applies to it.
        self._window = (
            None
            if quarantine is None
            else RestartWindow(quarantine.max_restarts, quarantine.max_seconds)
        )
        self._timer: asyncio.TimerHandle | None = None
        self._timer_kind: TimerKind | None = None
        self._retry_exit: Exit | None = None
        self._tracker: BackoffTracker | None = None
        self._abandoned = False  # reported unkillable; its task may still run
        self._removed = False
        self._restart_count = 0
        self._failure_count = 0
        self._last_error: BaseException | None = None

    # -- what hooks read ---------------------------------------------------

    @property
    def spec(self) -> ChildSpec:
        """The child's spec."""
        return self._spec

    @property
    def actor(self) -> Actor:
        """The child actor."""
        return self._spec.actor

    @property
    def name(self) -> str:
        """The child's name among its siblings."""
        return self._spec.name

    @property
    def path(self) -> str:
        """The child's path in the tree."""
        return self._spec.actor.path

    @property
    def restart(self) -> RestartType:
        """Its restart type."""
        return self._spec.restart

    @property
    def significant(self) -> bool:
        """Whether it is significant."""
        return self._spec.significant

    @property
    def args(self) -> tuple[Any, ...]:
        """The positional arguments of its next start."""
        return self._args

    @property
    def kwargs(self) -> Mapping[str, Any]:
        """The keyword arguments of its next start (a copy: change them with ``set_args``)."""
        return dict(self._kwargs)

    @property
    def restart_count(self) -> int:
        """How many times this supervisor restarted it (by policy, by hand, or as a probe)."""
        return self._restart_count

    @property
    def failure_count(self) -> int:
        """How many of its runs ended with an escalated error."""
        return self._failure_count

    @property
    def last_error(self) -> BaseException | None:
        """The error that ended its latest failed run, or None."""
        return self._last_error

    @property
    def state(self) -> State:
        """What it is doing: the actor's state, or ``quarantined``/``retrying`` while parked."""
        if self._quarantined:
            return State.QUARANTINED
        if self._timer_kind is TimerKind.RETRY:
            return State.RETRYING
        return self._spec.actor.status().state

    def is_running(self) -> bool:
        """Whether the child actor is running."""
        return self._spec.actor.is_running()

    def is_quarantined(self) -> bool:
        """Whether it is parked in quarantine."""
        return self._quarantined

    def is_on_probation(self) -> bool:
        """Whether it is a quarantine probe that has not yet outlived its probation.

        A failure on probation parks it again at once (a circuit breaker's
        half-open state). Call it from the running event loop.
        """
        until = self._probation_until
        return until is not None and asyncio.get_running_loop().time() < until

    # -- what hooks may change -----------------------------------------------

    def set_args(self, *args: Any, **kwargs: Any) -> None:
        """Set the arguments of the child's next starts (restarts and probes).

        Typically called from ``on_child_failure`` to restart a child with
        new arguments (the next server in a list, a smaller batch size, ...).
        """
        self._args = args
        self._kwargs = dict(kwargs)

    # -- the supervisor's transitions --------------------------------------------

    def _begin_run(self, run_id: int, ended: asyncio.Future[Exit] | None = None) -> None:
        """The supervisor started run ``run_id``; ``ended`` (or `_exit`) resolves with its exit."""
        self._run_id = run_id
        self._running = True
        self._kept_down = False
        self._last_exit = None
        self._ended = _PENDING if ended is None else ended

    def _adopt_run(self, run_id: int, ended: asyncio.Future[Exit] | None = None) -> None:
        """Track run ``run_id``, started by someone else (the child's own Restart).

        The exits of the runs before it are old news from now on.
        """
        self._handled = max(self._handled, self._run_id)
        self._run_id = run_id
        self._running = True
        self._ended = _PENDING if ended is None else ended

    @property
    def _exit(self) -> asyncio.Future[Exit] | None:
        """A future of the tracked run's exit (None: no run tracked), made when first asked for.

        Most runs end without anyone waiting on their exit in between (a
        tree of idle loops): until then the record keeps the exit itself,
        not a future per run (about 150 bytes per child). Call it from the
        event loop.
        """
        ended = self._ended
        if ended is None or isinstance(ended, asyncio.Future):
            return ended
        future: asyncio.Future[Exit] = asyncio.get_running_loop().create_future()
        if isinstance(ended, Exit):
            future.set_result(ended)
        self._ended = future
        return future

    def _has_exited(self) -> bool:
        """Whether the tracked run has reported its exit."""
        ended = self._ended
        if isinstance(ended, asyncio.Future):
            return ended.done()
        return isinstance(ended, Exit)

    def _exited(self, run_id: int, exit: Exit) -> bool:
        """Run ``run_id`` reported its end; False if it is older than the tracked run."""
        if run_id < self._run_id:
            return False
        self._run_id = run_id
        self._running = False
        self._last_exit = exit
        ended = self._ended
        if ended is _PENDING:
            self._ended = exit
        elif isinstance(ended, asyncio.Future) and not ended.done():
            ended.set_result(exit)
        return True

    def _is_news(self, run_id: int) -> bool:
        """Whether the exit of run ``run_id`` has not been dealt with yet."""
        return run_id > self._handled

    def _handle(self, run_id: int) -> None:
        """The exit of run ``run_id`` (and of every run before it) is dealt with."""
        self._handled = max(self._handled, run_id)

    def _unseen_exit(self) -> Exit | None:
        """The tracked run's exit if it has ended and nobody dealt with it; marks it dealt with."""
        if self._running or self._handled >= self._run_id:
            return None
        self._handled = self._run_id
        return self._last_exit

    def _failed(self, error: BaseException) -> None:
        """Count a run that ended with an escalated error."""
        self._failure_count += 1
        self._last_error = error

    def _restarted(self) -> None:
        """The supervisor restarts it (by policy, by hand or as a probe): counted, unparked."""
        self._cancel_timer()
        self._restart_count += 1

    def _keep_down(self) -> None:
        """Ended for good: strategies leave it down until restarted by hand."""
        self._kept_down = True

    def _park(self, kind: TimerKind, handle: asyncio.TimerHandle, exit: Exit | None = None) -> None:
        """Wait for a timer: a quarantine probe, or a delayed restart (``exit`` is its cause)."""
        self._set_timer(handle, kind)
        if kind is TimerKind.PROBE:
            self._quarantined = True
            self._probation_until = None
        else:
            self._retry_exit = exit

    def _unpark(self) -> None:
        """End a quarantine or a pending delayed restart (restart_child, terminate_child)."""
        self._cancel_timer()
        self._quarantined = False
        self._probation_until = None

    def _timer_due(self, kind: TimerKind) -> Exit | None:
        """The timer of ``kind`` fired: clear it; return the delayed restart's cause."""
        self._timer = None
        self._timer_kind = None
        if kind is TimerKind.RETRY:
            exit, self._retry_exit = self._retry_exit, None
            return exit
        self._quarantined = False
        if self._window is not None:
            self._window.clear()
        return None

    def _on_probation(self, until: float | None) -> None:
        """A probe started: a failure before ``until`` parks it again at once."""
        self._probation_until = until

    def _abandon(self) -> None:
        """Reported unkillable: its run is no longer tracked; its late exit is ignored once."""
        self._abandoned = True
        self._running = False
        self._handled = max(self._handled, self._run_id)

    def _retry_tracker(self, policy: ExponentialBackoff) -> BackoffTracker:
        """The count of delayed restarts (RETRY) under ``policy``; a new policy starts over.

        Equal policies share the count (``backoff_for()`` may build a new but
        equal policy each time).
        """
        tracker = self._tracker
        if tracker is None or tracker.policy != policy:
            tracker = self._tracker = policy.tracker()
        return tracker

    def _set_terminating(self, terminating: bool) -> None:
        """While the supervisor stops it, its exit is the stop's to deal with, not the queue's."""
        self._terminating = terminating

    def _late_exit_of_abandoned(self) -> bool:
        """An exit report arrived: True (once) if it is the late end of an abandoned run."""
        if not self._abandoned:
            return False
        self._abandoned = False
        return True

    def _forget(self) -> bool:
        """Removed from the supervisor; False if it already was."""
        if self._removed:
            return False
        self._removed = True
        self._cancel_timer()
        return True

    def _set_timer(self, handle: asyncio.TimerHandle, kind: TimerKind) -> None:
        self._cancel_timer()
        self._timer = handle
        self._timer_kind = kind

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._timer_kind = None

    def _status(self) -> ActorStatus:
        status = self._spec.actor.status()
        if self._quarantined:
            return attrs.evolve(status, state=State.QUARANTINED)
        if self._timer_kind is TimerKind.RETRY:
            return attrs.evolve(status, state=State.RETRYING)
        return status

    def _info(self) -> ChildInfo:
        status = self._status()
        return ChildInfo(
            name=self.name,
            path=self.path,
            kind=status.kind,
            state=status.state,
            restart=self._spec.restart,
            significant=self._spec.significant,
            restarts=self._restart_count,
            failures=self._failure_count,
        )

    def __repr__(self) -> str:
        return f"<Child {self.path!r} {self.state.value}>"
