"""The known faults of discord.ext.tasks are absent from Loop (docs/migration.md).

Each test is named after one reported fault of the original and proves that
this library does not have it. They all run in virtual time, so "a day-long
sleep" or "three days of a daily loop" take microseconds, and the instants
asserted are exact.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from supervised_loops import ExponentialBackoff, RunNow, State, loop
from supervised_loops.clock import WALL_RECHECK_SECONDS
from supervised_loops.events import ActorEnded, ActorFailed, Event
from supervised_loops.testing import VirtualClock, virtual_time

EXACT = ExponentialBackoff(jitter=False)
UTC = dt.UTC
DAY = 86_400.0
HOUR = 3_600.0


async def until_exit(subscription: Any) -> list[Event]:
    """Read a loop's events up to (and including) the one reporting its exit."""
    events: list[Event] = []
    async for event in subscription:
        events.append(event)
        if isinstance(event, ActorFailed | ActorEnded):
            return events
    raise AssertionError("the event stream ended without an exit event")


# --------------------------------------------------------------------------
# A CancelledError nobody asked for is a failure; the owner's cancel() is not.


@virtual_time()
async def test_unrequested_cancelled_error_in_the_body_is_a_failure_not_a_quiet_exit() -> None:
    log: list[Any] = []

    @loop(seconds=10)
    async def fetch() -> None:
        # What a client library does after a connection reset: it awaits a
        # future that was cancelled under it, and CancelledError escapes
        # although nobody cancelled this task.
        doomed = asyncio.get_running_loop().create_future()
        doomed.cancel()
        await doomed

    @fetch.error
    async def on_error(error: BaseException) -> None:
        log.append(("error", type(error)))

    @fetch.after_loop
    async def after() -> None:
        log.append(("after", fetch.failed(), fetch.is_being_cancelled()))

    subscription = fetch.events()
    task = fetch.start()
    with pytest.raises(asyncio.CancelledError):
        await task
    events = await until_exit(subscription)
    assert log == [("error", asyncio.CancelledError), ("after", True, False)]
    assert fetch.failed() is True
    assert fetch.status().state is State.FAILED
    # Its parent is told it failed (so a supervisor restarts it), not that it was cancelled.
    assert isinstance(events[-1], ActorFailed)
    assert events[-1].error == "CancelledError"


@virtual_time()
async def test_owner_cancel_is_not_a_failure_and_skips_the_error_handler() -> None:
    log: list[Any] = []

    @loop(seconds=10)
    async def fetch() -> None:
        await asyncio.sleep(60)

    @fetch.error
    async def on_error(error: BaseException) -> None:
        log.append("error")

    @fetch.after_loop
    async def after() -> None:
        log.append(("after", fetch.failed(), fetch.is_being_cancelled()))

    subscription = fetch.events()
    task = fetch.start()
    await asyncio.sleep(5)  # inside the body
    fetch.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    events = await until_exit(subscription)
    assert log == [("after", False, True)]
    assert fetch.failed() is False
    assert fetch.status().state is State.CANCELLED
    assert events[-1] == ActorEnded(path="fetch", at=events[-1].at, cancelled=True)


@virtual_time()
async def test_unrequested_cancelled_error_in_an_overlapping_iteration_is_a_failure() -> None:
    handled: list[type[BaseException]] = []

    @loop(seconds=10, overlap=True)
    async def fetch() -> None:
        doomed = asyncio.get_running_loop().create_future()
        doomed.cancel()
        await doomed

    @fetch.error
    async def on_error(error: BaseException) -> None:
        handled.append(type(error))

    task = fetch.start()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert handled == [asyncio.CancelledError]
    assert fetch.failed() is True
    assert fetch.current_loop == 0


