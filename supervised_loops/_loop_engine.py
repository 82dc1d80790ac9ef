"""The engine of a Loop: the task that runs it, iteration by iteration.

:class:`LoopEngine` holds the Loop's configuration and runs it; the public
face (construction, discord.ext.tasks methods, control handlers) is
:class:`supervised_loops.loop.Loop`, its only subclass.

The hot path is :meth:`LoopEngine._iterate`: per iteration it awaits the
body, checks one flag, moves the schedule, and then either yields once (the
next iteration is already due) or waits on one future with one timer handle.
No task, event or stream object is created per iteration.

Failure rules (SPEC 1.4):

* An error whose class matches a retry rule is retried with backoff while
  ``reconnect`` is on and no stop was asked: the same iteration runs again,
  ``current_loop`` does not advance.
* Anything else, including an error raised by ``before_loop``, by
  ``after_loop`` or by the error handler, is escalated: the error handler is
  called, ``failed()`` becomes true, ``after_loop`` runs, the run ends and the
  parent is told.
* A ``CancelledError`` that nobody asked for (the task is not being
  cancelled: ``Task.cancelling() == 0``) is a failure, not a quiet exit.
* ``KeyboardInterrupt`` and ``SystemExit`` are never retried or swallowed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from . import _run as plan
from ._run import Run
from .actor import Actor
from .backoff import ExponentialBackoff, RetryRule, retry_delay
from .clock import WALL_RECHECK_SECONDS, Clock, get_clock
from .errors import ActorStopped
from .events import (
    ActorStarted,
    IterationFailed,
    RetryScheduled,
    describe,
)
from .messages import Ack, Exit, ExitKind, State
from .schedule import Schedule

logger = logging.getLogger("supervised_loops")

# Enum member lookups cost ~70 ns each; the runner sets states on every
# iteration, so it uses module constants.
_STARTING, _RUNNING, _SLEEPING, _RETRYING, _PAUSED = (
    State.STARTING,
    State.RUNNING,
    State.SLEEPING,
    State.RETRYING,
    State.PAUSED,
)
_STOPPING, _STOPPED, _CANCELLED, _FAILED = (
    State.STOPPING,
    State.STOPPED,
    State.CANCELLED,
    State.FAILED,
)

CoroFunction = Callable[..., Awaitable[Any]]


def _fire(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(True)


def _acknowledge(
    pending: list[tuple[Any, asyncio.Future[Any]]], iteration: int, upcoming: dt.datetime | None
) -> None:
    for message, future in pending:
        if not future.done():
            future.set_result(Ack(message, iteration, upcoming))
    pending.clear()


def _abandon(pending: list[tuple[Any, asyncio.Future[Any]]], path: str) -> None:
    for message, future in pending:
        if not future.done():
            future.set_exception(ActorStopped(path, message))
    pending.clear()


class LoopEngine(Actor):
    """Runs a Loop (internal base class of :class:`~supervised_loops.loop.Loop`)."""

    __slots__ = (
        "_after",
        "_attr_name",
        "_backoff",
        "_before",
        "_coro",
        "_count",
        "_error",
        "_exception_types",
        "_failure_count",
        "_instance",
        "_instances",
        "_last_error",
        "_max_consecutive_failures",
        "_missed",
        "_noted",
        "_overlap",
        "_reconnect",
        "_restart_count",
        "_retry_rules",
        "_run",
        "_schedule",
        "_wait_first",
    )

    _coro: CoroFunction
    _schedule: Schedule
    _count: int | None
    _reconnect: bool
    _missed: str
    _overlap: int
    _wait_first: bool
    _max_consecutive_failures: int | None
    _backoff: ExponentialBackoff | None  # None: the supervisor's choice, else the default
    _retry_rules: tuple[RetryRule, ...]
    _exception_types: tuple[type[BaseException], ...]
    _before: CoroFunction | None
    _after: CoroFunction | None
    _error: CoroFunction | None
    _instance: Any

    def _reset_engine(self) -> None:
        self._run: Run | None = None
        self._failure_count = 0
        self._restart_count = 0
        self._last_error: BaseException | None = None
        self._noted: BaseException | None = None

    # -- runs ---------------------------------------------------------------------

    def _launch(self, args: tuple[Any, ...], kwargs: dict[str, Any], *, restart: bool) -> Run:
        """Create a run and its task; it begins once the previous run has ended.

        Raises:
            RuntimeError: no event loop is running.
        """
        event_loop = asyncio.get_running_loop()
        previous = self._run
        run = Run(args, kwargs, restart=restart)
        if previous is not None and not previous.task.done():
            run.previous = previous
            if restart:
                self._cancel_run(previous)
        self._run = run
        self._event_loop = event_loop
        run.ready = event_loop.create_future()

        run.task = event_loop.create_task(self._runner(run), name=f"loop:{self.path}")
        if self._parent is not None or self._hub is not None:
            self._report_when_done(run)
        return run

    def _report_when_done(self, run: Run) -> None:
        """Have :meth:`_finished` run once the run's task is done.

        A supervised or observed loop always reports its end; a standalone
        one only when something waits for it (see :meth:`_report_if_needed`),
        which spares the mass start and cancel of plain discord.ext.tasks-style
        loops a done callback each.
        """
        if not run.reporting:
            run.reporting = True
            run.task.add_done_callback(lambda _task: self._finished(run))

    def _cancel_run(self, run: Run) -> None:
        if run.cancelling:
            return
        run.cancelling = True
        run.stop = True
        waiter = run.waiter
        if waiter is not None and not waiter.done() and self._overlap == 1:
            # Asleep (or paused) between iterations: nothing runs that needs
            # preempting, so wake the runner with the flags above, as a Stop
            # does. The outcome is the same as cancelling the task (after_loop
            # runs with is_being_cancelled() true, the task ends cancelled),
            # without throwing CancelledError through the runner's frames and
            # uncancelling it again: a mass cancel costs about half as much.
            run.attention = True
            waiter.set_result(False)
        elif run.began and not run.task.done():
            run.cancel_sent = True
            run.task.cancel()
        # A run that has not begun sees the flags when it does, and goes
        # straight to after_loop: after_loop runs exactly once per start.

    def _view(self) -> Run | None:
        """The run the caller is looking at: an ending run, from inside its own task."""
        run = self._run
        previous = None if run is None else run.previous
        if previous is not None and not previous.task.done():
            try:
                current = asyncio.current_task()
            except RuntimeError:
                return run
            # Several runs may be queued (start, cancel, start, cancel, start
            # in one go): each waits for the one before, so walk the chain.
            while previous is not None and not previous.task.done():
                if previous.task is current:
                    return previous
                previous = previous.previous
        return run

    async def _runner(self, run: Run) -> None:
        run.began = True
        error: BaseException | None = None
        ready = False  # whether run.ready is resolved: the end need not touch it again
        try:
            previous = run.previous
            if previous is not None:
                # Wait even when the task is already done: its done callback
                # (_finished: the exit report to the parent, the stopped event)
                # is queued and must run before this run's start is announced.
                await asyncio.wait((previous.task,))
                run.previous = None
            self._begin(run)
            if not run.stop:
                if self._before is not None:
                    await self._call_hook(self._before)
                self._set_ready(run, True)
                ready = True
                if not run.stop:
                    if self._overlap == 1:
                        await self._iterate(run)
                    else:
                        await self._iterate_overlapping(run)
        except asyncio.CancelledError as cancelled:
            if not self._absorb_cancel(run):
                error = cancelled
        except (KeyboardInterrupt, SystemExit):
            run.failed = True
            raise
        except BaseException as exc:
            error = exc
        if error is not None:
            error = await self._escalate(run, error)
        run.state = _STOPPING
        after = self._after
        if after is not None:
            after_error: BaseException | None
            try:  # _guard, inlined: one coroutine fewer at the end of every run
                if self._instance is None:
                    await after()
                else:
                    await after(self._instance)
                after_error = None
            except asyncio.CancelledError as cancelled:
                after_error = None if self._absorb_cancel(run) else cancelled
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:
                after_error = exc
            if after_error is not None:
                after_error = await self._escalate(run, after_error)
                error = after_error if error is None else error
        run.ended = True
        if not ready:
            self._set_ready(run, False)
        if error is not None:
            run.state = _FAILED
            self._report_when_done(run)  # _finished also retrieves the task's exception
            raise error
        if run.cancelling:
            run.state = _CANCELLED
            self._report_if_needed(run)
            # End cancelled without unwinding an exception through the frames:
            # a task cancelled during its last step is cancelled when it returns.
            run.task.cancel()
            return
        run.state = _STOPPED
        self._report_if_needed(run)

    def _report_if_needed(self, run: Run) -> None:
        """On a clean end, ask for the end report if anything waits for it.

        ``_finished`` answers pending asks, turns queued messages into dead
        letters, publishes the stopped event and tells the parent. Called on
        the runner's last step, with no await after it, so nothing can change
        the answer before the task is done. (A standalone loop has no
        ancestors, so its own hub is the only place a listener could be.)
        """
        if (
            self._parent is not None
            or self._hub is not None
            or run.acks_end
            or run.acks_plan
            or run.acks_run_now
            or run.acks_begin
            or self._inbox
        ):
            self._report_when_done(run)

    def _begin(self, run: Run) -> None:
        if run.restart:
            self._restart_count += 1
        run.trackers.clear()
        _acknowledge(run.acks_begin, 0, None)
        self._emit(ActorStarted)

    def _set_ready(self, run: Run, reached: bool) -> None:
        # The result says whether before_loop was passed: asked later, a run
        # that got ready and has since ended still reports it was ready.
        ready = run.ready
        if ready is not None and not ready.done():
            ready.set_result(reached)
            parent = self._parent
            if parent is not None:
                parent._on_child_ready(self)

    def _absorb_cancel(self, run: Run) -> bool:
        """Record a cancellation of the run's task; False if nobody asked for it."""
        task = run.task
        if task.cancelling() == 0:
            return False  # a CancelledError raised by library code: a failure
        run.cancelling = True
        run.stop = True
        if run.cancel_sent:
            run.cancel_sent = False
            task.uncancel()  # ours: let after_loop run in a clean task
        return True

    async def _call_hook(self, hook: CoroFunction, *args: Any) -> None:
        if self._instance is not None:
            await hook(self._instance, *args)
        else:
            await hook(*args)

    async def _guard(self, run: Run, hook: CoroFunction, *args: Any) -> BaseException | None:
        """Run a hook; return what it raised, absorbing an asked-for cancellation."""
        try:
            if self._instance is not None:  # _call_hook, inlined: one coroutine fewer
                await hook(self._instance, *args)
            else:
                await hook(*args)
        except asyncio.CancelledError as cancelled:
            return None if self._absorb_cancel(run) else cancelled
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:
            return exc
        return None

    async def _escalate(self, run: Run, error: BaseException) -> BaseException:
        """Mark the run failed and call the error handler; return the error to escalate.

        An error raised by the handler itself is escalated in place of the
        original, which stays reachable as its ``__context__``.
        """
        run.failed = True
        self._note(error)
        if self._error is None:
            logger.error(
                "loop %r failed at iteration %d", self.path, run.current_loop, exc_info=error
            )
            return error
        # discord.ext.tasks passes the exception alone (plus the instance in a
        # class), never the start arguments: handlers written for it must work.
        handler_error = await self._guard(run, self._error, error)
        if handler_error is None:
            return error
        logger.error("error handler of loop %r raised", self.path, exc_info=handler_error)
        if handler_error.__context__ is None:
            handler_error.__context__ = error
        self._note(handler_error)
        return handler_error

    def _note(self, error: BaseException) -> None:
        if error is not self._noted:
            self._noted = error
            self._failure_count += 1
            self._last_error = error

    def _finished(self, run: Run) -> None:
        """After the task has ended: answer, clean up, tell the parent."""
        task = run.task
        run.ended = True
        if task.cancelled() and run.failed and self._last_error is not None:
            # An unrequested CancelledError was escalated and re-raised, which
            # makes the task look cancelled: report the failure it really is.
            exit = Exit(ExitKind.FAILED, self._last_error)
        elif task.cancelled():
            exit = Exit(ExitKind.CANCELLED, requested=True)
            if not run.began:  # cancelled from outside before its first step
                run.state = _CANCELLED
        else:
            error = task.exception()  # also marks it retrieved: it was reported already
            if error is None:
                exit = Exit(ExitKind.NORMAL, requested=run.stop)
            else:
                exit = Exit(ExitKind.FAILED, error)
        # Each step below is skipped when it has nothing to do: ending
        # thousands of loops at once (a shutdown) should cost little more
        # than ending their tasks.
        iteration = run.current_loop
        if run.acks_end:
            _acknowledge(run.acks_end, iteration, None)
        if run.acks_plan:
            _acknowledge(run.acks_plan, iteration, None)
        if run.acks_run_now:
            _abandon(run.acks_run_now, self.path)
        if run.acks_begin:
            _abandon(run.acks_begin, self.path)
        if self._inbox and self._run is run:
            self._discard_inbox()
        self._report_exit(exit)

    # -- iterating --------------------------------------------------------------

    def _body_args(self, run: Run) -> tuple[Any, ...]:
        return run.args if self._instance is None else (self._instance, *run.args)

    async def _iterate(self, run: Run) -> None:
        event_loop = asyncio.get_running_loop()
        time = event_loop.time
        clock = get_clock(event_loop)
        body = self._coro
        args = self._body_args(run)
        kwargs = run.kwargs
        count = self._count
        plan.plan_first(run, self._schedule, time(), clock, self._wait_first)
        run.state = _SLEEPING  # set up and planned: a ChangeInterval ack sees the plan
        self._planned(run, event_loop, clock)
        # How many of run.acks_run_now (the oldest) the iteration about to
        # succeed answers: those asked before it began. A RunNow asked while
        # it runs asks for another iteration and waits for that one.
        serving = 0
        while True:
            if run.attention:
                if run.stop:  # the usual way out; _attend would say the same
                    run.attention = False
                    return
                if not await self._attend(run, time, clock):
                    return
            if run.run_now:
                run.run_now = False
                run.extra = run.retry_at is None  # else the pending retry runs now
                run.retry_at = None
                serving = len(run.acks_run_now)
            elif run.paused:
                run.state = _PAUSED
                await self._wait(run, None, clock)
                continue
            else:
                due = run.retry_at
                if due is None:
                    if run.due_wall is not None:
                        plan.refresh_wall_due(run, time(), clock)
                    due = run.due
                if due > time():
                    run.state = _SLEEPING if run.retry_at is None else _RETRYING
                    waiter = self._arm(run, due)
                    try:
                        reached = await waiter
                    finally:  # _disarm, inlined: a timer is always armed here
                        run.waiter = None
                        timer = run.timer
                        run.timer = None
                        timer.cancel()  # type: ignore[union-attr]
                    if not reached or (
                        run.due_wall is not None and not self._arrived(run, reached, clock)
                    ):
                        continue
                else:
                    await asyncio.sleep(0)  # stay fair to other tasks when behind schedule
                    if run.attention:
                        continue
            run.state = _RUNNING
            started = time()
            try:
                await body(*args, **kwargs)
            except BaseException as exc:
                if self._schedule_retry(run, exc, time, clock):
                    continue
                raise
            if run.trackers:
                self._recovered(run)
            run.current_loop += 1
            run.retry_at = None
            run.last_start = started
            if run.extra:
                run.extra = False
            else:
                plan.advance(run, self._schedule, time(), clock, self._missed == "skip")
            # Between iterations: the next one is planned. Not RUNNING any
            # more, so next_iteration reads the planned time, not the tick after.
            run.state = _SLEEPING
            finished = count is not None and run.current_loop >= count
            if serving:
                answered = run.acks_run_now[:serving]
                del run.acks_run_now[:serving]
                serving = 0
                upcoming = None if finished else self._next_iteration_of(run)
                _acknowledge(answered, run.current_loop, upcoming)
            if finished:
                return

    async def _attend(self, run: Run, time: Callable[[], float], clock: Clock) -> bool:
        """Act on the requests flagged since the last look; False means end the run."""
        run.attention = False
        if run.stop:
            return False
        if self._inbox:
            await self._drain_inbox()
            if run.stop:
                return False
        if run.rescheduled or run.resumed:
            if run.resumed:
                run.resumed = False
                run.retry_at = None
                plan.resume(run, self._schedule, time(), clock)
            if run.rescheduled:
                run.rescheduled = False
                plan.replan(run, self._schedule, time(), clock)
            self._planned(run, asyncio.get_running_loop(), clock)
        return True

    def _planned(self, run: Run, event_loop: asyncio.AbstractEventLoop, clock: Clock) -> None:
        if run.acks_plan:
            iteration = run.current_loop
            upcoming = None if run.paused else self._next_iteration_of(run)
            _acknowledge(run.acks_plan, iteration, upcoming)

    async def _wait(self, run: Run, due: float | None, clock: Clock) -> bool:
        """Wait until ``due`` (monotonic) or a request; True if ``due`` was reached.

        Cancellation propagates (it is how ``Cancel`` preempts a busy run).
        The hot path in :meth:`_iterate` does the same with :meth:`_arm` and
        :meth:`_arrived` inline, to save a coroutine per sleep.
        """
        waiter = self._arm(run, due)
        try:
            reached = await waiter
        finally:
            self._disarm(run)
        return self._arrived(run, reached, clock)

    def _arm(self, run: Run, due: float | None) -> asyncio.Future[bool]:
        """Prepare a wait: one future, and one timer handle when ``due`` is set.

        A wait for a wall-clock slot is cut into pieces of at most
        ``WALL_RECHECK_SECONDS`` and confirmed against the wall clock by
        :meth:`_arrived`, so a clock step or a suspend never makes it early,
        nor late by more than one piece.
        """
        event_loop = self._event_loop
        assert event_loop is not None
        waiter: asyncio.Future[bool] = event_loop.create_future()
        run.waiter = waiter
        run.capped = False
        if due is not None:
            if run.due_wall is not None and run.retry_at is None:
                limit = event_loop.time() + WALL_RECHECK_SECONDS
                if due > limit:
                    due = limit
                    run.capped = True
            run.timer = event_loop.call_at(due, _fire, waiter)
        return waiter

    @staticmethod
    def _disarm(run: Run) -> None:
        run.waiter = None
        timer = run.timer
        if timer is not None:
            run.timer = None
            timer.cancel()

    @staticmethod
    def _arrived(run: Run, reached: bool, clock: Clock) -> bool:
        """Whether a finished wait reached its due time (not a request, nor a re-check)."""
        if not reached or run.capped:
            return False
        due_wall = run.due_wall
        return due_wall is None or run.retry_at is not None or clock.wall() >= due_wall

    # -- failures -------------------------------------------------------------------

    def _retry_rule(self, error: BaseException) -> RetryRule | None:
        for rule in self._retry_rules:
            if rule.matches(error):
                return rule
        types = self._exception_types
        if types and isinstance(error, types):
            return _default_rule(types)
        return None

    def _schedule_retry(
        self, run: Run, error: BaseException, time: Callable[[], float], clock: Clock
    ) -> bool:
        """Decide whether a failed iteration is retried; if so, set when.

        Returns False when the error is to be escalated. A transient error
        raised after a Stop is not escalated either: the retry it would get
        is abandoned (True is returned with no retry set, and the run ends
        normally at its next look at its flags), its error kept in the status.
        """
        if isinstance(error, asyncio.CancelledError | KeyboardInterrupt | SystemExit):
            return False  # classified by the runner
        self._note(error)
        rule = self._retry_rule(error) if self._reconnect else None
        limit = self._max_consecutive_failures
        retried = rule is not None and (limit is None or run.consecutive_failures < limit)
        parent = self._parent
        if parent is not None and not run.stop:
            # The supervisor's should_retry hook has the last word (SPEC 2).
            attempt = run.consecutive_failures + 1
            retried = parent._child_should_retry(self, error, attempt, retried)
            if retried and rule is None:
                rule = _SUPERVISOR_RULE
        self._emit(
            IterationFailed,
            iteration=run.current_loop,
            error=describe(error),
            retried=retried and not run.stop,
        )
        if not retried:
            return False  # escalated next: _noted keeps _escalate from counting it twice
        if run.stop:
            logger.info("loop %r: %s; stopping, not retried", self.path, describe(error))
            self._noted = None
            run.retry_at = None
            run.attention = True
            return True
        # Retried: this failure is counted. The body may raise the very same
        # exception object again (a cached instance), and that is a new failure.
        self._noted = None
        assert rule is not None
        run.consecutive_failures += 1
        tracker = run.trackers.get(rule)
        if tracker is None:
            policy = rule.backoff or self._backoff_or_parents(self._backoff)
            tracker = run.trackers[rule] = policy.tracker()
        now = time()
        next_tick: float | None
        if run.extra and run.due > now:
            next_tick = run.due  # an extra run's retry must not delay the pending regular one
        else:
            next_tick = plan.retry_deadline(run, self._schedule, now, clock)
        delay = retry_delay(rule, tracker, error, now=now, next_tick=next_tick)
        run.retry_at = now + delay
        if next_tick is not None and delay >= next_tick - now and not run.extra:
            if delay == next_tick - now:
                run.retry_at = next_tick  # exactly on the tick, free of float rounding
            if self._overlap == 1:
                # The retry runs in place of the regular ticks it reaches, so a
                # success is not followed at once by a run of those ticks.
                plan.stand_in(run, self._schedule, run.retry_at, now, clock)
        logger.info(
            "loop %r: %s; retry %d in %.3f s", self.path, describe(error), tracker.attempt, delay
        )
        self._emit(RetryScheduled, iteration=run.current_loop, attempt=tracker.attempt, delay=delay)
        return True

    def _recovered(self, run: Run) -> None:
        run.consecutive_failures = 0
        trackers = run.trackers
        for tracker in trackers.values():
            tracker.success()
        if all(tracker.attempt == 0 for tracker in trackers.values()):
            trackers.clear()

    # -- overlapping iterations -------------------------------------------------------

    async def _iterate_overlapping(self, run: Run) -> None:
        """Start iterations on schedule without waiting for the previous ones.

        At most ``overlap`` run at once (0: no limit); when the limit is
        reached the next start waits for a running one to end, and the
        ``missed`` policy applies as for an overrun. A transient error is
        retried inside its own iteration; any other error ends the run, and
        the iterations still running are cancelled.
        """
        event_loop = asyncio.get_running_loop()
        time = event_loop.time
        clock = get_clock(event_loop)
        limit = self._overlap
        count = self._count
        running: set[asyncio.Task[None]] = set()
        failure: list[BaseException] = []
        launched = 0
        plan.plan_first(run, self._schedule, time(), clock, self._wait_first)
        run.state = _SLEEPING  # set up and planned: a ChangeInterval ack sees the plan
        self._planned(run, event_loop, clock)

        reaping = False  # set once the finally below cancels the iterations

        def done(task: asyncio.Task[None]) -> None:
            running.discard(task)
            if task.cancelled():
                if not reaping:
                    # Only the finally below cancels an iteration: this one
                    # raised a CancelledError nobody asked for, a failure.
                    try:
                        task.result()
                    except asyncio.CancelledError as unrequested:
                        failure.append(unrequested)
            elif task.exception() is not None:
                failure.append(task.exception())  # type: ignore[arg-type]
            run.attend()

        try:
            while not failure and (count is None or launched < count):
                if run.attention and not await self._attend(run, time, clock):
                    break
                if limit and len(running) >= limit:
                    await self._wait(run, None, clock)
                    continue
                extra = run.run_now
                if extra:
                    run.run_now = False
                elif run.paused:
                    run.state = _PAUSED
                    await self._wait(run, None, clock)
                    continue
                else:
                    if run.due_wall is not None:
                        plan.refresh_wall_due(run, time(), clock)
                    if run.due > time():
                        run.state = _SLEEPING
                        if not await self._wait(run, run.due, clock):
                            continue
                    else:
                        await asyncio.sleep(0)
                        if run.attention:
                            continue
                run.state = _RUNNING
                launched += 1
                iteration = event_loop.create_task(self._one_overlapped(run, extra))
                running.add(iteration)
                iteration.add_done_callback(done)
                run.last_start = time()
                if not extra:
                    plan.advance(run, self._schedule, time(), clock, self._missed == "skip")
            while running and not failure:
                run.state = _STOPPING
                await self._wait(run, None, clock)
        finally:
            reaping = True
            for task in list(running):
                task.cancel()
            if running:
                await asyncio.wait(running)
        if failure:
            raise failure[0]

    async def _one_overlapped(self, run: Run, extra: bool) -> None:
        event_loop = asyncio.get_running_loop()
        clock = get_clock(event_loop)
        args = self._body_args(run)
        while True:
            try:
                await self._coro(*args, **run.kwargs)
            except BaseException as exc:
                if isinstance(exc, asyncio.CancelledError) and asyncio.current_task().cancelling():  # type: ignore[union-attr]
                    raise
                if not self._schedule_retry(run, exc, event_loop.time, clock):
                    raise
                if run.retry_at is None:
                    return  # stopping: the retry is abandoned
                delay = run.retry_at - event_loop.time()
                run.retry_at = None
                await asyncio.sleep(max(0.0, delay))
                continue
            if run.trackers:
                self._recovered(run)
            run.current_loop += 1
            if extra:
                iteration = run.current_loop
                _acknowledge(run.acks_run_now, iteration, None)
            return

    # -- reporting ------------------------------------------------------------------------

    def _next_iteration_of(self, run: Run) -> dt.datetime | None:
        if run.task.done() or run.stop or run.paused or not run.began or run.ended:
            return None
        state = run.state
        if state is _STARTING:
            return None
        event_loop = self._event_loop
        assert event_loop is not None
        clock = get_clock(event_loop)
        if run.retry_at is not None:
            due, due_wall = run.retry_at, None
        else:
            due, due_wall = run.due, run.due_wall
        if state is _RUNNING and run.retry_at is None and not run.extra:
            due = plan.next_regular_tick(run, self._schedule, event_loop.time(), clock)
            due_wall = None
        if due_wall is not None:
            return due_wall
        return clock.wall() + dt.timedelta(seconds=due - event_loop.time())


_DEFAULT_RULES: dict[tuple[type[BaseException], ...], RetryRule] = {}

#: The backoff of a loop that has none of its own and no supervisor's (discord's).

#: The rule of an error retried because the supervisor's should_retry said so.
_SUPERVISOR_RULE = RetryRule(Exception)


def _default_rule(types: tuple[type[BaseException], ...]) -> RetryRule:
    """The rule standing for the whitelist (cached: one tracker per whitelist)."""
    rule = _DEFAULT_RULES.get(types)
    if rule is None:
        rule = _DEFAULT_RULES[types] = RetryRule(types)
    return rule
