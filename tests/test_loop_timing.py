"""Timing of a Loop: the grid, overruns, times of day, DST, long sleeps.

The rules: docs/loops.md, "The grid", "Missed ticks" and "Times of day and DST".

Every test but the three ``test_real_time_*`` ones runs in virtual time, so the
instants asserted are exact: ``loop_time()`` is the event loop's monotonic
clock (0.0 when the virtual clock starts) and ``clock.wall()`` the virtual
wall clock. The real-time tests run one scenario both ways and check that
virtual time tells the truth about what real time does.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time as real_time
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from supervised_loops import ChangeInterval, Cron, DailyAt, Every, Loop, loop
from supervised_loops.testing import VirtualClock, virtual_time

UTC = dt.UTC
NEW_YORK = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
TOKYO = ZoneInfo("Asia/Tokyo")
START = dt.datetime(2026, 1, 1, tzinfo=UTC)
DAY = 86_400.0


def loop_time() -> float:
    """The running event loop's monotonic clock (virtual seconds under virtual time)."""
    return asyncio.get_running_loop().time()


def utc(*fields: int) -> dt.datetime:
    return dt.datetime(*fields, tzinfo=UTC)


async def run_for(target: Loop, seconds: float) -> None:
    """Start ``target``, let it run ``seconds``, stop it and wait for its end."""
    task = target.start()
    await asyncio.sleep(seconds)
    target.stop()
    await task


# --------------------------------------------------------------------------
# Relative loops: the absolute grid.


@virtual_time()
async def test_first_iteration_runs_right_after_before_loop_then_on_an_absolute_grid() -> None:
    starts: list[float] = []

    @loop(seconds=10, count=5)
    async def tick() -> None:
        starts.append(loop_time())

    @tick.before_loop
    async def setup() -> None:
        await asyncio.sleep(3)  # the grid is anchored where before_loop ends

    await tick.start()

    assert starts == [3.0, 13.0, 23.0, 33.0, 43.0]


@virtual_time()
async def test_wait_first_makes_the_first_iteration_due_one_interval_after_the_start() -> None:
    starts: list[float] = []

    @loop(seconds=10, count=3, wait_first=True)
    async def tick() -> None:
        starts.append(loop_time())

    await tick.start()

    assert starts == [10.0, 20.0, 30.0]


@virtual_time()
async def test_ten_thousand_iterations_stay_as_close_to_the_grid_as_the_first_ten() -> None:
    # 0.1 is not exact in binary: adding it up would drift, multiplying does not.
    # The body takes a third of the interval: sleeping "interval" after each
    # body would put the 10 000th start 330 s late.
    interval = 0.1
    starts: list[float] = []

    @loop(seconds=interval, count=10_001)
    async def tick() -> None:
        starts.append(loop_time())
        await asyncio.sleep(0.033)

    await tick.start()

    first = starts[0]
    deviations = [abs(start - (first + n * interval)) for n, start in enumerate(starts)]
    assert len(starts) == 10_001
    # Float rounding alone (an ulp near 1000 s is 1e-13); adding 0.1 up 10 000
    # times would already be 1.6e-10 off, sleeping end-to-start 330 s.
    assert max(deviations[:11]) < 1e-11
    assert max(deviations) < 1e-11  # as close after 10 000 as after 10
    assert starts[-1] == pytest.approx(first + 1000.0, abs=1e-9)


@virtual_time()
async def test_a_body_taking_part_of_the_interval_does_not_shift_the_grid() -> None:
    starts: list[float] = []
    ends: list[float] = []

    @loop(seconds=10, count=4)
    async def tick() -> None:
        starts.append(loop_time())
        await asyncio.sleep(4)
        ends.append(loop_time())

    await tick.start()

    assert starts == [0.0, 10.0, 20.0, 30.0]  # start-to-start, not end-to-start
    assert ends == [4.0, 14.0, 24.0, 34.0]