@virtual_time()
async def test_owner_cancel_of_overlapping_iterations_is_not_a_failure(
    clock: VirtualClock,
) -> None:
    log: list[Any] = []

    @loop(seconds=10, overlap=True)
    async def slow() -> None:
        await asyncio.sleep(25)
        log.append("finished")  # never: each is cancelled first

    @slow.after_loop
    async def after() -> None:
        log.append(("after", slow.is_being_cancelled(), slow.failed(), clock.monotonic()))

    task = slow.start()
    await asyncio.sleep(22)  # three iterations are running
    slow.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert log == [("after", True, False, 22.0)]


# --------------------------------------------------------------------------
# stop() does not wait out a long sleep.


@virtual_time()
async def test_stop_during_a_day_long_sleep_ends_at_once_without_another_iteration(
    clock: VirtualClock,
) -> None:
    log: list[tuple[str, float]] = []

    @loop(hours=24)
    async def daily_report() -> None:
        log.append(("body", clock.monotonic()))

    @daily_report.after_loop
    async def after() -> None:
        log.append(("after", clock.monotonic()))

    task = daily_report.start()
    await asyncio.sleep(HOUR)
    daily_report.stop()
    await task
    assert log == [("body", 0.0), ("after", HOUR)]
    assert clock.monotonic() == HOUR
    assert daily_report.current_loop == 1


@virtual_time()
async def test_stop_while_waiting_to_retry_abandons_the_retry_at_once(clock: VirtualClock) -> None:
    calls: list[float] = []

    @loop(hours=1, backoff=ExponentialBackoff(base=300, jitter=False))
    async def upload() -> None:
        calls.append(clock.monotonic())
        raise ConnectionError("link down")

    task = upload.start()
    await asyncio.sleep(60)  # the retry is due at 600 s
    upload.stop()
    await task
    assert calls == [0.0]
    assert clock.monotonic() == 60.0
    assert upload.failed() is False
    assert upload.status().last_error == "ConnectionError: link down"


# --------------------------------------------------------------------------
# cancel()/stop() then start() at once; restart() on a stopped loop.


@virtual_time()
async def test_cancel_then_start_at_once_begins_the_new_run_after_the_old_after_loop(
    clock: VirtualClock,
) -> None:
    log: list[Any] = []

    @loop(seconds=10)
    async def worker(run: int) -> None:
        log.append(("body", run, clock.monotonic()))

    @worker.before_loop
    async def before() -> None:
        log.append(("before", clock.monotonic()))

    @worker.after_loop
    async def after() -> None:
        await asyncio.sleep(3)  # a slow flush: the new run must wait for it
        log.append(("after", worker.is_being_cancelled(), clock.monotonic()))

    first = worker.start(1)
    await asyncio.sleep(5)
    worker.cancel()
    second = worker.start(2)  # discord.ext.tasks raises RuntimeError here
    assert second is not first
    assert worker.get_task() is second
    await asyncio.sleep(14)
    assert first.cancelled()
    worker.stop()
    await second
    assert log == [
        ("before", 0.0),
        ("body", 1, 0.0),
        ("after", True, 8.0),  # cancelled at 5, flushed for 3 s
        ("before", 8.0),  # only then does the new run begin
        ("body", 2, 8.0),
        ("body", 2, 18.0),
        ("after", False, 22.0),
    ]


@virtual_time()
async def test_repeated_cancel_and_start_in_one_go_runs_every_after_loop_once_as_cancelled() -> (
    None
):
    log: list[Any] = []

    @loop(seconds=10)
    async def worker(run: int) -> None:
        log.append(("body", run))

    @worker.after_loop
    async def after() -> None:
        log.append(("after", worker.is_being_cancelled()))

    first = worker.start(1)
    worker.cancel()
    second = worker.start(2)
    worker.cancel()
    third = worker.start(3)
    await asyncio.sleep(1)
    assert first.cancelled()
    assert second.cancelled()
    # Neither cancelled run iterated; each ran after_loop once and saw its own
    # cancellation, not the state of the run queued after it.
    assert log == [("after", True), ("after", True), ("body", 3)]
    worker.stop()
    await third


