"""How a Loop's run waits: for its next due time, for a request, or for nothing.

A wait is one future (``run.waiter``), set by the control handlers when a
request arrives (`loops.run.LoopRun.attend`) and by one timer when the due
time comes. Functions of a run record and an event loop, used by the
iterations (`loops.iteration`) and the runner's end (`loops.engine`):

* `arm` prepares a wait; a timer still armed for the same moment is kept:
  a message wakes the runner, which most often sleeps again towards the
  same due time, and re-arming the timer after every message was most of
  what a message to a sleeping loop cost beyond the mailbox;
* `disarm` ends a wait and cancels its timer;
* `arrived` tells a wait that reached its due time from a wake-up by a
  request or by a wall-clock re-check;
* `yield_once` lets the event loop run everything else once.

May import: ``loops.run`` and the pure top-level modules.
"""

from __future__ import annotations

import asyncio
import types
from collections.abc import Generator
from typing import TYPE_CHECKING

from ..clock import WALL_RECHECK_SECONDS, Clock

if TYPE_CHECKING:
    from .run import LoopRun as Run

__all__ = ["arm", "arrived", "disarm", "yield_once"]


@types.coroutine
def yield_once() -> Generator[None, None, None]:
    """Let the event loop run everything else that is ready, once.

    What ``await asyncio.sleep(0)`` does (a bare ``yield`` to the task), without
    creating ``sleep``'s coroutine each time: a back-to-back loop pays it on
    every iteration.
    """
    yield


def _fire(run: Run) -> None:
    # The timer wakes whatever wait is current when it fires, or none if the
    # runner is busy then (it sees the due time has passed when it looks).
    run.timer = None
    waiter = run.waiter
    if waiter is not None and not waiter.done():
        waiter.set_result(True)


def arm(
    run: Run, event_loop: asyncio.AbstractEventLoop | None, due: float | None
) -> asyncio.Future[bool]:
    """Prepare a wait: one future, and a timer when ``due`` (monotonic) is set.

    A wait for a wall-clock slot is cut into pieces of at most
    ``WALL_RECHECK_SECONDS`` and confirmed against the wall clock by
    `arrived`, so a clock step or a suspend never makes it early, nor late
    by more than one piece. A timer still armed for the same moment is kept.
    """
    assert event_loop is not None
    waiter: asyncio.Future[bool] = event_loop.create_future()
    run.waiter = waiter
    timer = run.timer
    capped = False
    if due is not None and run.due_wall is not None and run.retry_at is None:
        limit = event_loop.time() + WALL_RECHECK_SECONDS
        if due > limit:
            due = limit
            capped = True
    run.capped = capped
    if timer is not None:
        if due is not None and timer.when() == due:
            return waiter
        run.timer = None
        timer.cancel()
    if due is not None:
        run.timer = event_loop.call_at(due, _fire, run)
    return waiter


def disarm(run: Run) -> None:
    """End a wait and cancel its timer."""
    run.waiter = None
    timer = run.timer
    if timer is not None:
        run.timer = None
        timer.cancel()


def arrived(run: Run, reached: bool, clock: Clock) -> bool:
    """Whether a finished wait reached its due time (not a request, nor a re-check)."""
    if not reached or run.capped:
        return False
    due_wall = run.due_wall
    return due_wall is None or run.retry_at is not None or clock.wall() >= due_wall