@virtual_time()
async def test_overrun_makes_the_next_iteration_due_at_once_and_catches_up_by_default() -> None:
    starts: list[float] = []

    @loop(seconds=10, count=6)
    async def tick() -> None:
        starts.append(loop_time())
        if tick.current_loop == 1:
            await asyncio.sleep(25)  # 10 -> 35: the ticks due at 20 and 30 are missed

    await tick.start()

    # The missed ticks run back to back at 35 (as discord.ext.tasks does),
    # then the grid goes on where it was: 40, 50.
    assert starts == [0.0, 10.0, 35.0, 35.0, 40.0, 50.0]


@virtual_time()
async def test_missed_skip_runs_once_at_once_then_reanchors_the_grid_on_that_run() -> None:
    starts: list[float] = []

    @loop(seconds=10, count=5, missed="skip")
    async def tick() -> None:
        starts.append(loop_time())
        if tick.current_loop == 1:
            await asyncio.sleep(25)

    await tick.start()

    assert starts == [0.0, 10.0, 35.0, 45.0, 55.0]


@virtual_time()
async def test_an_overrun_shorter_than_a_whole_tick_is_caught_up_once_then_back_on_grid() -> None:
    starts: list[float] = []

    @loop(seconds=10, count=4)
    async def tick() -> None:
        starts.append(loop_time())
        if tick.current_loop == 0:
            await asyncio.sleep(12)

    await tick.start()

    assert starts == [0.0, 12.0, 20.0, 30.0]


@virtual_time()
async def test_zero_interval_runs_back_to_back_without_advancing_time() -> None:
    starts: list[float] = []

    @loop(seconds=0, count=5)
    async def tick() -> None:
        starts.append(loop_time())

    await tick.start()

    assert starts == [0.0] * 5


# --------------------------------------------------------------------------
# next_iteration.


@virtual_time(start=START)
async def test_next_iteration_is_none_before_start_and_after_the_end() -> None:
    @loop(seconds=10, count=1)
    async def tick() -> None:
        pass

    assert tick.next_iteration is None
    await tick.start()
    assert tick.next_iteration is None


@virtual_time(start=START)
async def test_next_iteration_is_the_next_grid_point_in_aware_utc() -> None:
    seen_in_body: list[dt.datetime | None] = []

    @loop(seconds=10, count=3)
    async def tick() -> None:
        seen_in_body.append(tick.next_iteration)

    task = tick.start()
    await asyncio.sleep(5)  # asleep between iteration 0 (t=0) and 1 (t=10)
    while_sleeping = tick.next_iteration
    await task

    step = dt.timedelta(seconds=10)
    assert seen_in_body == [START + step, START + 2 * step, START + 3 * step]
    assert while_sleeping == START + step
    assert while_sleeping is not None
    assert while_sleeping.tzinfo is UTC


@virtual_time(start=START)
async def test_next_iteration_is_none_once_stop_is_asked() -> None:
    @loop(seconds=10)
    async def tick() -> None:
        await asyncio.sleep(4)

    task = tick.start()
    await asyncio.sleep(2)  # inside the first body
    tick.stop()
    assert tick.next_iteration is None
    await task
    assert tick.next_iteration is None


@virtual_time(start=START)
async def test_next_iteration_of_a_time_loop_is_the_next_slot_in_utc() -> None:
    @loop(time=dt.time(9, 0, tzinfo=TOKYO))
    async def morning() -> None:
        pass

    task = morning.start()
    await asyncio.sleep(60)
    upcoming = morning.next_iteration
    morning.stop()
    await task

    assert upcoming == utc(2026, 1, 2, 0, 0)  # 09:00 in Tokyo is midnight UTC
    assert upcoming is not None
    assert upcoming.tzinfo is UTC


# --------------------------------------------------------------------------
# time= loops.


@virtual_time(start=START)
async def test_time_loop_runs_at_each_listed_time_of_day(clock: VirtualClock) -> None:
    walls: list[dt.datetime] = []

    @loop(time=[dt.time(9, 0), dt.time(17, 30)], count=4)
    async def report() -> None:
        walls.append(clock.wall())

    await report.start()

    assert walls == [
        utc(2026, 1, 1, 9, 0),
        utc(2026, 1, 1, 17, 30),
        utc(2026, 1, 2, 9, 0),
        utc(2026, 1, 2, 17, 30),
    ]