@virtual_time()
async def test_stop_then_start_at_once_works_too() -> None:
    seen: list[int] = []

    @loop(seconds=10)
    async def worker(run: int) -> None:
        seen.append(run)

    first = worker.start(1)
    await asyncio.sleep(5)
    worker.stop()
    second = worker.start(2)
    await first
    await asyncio.sleep(1)
    worker.stop()
    await second
    assert seen == [1, 2]


@virtual_time()
async def test_restart_on_a_stopped_loop_starts_it_with_the_last_arguments(
    clock: VirtualClock,
) -> None:
    seen: list[tuple[Any, ...]] = []

    @loop(seconds=10, count=2)
    async def worker(channel: str, *, loud: bool) -> None:
        seen.append((channel, loud, clock.monotonic()))

    await worker.start("general", loud=True)
    assert worker.is_running() is False
    worker.restart()  # no arguments: reuse the last ones
    assert worker.is_running() is True
    await worker.get_task()  # type: ignore[misc]
    assert seen == [
        ("general", True, 0.0),
        ("general", True, 10.0),
        ("general", True, 10.0),
        ("general", True, 20.0),
    ]
    assert worker.status().restarts == 1


@virtual_time()
async def test_restart_on_a_running_loop_runs_after_loop_once_and_uses_new_arguments() -> None:
    log: list[Any] = []

    @loop(seconds=10)
    async def worker(channel: str) -> None:
        log.append((channel, worker.current_loop))

    @worker.after_loop
    async def after() -> None:
        log.append("after")

    task = worker.start("a")
    await asyncio.sleep(15)
    worker.restart("b")
    await asyncio.sleep(15)
    assert task.cancelled()
    assert log == [("a", 0), ("a", 1), "after", ("b", 0), ("b", 1)]
    worker.stop()
    await worker.get_task()  # type: ignore[misc]


@virtual_time()
async def test_restart_on_a_loop_that_never_ran_starts_it() -> None:
    seen: list[tuple[Any, ...]] = []

    @loop(seconds=10, count=1)
    async def worker(*args: Any) -> None:
        seen.append(args)

    worker.restart()
    task = worker.get_task()
    assert task is not None
    await task
    assert seen == [()]


# --------------------------------------------------------------------------
# change_interval in every state.


@virtual_time()
async def test_change_interval_in_before_loop_takes_effect(clock: VirtualClock) -> None:
    starts: list[float] = []

    @loop(hours=1, count=3)
    async def poll() -> None:
        starts.append(clock.monotonic())

    @poll.before_loop
    async def before() -> None:
        poll.change_interval(seconds=5)

    await poll.start()
    assert starts == [0.0, 5.0, 10.0]
    assert poll.seconds == 5.0


@virtual_time()
async def test_change_interval_before_the_first_start_takes_effect(clock: VirtualClock) -> None:
    starts: list[float] = []

    @loop(hours=1, count=3)
    async def poll() -> None:
        starts.append(clock.monotonic())

    poll.change_interval(seconds=7)
    assert (poll.seconds, poll.minutes, poll.hours) == (7.0, 0.0, 0.0)
    await poll.start()
    assert starts == [0.0, 7.0, 14.0]


@virtual_time()
async def test_change_interval_after_a_run_ended_applies_to_the_next_start(
    clock: VirtualClock,
) -> None:
    starts: list[float] = []

    @loop(seconds=10, count=2)
    async def poll() -> None:
        starts.append(clock.monotonic())

    await poll.start()
    poll.change_interval(seconds=3)
    await poll.start()
    assert starts == [0.0, 10.0, 10.0, 13.0]


@virtual_time()
async def test_shortening_the_interval_does_not_burst_the_missed_new_ticks(
    clock: VirtualClock,
) -> None:
    starts: list[float] = []

    @loop(hours=1)
    async def poll() -> None:
        starts.append(clock.monotonic())

    task = poll.start()
    await asyncio.sleep(3000)
    poll.change_interval(seconds=10)  # 300 ticks of the new grid lie in the past
    await asyncio.sleep(25)
    poll.stop()
    await task
    # Due at once (the new interval has elapsed), then every 10 s: no burst.
    assert starts == [0.0, 3000.0, 3010.0, 3020.0]


