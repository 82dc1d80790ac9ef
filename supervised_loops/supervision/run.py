"""One run of a supervisor, and the items its task works through.

`SupervisorRun` is the shared run record (`core.runnable.RunRecord`) plus
what a supervisor's engine keeps per run: its queue, its wake-up future, the
restart-intensity window (a restarted supervisor starts with a fresh one, as
in OTP) and the future `Supervisor.wait` waits on. The queue holds typed
items, handled one at a time, in arrival order, by the supervisor's task.

May import: ``core``, ``supervision.child``, ``supervision.intensity`` and
the pure top-level modules.
"""

from __future__ import annotations

import asyncio
import collections
import enum
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple, TypeAlias

import attrs

from ..core.runnable import RunRecord
from ..messages import Exit
from .child import Child, TimerKind
from .intensity import RestartWindow

__all__ = ["ExitReport", "QueueItem", "Started", "SupervisorRun", "TimerFired", "VerbCall"]


class Started(enum.Enum):
    """How starting a child went."""

    READY = "ready"  #: it is ready
    ENDED = "ended"  #: it ended before it was ready (its exit is reported)
    HALTED = "halted"  #: the supervisor was told to stop (or is failing) meanwhile
    LAUNCHED = "launched"  #: started; its readiness was not waited for (one_for_one restarts)


class ExitReport(NamedTuple):
    """Queue item: run ``run_id`` of a child ended as ``exit``.

    A named tuple: one is made per child exit, and a tree of thousands of
    loops ends with thousands of them (an attrs instance costs 4× as much).
    """

    record: Child
    run_id: int
    exit: Exit


@attrs.frozen(slots=True)
class VerbCall:
    """Queue item: a verb (``start_child``, ...) to run in the supervisor's task."""

    function: Callable[[], Awaitable[Any]]
    future: asyncio.Future[Any]


@attrs.frozen(slots=True)
class TimerFired:
    """Queue item: a child's retry or quarantine-probe timer is due."""

    record: Child
    kind: TimerKind


QueueItem: TypeAlias = ExitReport | VerbCall | TimerFired


class SupervisorRun(RunRecord):
    """One run of a supervisor: the shared run record plus the engine's own state.

    The escalated error (``error``) is set as soon as the supervisor decides
    to fail (a hook raised, the intensity was exceeded): from then on it
    starts nothing more and shuts its children down.
    """

    __slots__ = (
        "auto_stop",
        "cancel_deadline",
        "cut_short",
        "cut_until",
        "ended_exit",
        "forced",
        "in_hook",
        "intensity",
        "launched",
        "queue",
        "restart_after",
        "swept_at",
        "waiter",
    )

    def __init__(
        self,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        restart: bool,
        intensity: RestartWindow,
    ) -> None:
        RunRecord.__init__(self, args, kwargs, restart=restart)
        self.queue: collections.deque[QueueItem] = collections.deque()
        self.waiter: asyncio.Future[None] | None = None
        self.in_hook = False  # a cancellation now interrupts a user hook or verb
        self.auto_stop = False
        self.cancel_deadline: float | None = None
        self.forced = False  # a forced shutdown: clean-ups in progress are cut at once
        self.cut_short = 0  # clean-ups cut short in this run's subtree
        # The one-pass cancel of the subtree: when it was made (the hard limits
        # count from then), and the children whose clean-up it cut, with the
        # time they have to end.
        self.swept_at: float | None = None
        self.cut_until: dict[Child, float] | None = None
        self.restart_after = False  # a Restart message starts a new run once the task is done
        self.intensity = intensity
        self.launched = 0  # children started in the call that launched the run
        self.ended_exit: asyncio.Future[Exit] = asyncio.get_running_loop().create_future()