@virtual_time(start=START)
async def test_naive_times_are_utc_and_aware_times_use_their_own_zone(
    clock: VirtualClock,
) -> None:
    walls: list[dt.datetime] = []
    plus_two = dt.timezone(dt.timedelta(hours=2))

    @loop(
        time=[
            dt.time(12, 0),  # naive: 12:00 UTC
            dt.time(9, 0, tzinfo=plus_two),  # 07:00 UTC
            dt.time(8, 0, tzinfo=TOKYO),  # 23:00 UTC, the day before in UTC
            dt.time(10, 0, tzinfo=NEW_YORK),  # 15:00 UTC in January (EST)
        ]
    )
    async def report() -> None:
        walls.append(clock.wall())

    await run_for(report, DAY)

    assert walls == [
        utc(2026, 1, 1, 7, 0),
        utc(2026, 1, 1, 12, 0),
        utc(2026, 1, 1, 15, 0),
        utc(2026, 1, 1, 23, 0),
    ]


@virtual_time(start=START)
async def test_duplicate_times_run_once(clock: VirtualClock) -> None:
    walls: list[dt.datetime] = []

    @loop(time=[dt.time(9, 0), dt.time(9, 0, tzinfo=UTC), dt.time(9, 0)])
    async def report() -> None:
        walls.append(clock.wall())

    await run_for(report, 2 * DAY)

    assert walls == [utc(2026, 1, 1, 9, 0), utc(2026, 1, 2, 9, 0)]
    assert report.time == [dt.time(9, 0, tzinfo=UTC)]


@virtual_time(start=START)
async def test_the_order_of_listed_times_does_not_matter(clock: VirtualClock) -> None:
    walls: list[dt.datetime] = []

    @loop(time=[dt.time(17, 0), dt.time(9, 0), dt.time(12, 0)])
    async def report() -> None:
        walls.append(clock.wall())

    await run_for(report, DAY)

    assert walls == [utc(2026, 1, 1, 9, 0), utc(2026, 1, 1, 12, 0), utc(2026, 1, 1, 17, 0)]


@virtual_time(start=START)
async def test_time_list_spanning_midnight_in_tokyo_runs_both_slots_every_day(
    clock: VirtualClock,
) -> None:
    # In Tokyo (UTC+9) 00:30 comes before 23:30 in the day; in UTC both fall
    # in the afternoon and 23:30 comes first. Neither may be skipped.
    walls: list[dt.datetime] = []

    @loop(time=[dt.time(0, 30, tzinfo=TOKYO), dt.time(23, 30, tzinfo=TOKYO)], count=4)
    async def report() -> None:
        walls.append(clock.wall())

    await report.start()

    assert walls == [
        utc(2026, 1, 1, 14, 30),  # 23:30 on Jan 1 in Tokyo
        utc(2026, 1, 1, 15, 30),  # 00:30 on Jan 2 in Tokyo
        utc(2026, 1, 2, 14, 30),
        utc(2026, 1, 2, 15, 30),
    ]


# --------------------------------------------------------------------------
# Daylight saving time, through the Loop.