# --------------------------------------------------------------------------
# Backoff resets after success.


@virtual_time()
async def test_backoff_resets_after_a_successful_iteration(clock: VirtualClock) -> None:
    starts: list[float] = []
    failing = {1, 2, 4}  # the 1st, 2nd and 4th calls fail

    @loop(seconds=1000, count=3, backoff=EXACT)
    async def sync() -> None:
        starts.append(clock.monotonic())
        if len(starts) in failing:
            raise OSError("flaky network")

    await sync.start()
    # 0 fails, +2 fails, +4 succeeds; at 1000 fails again and waits 2 s (the
    # first window again), not 8 s as discord.ext.tasks' never-reset backoff.
    assert starts == [0.0, 2.0, 6.0, 1000.0, 1002.0, 2000.0]


# --------------------------------------------------------------------------
# Overruns: the missed-tick policy is explicit; overlap on request.


@virtual_time()
async def test_overrun_catches_up_missed_ticks_back_to_back_by_default(clock: VirtualClock) -> None:
    starts: list[float] = []

    @loop(seconds=10, count=6)
    async def job() -> None:
        starts.append(clock.monotonic())
        if len(starts) == 1:
            await asyncio.sleep(35)  # overruns the ticks at 10, 20 and 30

    await job.start()
    assert starts == [0.0, 35.0, 35.0, 35.0, 40.0, 50.0]


@virtual_time()
async def test_overrun_with_missed_skip_runs_once_at_once_then_reanchors(
    clock: VirtualClock,
) -> None:
    starts: list[float] = []

    @loop(seconds=10, count=5, missed="skip")
    async def job() -> None:
        starts.append(clock.monotonic())
        if len(starts) == 1:
            await asyncio.sleep(35)

    await job.start()
    assert starts == [0.0, 35.0, 45.0, 55.0, 65.0]


def test_missed_must_be_catch_up_or_skip() -> None:
    async def job() -> None:
        pass

    with pytest.raises(
        ValueError, match=r"^'missed' must be one of 'catch_up', 'skip' \(got 'drop'\)$"
    ):
        loop(seconds=1, missed="drop")(job)  # type: ignore[arg-type]


async def _overlapping(clock: VirtualClock, overlap: bool | int) -> tuple[int, list[float]]:
    """Run 6 iterations of 25 s every 10 s; return the peak concurrency and the starts."""
    running = 0
    peak = 0
    starts: list[float] = []

    @loop(seconds=10, count=6, overlap=overlap)
    async def slow() -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        starts.append(clock.monotonic())
        await asyncio.sleep(25)
        running -= 1

    await slow.start()
    assert running == 0  # the run ends only after every iteration has
    assert slow.current_loop == 6
    return peak, starts


@virtual_time()
async def test_overlap_true_runs_iterations_concurrently_on_the_grid(clock: VirtualClock) -> None:
    peak, starts = await _overlapping(clock, True)
    assert starts == [0.0, 10.0, 20.0, 30.0, 40.0, 50.0]
    assert peak == 3  # each lasts 25 s, one starts every 10 s
    assert clock.monotonic() == 75.0


@virtual_time()
async def test_overlap_cap_limits_how_many_iterations_run_at_once(clock: VirtualClock) -> None:
    peak, starts = await _overlapping(clock, 2)
    assert peak == 2
    # The third waits for the first to end (at 25), then catch-up keeps the grid.
    assert starts == [0.0, 10.0, 25.0, 35.0, 50.0, 60.0]


