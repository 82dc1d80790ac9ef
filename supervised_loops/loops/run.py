"""The record of one run of a Loop: the shared run record plus a Loop's own fields.

A Loop is started, stopped and started again; each start is a `LoopRun`.
Keeping the state per run (not on the Loop) is what lets a new run be
accepted while the previous one is still in its ``after_loop``: the old run
finishes with its own flags (``is_being_cancelled()`` stays true in its
``after_loop``) while messages already address the new one.

The reply lists and the retry trackers are created on first use: most runs
never need them, and an idle loop's memory is what a service with thousands
of loops pays.

May import: ``core.runnable`` and the pure top-level modules.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from ..backoff import BackoffTracker, RetryRule
from ..core.runnable import Pending, Runnable, RunRecord
from ..messages import State

__all__ = ["NO_KWARGS", "LoopRun"]

#: The keyword arguments of a run started without any: one shared empty dict
#: (64 bytes per loop otherwise). Nothing changes a run's ``kwargs`` in
#: place; a Restart with new ones replaces the dict.
NO_KWARGS: dict[str, Any] = {}

_STARTING = State.STARTING  # a module constant: an Enum member lookup costs ~70 ns


class LoopRun(RunRecord):
    """The mutable state of one run of a Loop (internal)."""

    __slots__ = (
        "acks_begin",
        "acks_plan",
        "acks_run_now",
        "anchor",
        "announced",
        "attention",
        "capped",
        "consecutive_failures",
        "current_loop",
        "due",
        "due_wall",
        "extra",
        "last_start",
        "paused",
        "rescheduled",
        "resumed",
        "retry_at",
        "run_now",
        "shown_due",
        "tick",
        "timer",
        "trackers",
        "waiter",
    )

    def __init__(self, args: tuple[Any, ...], kwargs: dict[str, Any], *, restart: bool) -> None:
        # Every field of the shared record and of a Loop's, set here in one
        # go rather than through RunRecord.__init__: a start is mostly this
        # record, and the call, its keyword argument and an Enum member
        # lookup were a third of it. tests/test_loop_run.py checks that every
        # slot is set, so a field added to RunRecord cannot be missed here.
        self.args = args
        self.kwargs = kwargs or NO_KWARGS  # the caller's empty dict is freed
        self.restart = restart
        self.run_id = 0
        self.task: asyncio.Task[None] = None  # type: ignore[assignment]  # set right after
        self.previous: RunRecord | None = None
        self.state = _STARTING
        self.readiness: bool | None = None
        self.ready: asyncio.Future[bool] | None = None
        self.began = False
        self.ended = False
        self.stop = False
        self.cancelling = False
        self.cancel_sent = False
        self.error: BaseException | None = None
        self.finishing: float | None = None
        self.reporting: Runnable | object | None = None
        self.acks_end: Pending | None = None
        self.current_loop = 0
        # Requests, set by control handlers and read by the runner.
        self.attention = False  # "look at the flags before going on"
        self.paused = False
        self.resumed = False
        self.rescheduled = False
        self.run_now = False
        # Schedule position (see loops.plan).
        self.anchor = 0.0
        self.tick = 0
        self.due = 0.0
        # The wall-clock slot of a non-interval schedule (None on a grid);
        # ``due`` is its monotonic reading.
        self.due_wall: dt.datetime | None = None
        self.last_start: float | None = None
        self.retry_at: float | None = None  # when a failed iteration runs again
        # The (monotonic due, wall datetime) pair last shown as next_iteration:
        # asked again for the same due, status() shows the same moment, at no cost.
        self.shown_due: tuple[float, dt.datetime] | None = None
        self.extra = False
        self.consecutive_failures = 0
        self.trackers: dict[RetryRule, BackoffTracker] | None = None
        # Waiting and replies.
        self.waiter: asyncio.Future[bool] | None = None
        self.timer: asyncio.TimerHandle | None = None  # wakes the waiter when due
        self.capped = False  # the timer is a wall-clock re-check, not the due time
        self.announced = False  # the run has begun (a restart counted, ActorStarted out)
        self.acks_begin: Pending | None = None
        self.acks_plan: Pending | None = None
        self.acks_run_now: Pending | None = None

    def attend(self) -> None:
        """Flag that a request arrived, and wake the runner if it is waiting."""
        self.attention = True
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(False)

    def add_ack(self, which: str, message: Any, reply: asyncio.Future[Any]) -> None:
        """Queue ``reply`` on the ``acks_<which>`` list (created on first use)."""
        name = f"acks_{which}"
        pending: Pending | None = getattr(self, name)
        if pending is None:
            pending = []
            setattr(self, name, pending)
        pending.append((message, reply))