DST_CASES = [
    pytest.param(
        NEW_YORK,
        dt.time(2, 30),
        utc(2026, 3, 7),
        [
            utc(2026, 3, 7, 7, 30),  # 02:30 EST
            utc(2026, 3, 7, 17, 0),  # 12:00 EST
            utc(2026, 3, 8, 7, 30),  # 02:30 does not exist: 03:30 EDT, shifted by the gap
            utc(2026, 3, 8, 16, 0),  # 12:00 EDT
            utc(2026, 3, 9, 6, 30),  # 02:30 EDT
            utc(2026, 3, 9, 16, 0),
        ],
        id="new-york-spring-forward",
    ),
    pytest.param(
        NEW_YORK,
        dt.time(1, 30),
        utc(2026, 10, 31),
        [
            utc(2026, 10, 31, 5, 30),  # 01:30 EDT
            utc(2026, 10, 31, 16, 0),
            utc(2026, 11, 1, 5, 30),  # 01:30 happens twice: only the first (EDT) runs
            utc(2026, 11, 1, 17, 0),  # 12:00 EST
            utc(2026, 11, 2, 6, 30),  # 01:30 EST
            utc(2026, 11, 2, 17, 0),
        ],
        id="new-york-fall-back",
    ),
    pytest.param(
        BERLIN,
        dt.time(2, 30),
        utc(2026, 3, 28),
        [
            utc(2026, 3, 28, 1, 30),  # 02:30 CET
            utc(2026, 3, 28, 11, 0),
            utc(2026, 3, 29, 1, 30),  # 02:30 does not exist: 03:30 CEST
            utc(2026, 3, 29, 10, 0),  # 12:00 CEST
            utc(2026, 3, 30, 0, 30),  # 02:30 CEST
            utc(2026, 3, 30, 10, 0),
        ],
        id="berlin-spring-forward",
    ),
    pytest.param(
        BERLIN,
        dt.time(2, 30),
        utc(2026, 10, 24),
        [
            utc(2026, 10, 24, 0, 30),  # 02:30 CEST
            utc(2026, 10, 24, 10, 0),
            utc(2026, 10, 25, 0, 30),  # 02:30 happens twice: only the first (CEST) runs
            utc(2026, 10, 25, 11, 0),  # 12:00 CET
            utc(2026, 10, 26, 1, 30),  # 02:30 CET
            utc(2026, 10, 26, 11, 0),
        ],
        id="berlin-fall-back",
    ),
]


@pytest.mark.parametrize(("zone", "night_time", "start", "expected"), DST_CASES)
def test_time_loop_across_dst_runs_each_listed_time_once_a_day_never_twice_never_skipped(
    zone: ZoneInfo, night_time: dt.time, start: dt.datetime, expected: list[dt.datetime]
) -> None:
    clock = VirtualClock(start=start)
    walls: list[dt.datetime] = []

    @loop(time=[night_time.replace(tzinfo=zone), dt.time(12, 0, tzinfo=zone)])
    async def nightly() -> None:
        walls.append(clock.wall())

    clock.run(run_for(nightly, 3 * DAY))

    assert walls == expected


@pytest.mark.parametrize(
    ("zone", "start", "expected"),
    [
        pytest.param(NEW_YORK, utc(2026, 3, 8), utc(2026, 3, 8, 7, 30), id="new-york"),
        pytest.param(BERLIN, utc(2026, 3, 29), utc(2026, 3, 29, 1, 30), id="berlin"),
    ],
)
def test_next_iteration_of_a_nonexistent_local_time_is_the_gap_shifted_instant(
    zone: ZoneInfo, start: dt.datetime, expected: dt.datetime
) -> None:
    clock = VirtualClock(start=start)

    @loop(time=dt.time(2, 30, tzinfo=zone))
    async def nightly() -> None:
        pass

    async def scenario() -> dt.datetime | None:
        task = nightly.start()
        await asyncio.sleep(1)
        upcoming = nightly.next_iteration
        nightly.stop()
        await task
        return upcoming

    assert clock.run(scenario()) == expected


def test_a_gap_shifted_time_and_the_time_it_lands_on_are_one_run() -> None:
    # On 2026-03-08 in New York, 02:30 does not exist and runs at 03:30 EDT,
    # the very instant listed as 03:30: one run, not two back to back.
    clock = VirtualClock(start=utc(2026, 3, 8))
    walls: list[dt.datetime] = []

    @loop(time=[dt.time(2, 30, tzinfo=NEW_YORK), dt.time(3, 30, tzinfo=NEW_YORK)])
    async def nightly() -> None:
        walls.append(clock.wall())

    clock.run(run_for(nightly, 2 * DAY))

    assert walls == [
        utc(2026, 3, 8, 7, 30),
        utc(2026, 3, 9, 6, 30),  # 02:30 EDT
        utc(2026, 3, 9, 7, 30),  # 03:30 EDT
    ]


# --------------------------------------------------------------------------
# Long sleeps.


@virtual_time(start=utc(2026, 1, 1, 9, 0))
async def test_a_loop_due_in_three_days_wakes_at_that_wall_clock_time(
    clock: VirtualClock,
) -> None:
    woke: list[tuple[dt.datetime, float]] = []

    @loop(schedule=Cron("0 9 4 1 *"), count=1)  # 09:00 on January 4th
    async def yearly() -> None:
        woke.append((clock.wall(), loop_time()))

    await yearly.start()

    assert woke == [(utc(2026, 1, 4, 9, 0), 3 * DAY)]