@virtual_time()
async def test_without_overlap_iterations_never_run_concurrently(clock: VirtualClock) -> None:
    peak, starts = await _overlapping(clock, False)
    assert peak == 1
    assert starts == [0.0, 25.0, 50.0, 75.0, 100.0, 125.0]


# --------------------------------------------------------------------------
# time= loops: each slot at most once, any tzinfo kinds mixed.


@virtual_time(start=dt.datetime(2026, 1, 1, tzinfo=UTC))
async def test_time_loop_with_a_retried_error_runs_each_slot_once(clock: VirtualClock) -> None:
    runs: list[tuple[dt.datetime, bool]] = []

    @loop(time=dt.time(12, 0), backoff=EXACT)
    async def report() -> None:
        failed = len(runs) == 0
        runs.append((clock.wall(), failed))
        if failed:
            raise OSError("smtp down")

    task = report.start()
    await asyncio.sleep(3 * DAY)
    report.stop()
    await task
    assert runs == [
        (dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC), True),
        (dt.datetime(2026, 1, 1, 12, 0, 2, tzinfo=UTC), False),  # the retry, not a new slot
        (dt.datetime(2026, 1, 2, 12, 0, tzinfo=UTC), False),
        (dt.datetime(2026, 1, 3, 12, 0, tzinfo=UTC), False),
    ]


@virtual_time(start=dt.datetime(2026, 1, 1, tzinfo=UTC))
async def test_a_retry_that_reaches_the_next_slot_stands_in_for_it(clock: VirtualClock) -> None:
    runs: list[str] = []
    recovered = dt.datetime(2026, 1, 1, 12, 0, 45, tzinfo=UTC)

    @loop(time=[dt.time(12, 0), dt.time(12, 1)], backoff=EXACT)
    async def report() -> None:
        runs.append(clock.wall().strftime("%d %H:%M:%S"))
        if clock.wall() < recovered:
            raise OSError("smtp down")

    task = report.start()
    await asyncio.sleep(DAY + 12.5 * HOUR)
    report.stop()
    await task
    # Retries at +2, +6, +14, +30 s; the next one is capped at the 12:01 slot
    # and succeeds there: that run *is* the 12:01 run, which is not repeated.
    assert runs == [
        "01 12:00:00",
        "01 12:00:02",
        "01 12:00:06",
        "01 12:00:14",
        "01 12:00:30",
        "01 12:01:00",
        "02 12:00:00",
        "02 12:01:00",
    ]


@virtual_time(start=dt.datetime(2026, 3, 7, tzinfo=UTC))
async def test_time_list_mixing_zoneinfo_and_fixed_offsets_neither_skips_nor_doubles_a_slot(
    clock: VirtualClock,
) -> None:
    runs: list[dt.datetime] = []
    new_york = ZoneInfo("America/New_York")
    minus_five = dt.timezone(dt.timedelta(hours=-5))
    times = [
        dt.time(2, 30, tzinfo=new_york),  # 07:30 UTC in EST; 06:30 UTC in EDT
        dt.time(2, 30, tzinfo=minus_five),  # always 07:30 UTC
        dt.time(12, 0),  # naive: UTC
        dt.time(21, 0, tzinfo=ZoneInfo("Asia/Tokyo")),  # 12:00 UTC: the same slot
    ]

    @loop(time=times)
    async def report() -> None:
        runs.append(clock.wall())

    task = report.start()
    await asyncio.sleep(3 * DAY)
    report.stop()
    await task
    at = dt.datetime
    assert runs == [
        # 7 March (EST): both 02:30s are 07:30 UTC, one slot.
        at(2026, 3, 7, 7, 30, tzinfo=UTC),
        at(2026, 3, 7, 12, 0, tzinfo=UTC),
        # 8 March, spring forward: New York's 02:30 does not exist and runs
        # shifted by the gap, at 03:30 EDT = 07:30 UTC: still one slot.
        at(2026, 3, 8, 7, 30, tzinfo=UTC),
        at(2026, 3, 8, 12, 0, tzinfo=UTC),
        # 9 March (EDT): now two distinct instants, both run.
        at(2026, 3, 9, 6, 30, tzinfo=UTC),
        at(2026, 3, 9, 7, 30, tzinfo=UTC),
        at(2026, 3, 9, 12, 0, tzinfo=UTC),
    ]


