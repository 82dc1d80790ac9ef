"""A supervisor's record of one child: what its hooks receive as ``child``.

The spec (`ChildSpec`) is immutable: it
says how the child is supervised. A `Child` is the supervisor's live
record of it: the arguments of its next start, its counters, whether it is
parked, and the bookkeeping that ties each exit report to the run that made
it. Hooks read it; they change it only through `Child.set_args`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import attrs

from ..backoff import BackoffTracker
from ..core.actor import Actor
from ..messages import ActorStatus, Exit, State
from .intensity import RestartWindow
from .specs import ChildInfo, ChildSpec, RestartType

__all__ = ["Child"]


class Child:
    """One child of a supervisor, as the supervisor sees it (read-mostly).

    Passed to every hook that is about a child (``decide``,
    ``on_child_failure``, ``should_retry``, ...).
    """

    __slots__ = (
        "_abandoned",
        "_args",
        "_exit",
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

    def __init__(self, spec: ChildSpec) -> None:
        self._spec = spec
        self._args: tuple[Any, ...] = spec.args
        self._kwargs: dict[str, Any] = dict(spec.kwargs)
        # Each start gets a number; an exit report carries the number of the
        # run it ends, so a late report about an old run is never mistaken for
        # news about the current one.
        self._run_id = 0
        self._handled = 0  # the latest run whose exit has been dealt with
        self._exit: asyncio.Future[Exit] | None = None
        self._last_exit: Exit | None = None
        self._running = False  # a run we know of has not reported its end yet
        self._terminating = False
        self._kept_down = False  # ended for good: strategies leave it down
        self._quarantined = False
        self._probation_until: float | None = None
        self._window: RestartWindow | None = None  # the quarantine budget
        self._timer: asyncio.TimerHandle | None = None
        self._timer_kind: str | None = None  # "probe" or "retry"
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
        if self._timer_kind == "retry":
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

    # -- internal ---------------------------------------------------------------

    def _set_timer(self, handle: asyncio.TimerHandle, kind: str) -> None:
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
        if self._timer_kind == "retry":
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