@virtual_time(start=START)
async def test_a_72_hour_interval_wakes_exactly_72_hours_later(clock: VirtualClock) -> None:
    woke: list[tuple[dt.datetime, float]] = []

    @loop(hours=72, count=2)
    async def slow() -> None:
        woke.append((clock.wall(), loop_time()))

    await slow.start()

    assert woke == [(START, 0.0), (utc(2026, 1, 4), 3 * DAY)]


@virtual_time(start=utc(2026, 1, 1, 9, 0))
async def test_a_wall_clock_stepped_back_during_a_long_sleep_never_makes_a_time_loop_early(
    clock: VirtualClock,
) -> None:
    woke: list[tuple[dt.datetime, float]] = []

    @loop(time=dt.time(9, 0), count=1)
    async def daily() -> None:
        woke.append((clock.wall(), loop_time()))

    task = daily.start()
    await asyncio.sleep(30)
    clock.step_wall(-3600)  # NTP moves the wall clock an hour back
    await task

    # Due at 09:00 on Jan 2 by the wall clock: one more hour of real waiting.
    assert woke == [(utc(2026, 1, 2, 9, 0), DAY + 3600)]


@virtual_time(start=utc(2026, 1, 1, 9, 0))
async def test_a_suspend_during_a_long_sleep_does_not_make_a_time_loop_late(
    clock: VirtualClock,
) -> None:
    woke: list[tuple[dt.datetime, float]] = []

    @loop(schedule=Cron("0 9 4 1 *"), count=1)
    async def yearly() -> None:
        woke.append((clock.wall(), loop_time()))

    task = yearly.start()
    await asyncio.sleep(30)
    clock.suspend(2 * DAY)  # the machine sleeps two days; monotonic time stands still
    await task

    # Still at 09:00 on Jan 4 by the wall clock, one day of monotonic time early.
    assert woke == [(utc(2026, 1, 4, 9, 0), DAY)]


# --------------------------------------------------------------------------
# Cron schedules and Loop.schedule.


@virtual_time(start=START)
async def test_cron_schedule_runs_at_each_matching_minute(clock: VirtualClock) -> None:
    walls: list[dt.datetime] = []

    @loop(schedule=Cron("*/20 9-10 * * *"), count=7)
    async def office_hours() -> None:
        walls.append(clock.wall())

    await office_hours.start()

    assert walls == [
        utc(2026, 1, 1, 9, 0),
        utc(2026, 1, 1, 9, 20),
        utc(2026, 1, 1, 9, 40),
        utc(2026, 1, 1, 10, 0),
        utc(2026, 1, 1, 10, 20),
        utc(2026, 1, 1, 10, 40),
        utc(2026, 1, 2, 9, 0),
    ]


def test_cron_schedule_in_a_zone_follows_its_dst_rules_through_the_loop() -> None:
    clock = VirtualClock(start=utc(2026, 3, 28))
    walls: list[dt.datetime] = []

    @loop(schedule=Cron("30 2 * * *", tz=BERLIN), count=3)
    async def nightly() -> None:
        walls.append(clock.wall())

    async def scenario() -> None:
        await nightly.start()

    clock.run(scenario())

    assert walls == [utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 30), utc(2026, 3, 30, 0, 30)]


def test_loop_schedule_returns_the_schedule_given_or_built() -> None:
    cron = Cron("0 * * * *")

    @loop(schedule=cron)
    async def hourly() -> None:
        pass

    @loop(seconds=30, minutes=1)
    async def relative() -> None:
        pass

    @loop(time=[dt.time(9, 0), dt.time(8, 0)])
    async def daily() -> None:
        pass

    assert hourly.schedule is cron
    assert relative.schedule == Every(seconds=30, minutes=1)
    assert relative.schedule.interval == 90.0
    assert daily.schedule == DailyAt([dt.time(8, 0), dt.time(9, 0)])