@virtual_time(start=dt.datetime(2026, 1, 1, tzinfo=UTC))
async def test_time_list_whose_wall_order_differs_from_its_instant_order_skips_nothing(
    clock: VirtualClock,
) -> None:
    runs: list[dt.datetime] = []
    # Sorted by wall-clock reading, 01:00+09:00 comes first, but it is 16:00
    # UTC of the day before: discord.ext.tasks' index walk skips slots here.
    times = [dt.time(1, 0, tzinfo=dt.timezone(dt.timedelta(hours=9))), dt.time(12, 0)]

    @loop(time=times)
    async def report() -> None:
        runs.append(clock.wall())

    task = report.start()
    await asyncio.sleep(2 * DAY)
    report.stop()
    await task
    assert runs == [
        dt.datetime(2026, 1, 1, 12, 0, tzinfo=UTC),
        dt.datetime(2026, 1, 1, 16, 0, tzinfo=UTC),
        dt.datetime(2026, 1, 2, 12, 0, tzinfo=UTC),
        dt.datetime(2026, 1, 2, 16, 0, tzinfo=UTC),
    ]


# --------------------------------------------------------------------------
# Hooks run inside the supervised region.


@virtual_time()
async def test_exception_in_before_loop_calls_the_error_handler_and_sets_failed() -> None:
    log: list[Any] = []

    @loop(seconds=10)
    async def job() -> None:
        log.append("body")

    @job.before_loop
    async def before() -> None:
        raise LookupError("config missing")

    @job.error
    async def on_error(error: BaseException) -> None:
        log.append(("error", repr(error), job.failed()))

    @job.after_loop
    async def after() -> None:
        log.append("after")

    with pytest.raises(LookupError, match="config missing"):
        await job.start()
    assert log == [("error", "LookupError('config missing')", True), "after"]
    assert job.failed() is True
    assert job.is_running() is False


@virtual_time()
async def test_exception_in_after_loop_leaves_the_loop_restartable_and_cancellable() -> None:
    log: list[Any] = []
    flushes = 0

    @loop(seconds=10)
    async def job() -> None:
        log.append("body")

    @job.after_loop
    async def flush() -> None:
        nonlocal flushes
        flushes += 1
        if flushes == 1:
            raise RuntimeError("flush failed")

    @job.error
    async def on_error(error: BaseException) -> None:
        log.append(("error", repr(error)))

    first = job.start()
    await asyncio.sleep(5)
    job.stop()
    with pytest.raises(RuntimeError, match="flush failed"):
        await first
    assert log == ["body", ("error", "RuntimeError('flush failed')")]
    assert job.failed() is True
    assert job.is_running() is False
    assert job.is_being_cancelled() is False

    second = job.start()  # restartable
    await asyncio.sleep(5)
    assert job.is_running() is True
    assert job.failed() is False
    job.cancel()  # and cancellable
    with pytest.raises(asyncio.CancelledError):
        await second
    assert job.is_running() is False
    assert job.is_being_cancelled() is False

    job.restart()  # restart() too
    third = job.get_task()
    assert third is not None
    await asyncio.sleep(5)
    assert job.is_running() is True
    job.stop()
    await third
    assert flushes == 3
    assert log.count("body") == 3


# --------------------------------------------------------------------------
# Per-instance loops: attribute name, __slots__, customisations.


