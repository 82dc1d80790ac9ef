"""The iterations of a Loop's run: wait until due, run the body, retry, move on.

The hot path is `LoopIteration._iterate`: per iteration it awaits the
body, checks one flag, moves the schedule, and then either yields once (the
next iteration is already due) or waits on one future with one timer handle.
No task, event or stream object is created per iteration. Requests (Stop,
ChangeInterval, ...) are flags set by the control handlers; the iteration
loop looks at them between iterations and whenever a wait is woken.

Also here: the retry decision for a failed iteration (retry rules, the
supervisor's say, the backoff delay capped by the schedule), and the calls
into the installed instrumentation (`supervised_loops.instrument`: one
attribute read per iteration when nothing is installed). Iterations that
overlap are `loops.overlap`'s.

`LoopIteration` holds every slot of a Loop: its configuration
(`loops.binding.CONFIGURATION`) and its binding; `LoopEngine` builds on it
and runs the rest of each run (hooks, cancellation, escalation).

May import: ``loops.run``, ``loops.plan``, ``loops.sleep``, ``loops.binding``,
``loops.observe``, ``loops.recent``, ``core`` and the pure top-level modules.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from .. import instrument
from ..backoff import ExponentialBackoff, RetryRule, retry_delay
from ..clock import Clock, get_clock
from ..core.runnable import Runnable, acknowledge
from ..events import IterationFailed, RetryScheduled, describe
from ..instrument import Instrumentation, Outcome, SkipReason, Trigger
from ..messages import State
from ..schedule import Schedule
from . import observe, plan, recent
from .binding import BINDING, CONFIGURATION
from .recent import CODES, RecentIterations
from .run import LoopRun as Run
from .sleep import arm, arrived, disarm, yield_once

logger = logging.getLogger("supervised_loops")

CoroFunction = Callable[..., Awaitable[Any]]
# What an observed iteration's end repeats of its start: the instrumentation
# that saw it begin, trigger, attempt, scheduled and start times, token.
Begun = tuple[Instrumentation, Trigger, int, float, float, object]


# Enum member lookups cost ~70 ns each; the runner sets states on every
# iteration, so it uses module constants.
_STARTING, _RUNNING, _SLEEPING, _RETRYING, _PAUSED = (
    State.STARTING,
    State.RUNNING,
    State.SLEEPING,
    State.RETRYING,
    State.PAUSED,
)
_OK = CODES["ok"]
_FAILURES = frozenset({"retried", "failed"})
_STOPPING, _STOPPED, _CANCELLED, _FAILED = (
    State.STOPPING,
    State.STOPPED,
    State.CANCELLED,
    State.FAILED,
)


class LoopIteration(Runnable):
    """Iterates a Loop's run (internal base of `Loop`).

    Holds every slot of a Loop: its configuration (set by ``Loop.__init__``)
    and its run bookkeeping (`core.runnable.Runnable`).
    """

    __slots__ = (*CONFIGURATION, *BINDING)

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
    _instances: Any  # weakref.WeakKeyDictionary | dict of bound copies (loops.binding)
    _run: Run | None  # a Loop's runs are LoopRuns
    _recent: RecentIterations | None  # its recent iterations, when kept (loops.recent)

    def _body_args(self, run: Run) -> tuple[Any, ...]:
        return run.args if self._instance is None else (self._instance, *run.args)

    async def _iterate(self, run: Run) -> None:
        event_loop = asyncio.get_running_loop()
        # event_loop.time() rather than a local bound method: an idle loop
        # would keep that bound method (64 bytes) alive in this frame.
        clock = get_clock(event_loop)
        body = self._coro
        args = self._body_args(run)
        kwargs = run.kwargs
        count = self._count
        skip_missed = self._missed == "skip"  # configuration: fixed for the run
        plan.plan_first(run, self._schedule, event_loop.time(), clock, self._wait_first)
        run.state = _SLEEPING  # set up and planned: a ChangeInterval ack sees the plan
        self._planned(run)
        # How many of run.acks_run_now (the oldest) the iteration about to
        # succeed answers: those asked before it began. A RunNow asked while
        # it runs asks for another iteration and waits for that one.
        serving = 0
        by_request = False  # the next iteration is a RunNow's (for the instrumentation)
        hooks = instrument  # one attribute read per iteration when nothing is installed
        # The run's task has just taken its first step: a first iteration
        # already due runs in this step, without yielding first (a restart
        # reaches the body one event-loop cycle sooner). Later due
        # iterations yield once, to stay fair to other tasks.
        fresh = True
        while True:
            if run.attention:
                if run.stop:  # the usual way out; _attend would say the same
                    run.attention = False
                    return
                if not await self._attend(run, event_loop.time, clock):
                    return
            if run.run_now:
                run.run_now = False
                by_request = True
                run.extra = run.retry_at is None  # else the pending retry runs now
                run.retry_at = None
                serving = len(run.acks_run_now or ())
            elif run.paused:
                run.state = _PAUSED
                await self._wait(run, None, clock)
                continue
            else:
                due = run.retry_at
                if due is None:
                    if run.due_wall is not None:
                        plan.refresh_wall_due(run, event_loop.time(), clock)
                    due = run.due
                if due > event_loop.time():
                    run.state = _SLEEPING if run.retry_at is None else _RETRYING
                    waiter = arm(run, event_loop, due)
                    try:
                        reached = await waiter
                    finally:
                        # The timer stays armed: woken by a message, the run
                        # most often sleeps again towards the same due time
                        # (arm keeps it then). The runner cancels it at its end.
                        run.waiter = None
                    if not reached or (
                        run.due_wall is not None and not arrived(run, reached, clock)
                    ):
                        continue
                elif fresh:
                    fresh = False
                else:
                    await yield_once()  # stay fair to other tasks when behind schedule
                    if run.attention:
                        continue
            run.state = _RUNNING
            started = event_loop.time()
            instrumentation = hooks.installed
            # What the instrumentation's end repeats of its start, in one tuple
            # made apart from _iterate: a suspended _iterate keeps its locals
            # and its evaluation stack (sized by its widest call) in every
            # idle loop's frame.
            begun = (
                None
                if instrumentation is None
                else self._observe_start(run, instrumentation, by_request, started)
            )
            try:
                await body(*args, **kwargs)
            except BaseException as exc:
                if self._failed(run, exc, started, by_request, begun):
                    continue
                raise
            if begun is not None:
                self._observe_end(run, begun, "ok", None)
            if self._recent is not None:  # the loop's ring (loops.recent): three numbers
                self._recent.add(
                    started, event_loop.time(), plan.due_of(run, by_request, started), _OK
                )
            by_request = False
            if run.trackers:
                self._recovered(run)
            run.current_loop += 1
            run.retry_at = None
            run.last_start = started
            if run.extra:
                run.extra = False
            elif plan.advance(run, self._schedule, event_loop.time(), clock, skip_missed):
                self._skipped("missed")
            # Between iterations: the next one is planned. Not RUNNING any
            # more, so next_iteration reads the planned time, not the tick after.
            run.state = _SLEEPING
            finished = count is not None and run.current_loop >= count
            if serving:
                self._answer_run_now(run, serving, finished)
                serving = 0
            if finished:
                return

    def _answer_run_now(self, run: Run, serving: int, finished: bool) -> None:
        """Answer the ``serving`` oldest RunNow asks: the iteration run for them is done.

        Apart from `_iterate`: its locals live in every idle loop's frame.
        """
        pending = run.acks_run_now
        assert pending is not None
        answered = pending[:serving]
        del pending[:serving]
        upcoming = None if finished else self._next_iteration_of(run)
        acknowledge(answered, run.current_loop, upcoming)

    def _failed(
        self, run: Run, error: BaseException, started: float, by_request: bool, begun: Begun | None
    ) -> bool:
        """Decide about an iteration that raised ``error``: True if it is retried.

        The decision is `_schedule_retry`'s; the iteration is then recorded
        in the loop's ring and told to the instrumentation that saw it begin
        (``begun``), with the outcome the decision gave it.
        """
        scheduled = plan.due_of(run, by_request, started)  # before a retry moves it
        event_loop = self._event_loop
        assert event_loop is not None
        retried = self._schedule_retry(run, error, event_loop.time, get_clock(event_loop))
        outcome = self._outcome(run, error, retried)
        ring = self._ring_after(outcome)
        if ring is not None:
            ended = event_loop.time()
            ring.add_outcome(started, ended, scheduled, outcome, error, run.current_loop)
        if begun is not None:
            self._observe_end(run, begun, outcome, error)
        return retried

    def _ring_after(self, outcome: Outcome) -> RecentIterations | None:
        """The ring an iteration that ended with ``outcome`` goes to, if any.

        While recording is on, a loop whose iteration failed (retried or not)
        gets a ring if it has none: the failure and its traceback are kept
        whether or not anything showed the loop before (see `loops.recent`).
        """
        found = self._recent
        if found is None and outcome in _FAILURES and recent.recording():
            found = recent.attach(self)
        return found

    def _skipped(self, reason: SkipReason) -> None:
        """A due iteration did not run: count it in the ring, tell the instrumentation."""
        if self._recent is not None:
            self._recent.skipped += 1
        observe.iteration_skipped(self.path, self._name, reason)

    def _observe_start(
        self, run: Run, instrumentation: Instrumentation, by_request: bool, started: float
    ) -> Begun:
        """Tell the instrumentation an iteration starts (see `loops.observe`)."""
        trigger: Trigger = "schedule"
        if run.retry_at is not None:
            trigger = "retry"
        elif by_request:
            trigger = "run-now"
        scheduled = plan.due_of(run, by_request, started)
        attempt = run.consecutive_failures + 1
        token = None
        if instrumentation.observes_starts:
            token = observe.iteration_started(
                instrumentation, self._path or self.path, self._name, run.current_loop, trigger,
                attempt, scheduled, started,
            )  # fmt: skip
        return instrumentation, trigger, attempt, scheduled, started, token

    def _observe_end(
        self, run: Run, begun: Begun, outcome: Outcome, error: BaseException | None
    ) -> None:
        """Tell the instrumentation that saw the iteration begin how it ended."""
        instrumentation, trigger, attempt, scheduled, started, token = begun
        if token is observe.BROKEN:
            return
        event_loop = self._event_loop
        assert event_loop is not None
        try:
            instrumentation.iteration_ended(
                self._path or self.path, self._name, run.current_loop, trigger, attempt,
                scheduled, started, event_loop.time(), outcome, error, token,
            )  # fmt: skip
        except Exception as failure:
            observe.broken(instrumentation, failure)

    @staticmethod
    def _outcome(run: Run, error: BaseException, retried: bool) -> Outcome:
        """How an iteration that raised ``error`` ended, for the instrumentation."""
        if retried:
            # A retry abandoned because the run is stopping is not a failure.
            return "retried" if run.retry_at is not None else "cancelled"
        if isinstance(error, asyncio.CancelledError):
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                return "cancelled"  # asked for; one nobody asked for is a failure
        return "failed"

    async def _call_body(self, run: Run) -> None:
        if self._instance is None:
            await self._coro(*run.args, **run.kwargs)
        else:
            await self._coro(self._instance, *run.args, **run.kwargs)

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
                if plan.resume(run, self._schedule, time(), clock):
                    self._skipped("paused")
            if run.rescheduled:
                run.rescheduled = False
                plan.replan(run, self._schedule, time(), clock)
            self._planned(run)
        return True

    def _planned(self, run: Run) -> None:
        """Answer the asks waiting for the plan now in force.

        Those are ChangeInterval and Resume, and the Restart that began this
        run (its first plan: the Ack says when the first iteration is due).
        """
        if run.acks_begin:
            acknowledge(run.acks_begin, run.current_loop, self._next_iteration_of(run))
        if run.acks_plan:
            iteration = run.current_loop
            upcoming = None if run.paused else self._next_iteration_of(run)
            acknowledge(run.acks_plan, iteration, upcoming)

    async def _wait(self, run: Run, due: float | None, clock: Clock) -> bool:
        """Wait until ``due`` (monotonic) or a request; True if ``due`` was reached.

        Cancellation propagates (it is how ``Cancel`` preempts a busy run).
        The hot path in `_iterate` does the same inline, to save a
        coroutine per sleep.
        """
        waiter = arm(run, self._event_loop, due)
        try:
            reached = await waiter
        finally:
            disarm(run)
        return arrived(run, reached, clock)

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
        if self._parent is not None and not run.stop:
            # The supervisor's should_retry hook has the last word (docs/supervision.md,
            # "Where a failure goes").
            attempt = run.consecutive_failures + 1
            retried = self._should_retry(error, attempt, retried)
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
            self._retried()
            run.retry_at = None
            run.attention = True
            return True
        # Retried: this failure is counted. The body may raise the very same
        # exception object again (a cached instance), and that is a new failure.
        self._retried()
        assert rule is not None
        run.consecutive_failures += 1
        trackers = run.trackers
        if trackers is None:
            trackers = run.trackers = {}
        tracker = trackers.get(rule)
        if tracker is None:
            policy = rule.backoff or self._backoff_or_parents(self._backoff)
            tracker = trackers[rule] = policy.tracker()
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
        assert trackers is not None
        for tracker in trackers.values():
            tracker.success()
        if all(tracker.attempt == 0 for tracker in trackers.values()):
            trackers.clear()

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
        shown = run.shown_due
        if shown is not None and shown[0] == due:
            return shown[1]
        moment = clock.wall() + dt.timedelta(seconds=due - event_loop.time())
        run.shown_due = (due, moment)
        return moment


_DEFAULT_RULES: dict[tuple[type[BaseException], ...], RetryRule] = {}

#: The rule of an error retried because the supervisor's should_retry said so.
_SUPERVISOR_RULE = RetryRule(Exception)


def _default_rule(types: tuple[type[BaseException], ...]) -> RetryRule:
    """The rule standing for the whitelist (cached: one tracker per whitelist)."""
    rule = _DEFAULT_RULES.get(types)
    if rule is None:
        rule = _DEFAULT_RULES[types] = RetryRule(types)
    return rule
