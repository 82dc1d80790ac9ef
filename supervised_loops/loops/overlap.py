"""Iterations that overlap (``overlap=True`` or a cap): the pool and the run that feeds it.

`OverlapPool` is the small object that owns the iterations of one run that
are in flight: it launches them as tasks, collects the first failure, knows
which of them are waiting out a retry backoff, and reaps them when the run
ends. `iterate_overlapping` is the run's loop: it starts an iteration at
each due point without waiting for the previous ones, at most ``overlap`` at
once (0: no limit).

A ``Stop`` ends the run after the iterations in progress; an iteration that
is only waiting for its retry is abandoned at once, without calling the body
again (the retry would have been refused after a stop anyway). ``Cancel``
cancels them all.

May import: the other ``loops`` modules below the face, ``core.runnable``
and the pure top-level modules.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from .. import instrument
from ..clock import get_clock
from ..core.runnable import Pending, abandon, acknowledge
from ..instrument import Outcome, Trigger
from ..messages import State
from . import observe, plan
from .run import LoopRun
from .sleep import yield_once

if TYPE_CHECKING:
    from .iteration import LoopIteration

__all__ = ["OverlapPool", "iterate_overlapping"]


def _fire(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(True)


class OverlapPool:
    """The in-flight iterations of one overlapping run."""

    __slots__ = ("failure", "limit", "reaping", "retrying", "run", "running")

    def __init__(self, run: LoopRun, limit: int) -> None:
        self.run = run
        self.limit = limit  # 0: no limit
        self.running: set[asyncio.Task[None]] = set()
        self.retrying: set[asyncio.Future[bool]] = set()
        self.failure: BaseException | None = None
        self.reaping = False

    def full(self) -> bool:
        """Whether the cap is reached (the next start waits for one to end)."""
        return bool(self.limit) and len(self.running) >= self.limit

    def launch(self, iteration: Any) -> None:
        """Run the coroutine ``iteration`` as a task of the pool."""
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(iteration)
        self.running.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.running.discard(task)
        if task.cancelled():
            if not self.reaping and self.failure is None:
                # Only reap() cancels an iteration: this one raised a
                # CancelledError nobody asked for, a failure.
                try:
                    task.result()
                except asyncio.CancelledError as unrequested:
                    self.failure = unrequested
        else:
            error = task.exception()
            if error is not None and self.failure is None:
                self.failure = error
        self.run.attend()

    async def back_off(self, delay: float) -> bool:
        """Wait ``delay`` seconds before a retry; False if the retry was abandoned meanwhile."""
        event_loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = event_loop.create_future()
        handle = event_loop.call_later(max(0.0, delay), _fire, waiter)
        self.retrying.add(waiter)
        try:
            return await waiter
        finally:
            self.retrying.discard(waiter)
            handle.cancel()

    def abandon_retries(self) -> None:
        """The run is stopping: iterations waiting for a retry end without calling the body."""
        for waiter in self.retrying:
            if not waiter.done():
                waiter.set_result(False)

    async def reap(self) -> None:
        """Cancel the iterations still in flight and wait until they have ended."""
        self.reaping = True
        running = self.running
        for task in list(running):
            task.cancel()
        if running:
            await asyncio.wait(running)


async def iterate_overlapping(loop: LoopIteration, run: LoopRun) -> None:
    """Start iterations on schedule without waiting for the previous ones.

    At most ``overlap`` run at once (0: no limit); when the limit is reached
    the next start waits for a running one to end, and the ``missed`` policy
    applies as for an overrun. A transient error is retried inside its own
    iteration; any other error ends the run, and the iterations still running
    are cancelled. Cancellation (Cancel) propagates after the iterations are
    reaped.
    """
    event_loop = asyncio.get_running_loop()
    time = event_loop.time
    clock = get_clock(event_loop)
    count = loop._count
    skip_missed = loop._missed == "skip"  # configuration: fixed for the run
    pool = OverlapPool(run, loop._overlap)
    launched = 0
    held_back: float | None = None
    plan.plan_first(run, loop._schedule, time(), clock, loop._wait_first)
    run.state = State.SLEEPING  # set up and planned: a ChangeInterval ack sees the plan
    loop._planned(run)
    try:
        while pool.failure is None and (count is None or launched < count):
            if run.attention and not await loop._attend(run, time, clock):
                break
            if pool.full():
                # Wait for a free place; at a due point still without one, the
                # iteration is held back by the limit (told once per point).
                if run.due > time():
                    await loop._wait(run, run.due, clock)
                    continue
                if held_back != run.due:
                    held_back = run.due
                    loop._skipped("overlap")
                await loop._wait(run, None, clock)
                continue
            extra = run.run_now
            if extra:
                run.run_now = False
            elif run.paused:
                run.state = State.PAUSED
                await loop._wait(run, None, clock)
                continue
            else:
                if run.due_wall is not None:
                    plan.refresh_wall_due(run, time(), clock)
                if run.due > time():
                    run.state = State.SLEEPING
                    if not await loop._wait(run, run.due, clock):
                        continue
                else:
                    await yield_once()
                    if run.attention:
                        continue
            run.state = State.RUNNING
            launched += 1
            # An extra run answers the RunNow asks made before it began;
            # later ones wait for the next extra run.
            pending = run.acks_run_now
            claimed: Pending = pending[:] if extra and pending else []
            if claimed and pending is not None:
                pending.clear()
            pool.launch(_one(loop, run, pool, claimed, extra, run.due))
            run.last_start = time()
            if not extra and plan.advance(run, loop._schedule, time(), clock, skip_missed):
                loop._skipped("missed")
        while pool.running and pool.failure is None:
            run.state = State.STOPPING
            if run.stop:
                pool.abandon_retries()
            await loop._wait(run, None, clock)
    finally:
        await pool.reap()
    if pool.failure is not None:
        raise pool.failure


async def _one(
    loop: LoopIteration,
    run: LoopRun,
    pool: OverlapPool,
    claimed: Pending,
    extra: bool,
    due: float,
) -> None:
    """One overlapping iteration; ``claimed`` are the RunNow asks it answers.

    They are acknowledged when the iteration succeeds, and get
    ``ActorStopped`` when it ends any other way. ``extra``: it is a RunNow's;
    ``due``: when it was due (for the instrumentation).
    """
    succeeded = False
    try:
        succeeded = await _attempts(loop, run, pool, extra, due)
    finally:
        if claimed and succeeded:
            acknowledge(claimed, run.current_loop, loop._next_iteration_of(run))
        elif claimed:
            abandon(claimed, loop.path)


async def _attempts(
    loop: LoopIteration, run: LoopRun, pool: OverlapPool, extra: bool, due: float
) -> bool:
    """Call the body until it succeeds or its error is escalated; False: retry abandoned."""
    event_loop = asyncio.get_running_loop()
    clock = get_clock(event_loop)
    trigger: Trigger = "run-now" if extra else "schedule"
    scheduled = event_loop.time() if extra else due
    attempt = 1
    while True:
        instrumentation = instrument.installed
        iteration = run.current_loop
        started = event_loop.time()
        token = None
        if instrumentation is not None and instrumentation.observes_starts:
            token = observe.iteration_started(
                instrumentation, loop.path, loop._name, iteration, trigger, attempt, scheduled,
                started,
            )  # fmt: skip
        outcome: Outcome = "failed"
        error: BaseException | None = None
        try:
            await loop._call_body(run)
            retried, outcome = False, "ok"
        except BaseException as exc:
            error = exc
            task = asyncio.current_task()
            if isinstance(exc, asyncio.CancelledError) and task is not None and task.cancelling():
                outcome = "cancelled"  # reaped: the run is ending
                raise
            retried = loop._schedule_retry(run, exc, event_loop.time, clock)
            outcome = loop._outcome(run, exc, retried)
            if not retried:
                raise
        finally:  # the end: to the loop's ring, and to the instrumentation that saw it begin
            ended = event_loop.time()
            ring = loop._ring_after(outcome)
            if ring is not None:
                ring.add_outcome(started, ended, scheduled, outcome, error, iteration)
            if instrumentation is not None:
                observe.iteration_ended(
                    instrumentation, loop.path, loop._name, iteration, trigger, attempt,
                    scheduled, started, ended, outcome, error, token,
                )  # fmt: skip
        if retried:
            retry_at = run.retry_at
            if retry_at is None or run.stop:
                return False  # stopping: the retry is abandoned
            run.retry_at = None
            if not await pool.back_off(retry_at - event_loop.time()):
                return False  # a stop came during the backoff
            trigger, scheduled, attempt = "retry", retry_at, attempt + 1
            continue
        if run.trackers:
            loop._recovered(run)
        run.current_loop += 1
        return True