@virtual_time(start=START)
async def test_loop_schedule_returns_the_schedule_in_force_after_change_interval() -> None:
    @loop(seconds=10)
    async def tick() -> None:
        pass

    task = tick.start()
    await tick.ask(ChangeInterval(minutes=5))
    in_force = tick.schedule
    tick.stop()
    await task

    assert in_force == Every(minutes=5)


# --------------------------------------------------------------------------
# Real time: the same scenarios, run for real and in virtual time, agree.
#
# Bounds: a real timer may fire late by scheduling noise (allowed: 60 ms,
# generous even on a busy machine yet below every gap the assertions rely
# on, and well below the 100 ms or more by which a drifting or wrongly
# catching-up loop would be off) but never early by more than the clock's
# resolution.

LATE = 0.06
EARLY = 0.002


def run_both(scenario: Any) -> tuple[list[Any], list[Any]]:
    """Run ``scenario()`` in real time, then in virtual time; return both results."""
    real_started = real_time.perf_counter()
    real = asyncio.run(scenario())
    assert real_time.perf_counter() - real_started < 5.0
    virtual = VirtualClock().run(scenario())
    return real, virtual


def assert_close_in_time(real: list[float], virtual: list[float]) -> None:
    assert len(real) == len(virtual)
    for real_start, virtual_start in zip(real, virtual, strict=True):
        assert virtual_start - EARLY <= real_start <= virtual_start + LATE


def test_real_time_two_loops_interleave_in_the_same_order_as_in_virtual_time() -> None:
    async def scenario() -> list[tuple[str, int, float]]:
        log: list[tuple[str, int, float]] = []
        origin = loop_time()

        @loop(seconds=0.15, count=5)
        async def fast() -> None:
            log.append(("fast", fast.current_loop, loop_time() - origin))

        @loop(seconds=0.3, count=2)
        async def slow() -> None:
            log.append(("slow", slow.current_loop, loop_time() - origin))

        @slow.before_loop
        async def offset() -> None:
            await asyncio.sleep(0.075)

        await asyncio.gather(fast.start(), slow.start())
        return log

    real, virtual = run_both(scenario)

    # fast at 0, 150, 300, 450, 600 ms; slow at 75 and 375 ms.
    order = [("fast", 0), ("slow", 0), ("fast", 1), ("fast", 2), ("slow", 1), ("fast", 3)]
    order += [("fast", 4)]
    assert [(name, n) for name, n, _ in virtual] == order
    assert [(name, n) for name, n, _ in real] == order
    assert [at for *_, at in virtual] == pytest.approx([0, 0.075, 0.15, 0.3, 0.375, 0.45, 0.6])
    assert_close_in_time([at for *_, at in real], [at for *_, at in virtual])


def test_real_time_body_taking_part_of_the_interval_keeps_the_grid_as_in_virtual_time() -> None:
    async def scenario() -> list[float]:
        starts: list[float] = []
        origin = loop_time()

        @loop(seconds=0.1, count=6)
        async def tick() -> None:
            starts.append(loop_time() - origin)
            await asyncio.sleep(0.04)

        await tick.start()
        return starts

    real, virtual = run_both(scenario)

    assert virtual == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4, 0.5])
    # Start-to-start: the sixth start is at 500 ms, not at 700 ms (end-to-start).
    assert_close_in_time(real, virtual)


def test_real_time_overrun_catches_up_exactly_as_in_virtual_time() -> None:
    async def scenario() -> list[tuple[int, float]]:
        starts: list[tuple[int, float]] = []
        origin = loop_time()

        @loop(seconds=0.1, count=5)
        async def tick() -> None:
            starts.append((tick.current_loop, loop_time() - origin))
            if tick.current_loop == 1:
                await asyncio.sleep(0.24)  # 100 -> 340 ms: ticks at 200 and 300 missed

        await tick.start()
        return starts

    real, virtual = run_both(scenario)

    assert [n for n, _ in real] == [n for n, _ in virtual] == [0, 1, 2, 3, 4]
    # Skipping would put the last two at 440 and 540 ms instead.
    assert [at for _, at in virtual] == pytest.approx([0.0, 0.1, 0.34, 0.34, 0.4])
    assert_close_in_time([at for _, at in real], [at for _, at in virtual])
