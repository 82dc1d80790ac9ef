"""The run record: what every run of every actor kind has (`core.runnable` runs it).

Kinds extend it with their own slots (`loops.run`, `workers.run`,
`supervision.run`). It holds no behaviour beyond its own bookkeeping; the
done callback it carries hands the task's end to the actor that runs it.

May import: ``core.replies`` and the pure top-level modules.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Final

from ..messages import State
from .replies import Pending

if TYPE_CHECKING:
    from .runnable import Runnable

__all__ = ["REPORTED", "RunRecord"]

#: `RunRecord.reporting` once the runner has reported the end from its last step.
REPORTED: Final = object()


class RunRecord:
    """What every run of every actor kind has (kinds extend it with their own slots).

    Attributes:
        args, kwargs: the arguments of this run.
        run_id: the run's number, unique per actor, increasing.
        restart: the run counts as a restart in the actor's status.
        task: the run's task (set right after the record is made).
        previous: the run still ending when this one was accepted.
        state: what the run is doing (`State`).
        readiness: True once ready, False if it ended first, None until then.
        ready: its future, made only when someone waits (~150 B per loop saved).
        began, ended: the task took its first step; the run has ended.
        stop, cancelling: a stop, a cancel was asked (a cancel implies a stop).
        cancel_sent: the actor cancelled the task itself: absorbed, not propagated.
        error: the error the run escalated, if any.
        reporting: the actor whose `_finished` the done callback calls once the
            task is done (the callback is registered), `REPORTED` once the
            runner reported the end from its last step (the callback then
            only retrieves the task's outcome), or None.
        finishing: when (event-loop time) the run's clean-up began (``after_loop``,
            a worker unwinding after its Stop), or None; requests no longer
            interrupt it then, only ``Runnable._cut_short`` does.
        acks_end: asks answered when the run has ended (Stop, Cancel).
    """

    __slots__ = (
        "acks_end",
        "args",
        "began",
        "cancel_sent",
        "cancelling",
        "ended",
        "error",
        "finishing",
        "kwargs",
        "previous",
        "readiness",
        "ready",
        "reporting",
        "restart",
        "run_id",
        "state",
        "stop",
        "task",
    )

    def __init__(self, args: tuple[Any, ...], kwargs: dict[str, Any], *, restart: bool) -> None:
        self.args = args
        self.kwargs = kwargs
        self.restart = restart
        self.run_id = 0
        self.task: asyncio.Task[None] = None  # type: ignore[assignment]  # set right after
        self.previous: RunRecord | None = None
        self.state = State.STARTING
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

    def _task_done(self, task: asyncio.Task[None]) -> None:  # 64 B bound, not a closure
        owner = self.reporting
        if owner is REPORTED:  # the runner has reported: only retrieve the outcome
            if not task.cancelled():
                task.exception()
            return
        owner._finished(self)  # type: ignore[union-attr]  # set when registered

    @property
    def failed(self) -> bool:
        """Whether the run escalated an error."""
        return self.error is not None

    def ending_or_replaced(self) -> bool:
        """Whether a new start may follow this run (it is ending or ended)."""
        return self.stop or self.cancelling or self.ended

    def add_end_ack(self, message: Any, reply: asyncio.Future[Any]) -> None:
        """Answer ``reply`` once the run has ended."""
        if self.acks_end is None:
            self.acks_end = []
        self.acks_end.append((message, reply))