@virtual_time()
async def test_per_instance_loops_are_cached_under_the_attribute_name_not_the_function_name() -> (
    None
):
    async def poll(self: Any) -> None:
        self.calls.append("poll")

    class Cog:
        def __init__(self) -> None:
            self.calls: list[str] = []

        # One function under two names, with different schedules.
        fast = loop(seconds=1, count=1)(poll)
        slow = loop(hours=1, count=1)(poll)

    cog = Cog()
    assert cog.fast is not cog.slow
    assert (cog.fast.seconds, cog.slow.hours) == (1.0, 1.0)
    task = cog.fast.start()
    assert cog.fast.is_running() is True
    assert cog.slow.is_running() is False
    await task
    assert cog.calls == ["poll"]


@virtual_time()
async def test_loops_work_on_classes_with_slots() -> None:
    class Slotted:
        __slots__ = ("index",)

        def __init__(self) -> None:
            self.index = 0

        @loop(seconds=1, count=3)
        async def counter(self) -> None:
            self.index += 1

    one = Slotted()
    await one.counter.start()
    assert one.index == 3
    assert one.counter.current_loop == 3


@virtual_time()
async def test_exception_types_added_on_the_class_carry_over_to_instances(
    clock: VirtualClock,
) -> None:
    class RateLimited(Exception):
        pass

    starts: list[float] = []

    class Cog:
        @loop(minutes=1, count=1, backoff=EXACT)
        async def sync(self) -> None:
            starts.append(clock.monotonic())
            if len(starts) == 1:
                raise RateLimited

    Cog.sync.add_exception_type(RateLimited)  # before any instance exists
    await Cog().sync.start()
    assert starts == [0.0, 2.0]


# --------------------------------------------------------------------------
# A long sleep re-checks the wall clock.

NOON = dt.datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


async def _noon_run_after(clock: VirtualClock, disturb: float, step: float) -> list[dt.datetime]:
    """Start a daily 12:00 loop at 00:00, step the wall clock after ``disturb`` s."""
    runs: list[dt.datetime] = []

    @loop(time=dt.time(12, 0))
    async def report() -> None:
        runs.append(clock.wall())

    task = report.start()
    await asyncio.sleep(disturb)
    clock.step_wall(step)
    await asyncio.sleep(16 * HOUR - disturb)
    report.stop()
    await task
    return runs


@virtual_time(start=dt.datetime(2026, 1, 1, tzinfo=UTC))
async def test_ntp_step_forward_during_a_long_sleep_does_not_make_a_time_loop_late(
    clock: VirtualClock,
) -> None:
    # The clock was 2 h behind; NTP corrects it at 01:00. A sleep computed
    # once would wake at 14:00 by the corrected clock.
    (ran,) = await _noon_run_after(clock, HOUR, 2 * HOUR)
    assert 0 <= (ran - NOON).total_seconds() <= WALL_RECHECK_SECONDS


@virtual_time(start=dt.datetime(2026, 1, 1, tzinfo=UTC))
async def test_ntp_step_backward_during_a_long_sleep_does_not_make_a_time_loop_early(
    clock: VirtualClock,
) -> None:
    # The clock was 2 h ahead; a sleep computed once would run at 10:00.
    (ran,) = await _noon_run_after(clock, HOUR, -2 * HOUR)
    assert 0 <= (ran - NOON).total_seconds() <= WALL_RECHECK_SECONDS


@virtual_time(start=dt.datetime(2026, 1, 1, tzinfo=UTC))
async def test_suspend_during_a_long_sleep_does_not_make_a_time_loop_late(
    clock: VirtualClock,
) -> None:
    runs: list[dt.datetime] = []

    @loop(time=dt.time(12, 0))
    async def report() -> None:
        runs.append(clock.wall())

    task = report.start()
    await asyncio.sleep(HOUR)
    clock.suspend(5 * HOUR)  # monotonic time stands still for 5 h
    await asyncio.sleep(12 * HOUR)
    report.stop()
    await task
    (ran,) = runs
    assert 0 <= (ran - NOON).total_seconds() <= WALL_RECHECK_SECONDS


