"""The record of one run of a worker, and the context its coroutine runs in.

`WorkerRun` is the shared run record plus a worker's retry state and the
futures that wake a worker waiting for a stop. The context variables tell
the coroutine which worker and which run it belongs to
(`workers.worker.current_worker`):
an old run still ending after a restart must not mark the new one ready,
nor read its stop flag.

May import: ``core.runnable`` and the pure top-level modules.
"""

from __future__ import annotations

import asyncio
import contextvars
from typing import TYPE_CHECKING, Any

from ..backoff import BackoffTracker
from ..core.runnable import RunRecord

if TYPE_CHECKING:
    from .worker import Worker

__all__ = ["WorkerRun"]

_current: contextvars.ContextVar[Worker] = contextvars.ContextVar("supervised_loops_worker")
# The run a worker's coroutine belongs to: an old run still ending after a
# restart must not mark the new one ready, nor read its stop flag.
_current_run: contextvars.ContextVar[WorkerRun] = contextvars.ContextVar(
    "supervised_loops_worker_run"
)


def _fire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class WorkerRun(RunRecord):
    """The state of one run of a worker (internal): the shared record plus retries."""

    __slots__ = ("consecutive", "stop_waiters", "tracker", "waiter")

    def __init__(self, args: tuple[Any, ...], kwargs: dict[str, Any], *, restart: bool) -> None:
        RunRecord.__init__(self, args, kwargs, restart=restart)
        self.consecutive = 0
        self.tracker: BackoffTracker | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.stop_waiters: list[asyncio.Future[None]] = []

    def wake(self) -> None:
        for future in (self.waiter, *self.stop_waiters):
            if future is not None and not future.done():
                future.set_result(None)