@virtual_time(start=dt.datetime(2026, 1, 1, tzinfo=UTC))
async def test_slot_passed_during_a_suspend_runs_promptly_after_resume(
    clock: VirtualClock,
) -> None:
    runs: list[dt.datetime] = []

    @loop(time=dt.time(12, 0))
    async def report() -> None:
        runs.append(clock.wall())

    task = report.start()
    await asyncio.sleep(11 * HOUR)
    clock.suspend(2 * HOUR)  # asleep from 11:00 to 13:00: the slot passed
    await asyncio.sleep(2 * HOUR)
    report.stop()
    await task
    (ran,) = runs
    resumed = dt.datetime(2026, 1, 1, 13, 0, tzinfo=UTC)
    assert 0 <= (ran - resumed).total_seconds() <= WALL_RECHECK_SECONDS


@virtual_time()
async def test_relative_loop_keeps_its_monotonic_grid_across_wall_clock_steps(
    clock: VirtualClock,
) -> None:
    starts: list[float] = []

    @loop(hours=1, count=3)
    async def poll() -> None:
        starts.append(clock.monotonic())

    task = poll.start()
    await asyncio.sleep(600)
    clock.step_wall(-2 * HOUR)
    await task
    assert starts == [0.0, HOUR, 2 * HOUR]


# --------------------------------------------------------------------------
# wait_first and max_consecutive_failures.


@virtual_time()
async def test_wait_first_runs_the_first_iteration_one_interval_after_start(
    clock: VirtualClock,
) -> None:
    starts: list[float] = []

    @loop(seconds=30, count=2, wait_first=True)
    async def poll() -> None:
        starts.append(clock.monotonic())

    task = poll.start()
    await asyncio.sleep(1)
    assert poll.next_iteration == dt.datetime(2026, 1, 1, 0, 0, 30, tzinfo=UTC)
    await task
    assert starts == [30.0, 60.0]


@virtual_time()
async def test_max_consecutive_failures_escalates_after_n_failed_retries(
    clock: VirtualClock,
) -> None:
    calls: list[float] = []
    handled: list[BaseException] = []

    @loop(seconds=1000, max_consecutive_failures=3, backoff=EXACT)
    async def upload() -> None:
        calls.append(clock.monotonic())
        raise ConnectionError("still down")

    @upload.error
    async def on_error(error: BaseException) -> None:
        handled.append(error)

    with pytest.raises(ConnectionError, match="still down"):
        await upload.start()
    # The first call and 3 retries (after 2, 4 and 8 s), then escalation.
    assert calls == [0.0, 2.0, 6.0, 14.0]
    assert [type(error) for error in handled] == [ConnectionError]
    assert upload.failed() is True


@virtual_time()
async def test_max_consecutive_failures_counts_only_consecutive_failures(
    clock: VirtualClock,
) -> None:
    outcomes = iter([False, False, True, False, False, True, True])

    @loop(seconds=100, count=3, max_consecutive_failures=2, backoff=EXACT)
    async def upload() -> None:
        if not next(outcomes):
            raise ConnectionError("blip")

    # Two failures, a success, two failures, a success: never three in a row.
    await upload.start()
    assert upload.failed() is False
    assert upload.current_loop == 3


@virtual_time()
async def test_overlapping_run_now_answers_only_the_asks_made_before_its_extra_run() -> None:
    @loop(seconds=100, overlap=True)
    async def job() -> None:
        await asyncio.sleep(10)

    event_loop = asyncio.get_running_loop()
    job.start()
    await asyncio.sleep(1)
    first = asyncio.ensure_future(job.ask(RunNow()))
    await asyncio.sleep(1)  # the first extra run has begun (it ends at 11)
    second = asyncio.ensure_future(job.ask(RunNow()))  # its own extra run ends at 12
    ack = await first
    assert event_loop.time() == 11.0
    assert not second.done()
    assert ack.message == RunNow()
    later = await second
    assert event_loop.time() == 12.0
    assert later.iteration == ack.iteration + 1
    job.cancel()
    await asyncio.sleep(0)
