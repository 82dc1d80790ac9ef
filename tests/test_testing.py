"""The virtual-time helpers themselves (docs/testing.md): VirtualClock and @virtual_time.

Users test their loops with these, so they are tested like any public API:
what the clock reads, how hand-moved wall time behaves, how the decorator
treats pytest's parameters, and that a simulated week costs milliseconds.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import pathlib
import time as real_time
from zoneinfo import ZoneInfo

import pytest

from supervised_loops import ExponentialBackoff, loop
from supervised_loops.events import RetryScheduled
from supervised_loops.testing import VirtualClock, VirtualEventLoop, virtual_time

UTC = dt.UTC
START = dt.datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
WEEK = 7 * 86_400.0


def loop_time() -> float:
    return asyncio.get_running_loop().time()


# --------------------------------------------------------------------------
# VirtualClock: readings and run().


def test_run_returns_the_coroutines_result_after_an_hour_of_virtual_time() -> None:
    clock = VirtualClock(start=START)

    async def main() -> str:
        await asyncio.sleep(3600)
        return "done"

    started = real_time.perf_counter()
    assert clock.run(main()) == "done"
    assert real_time.perf_counter() - started < 1.0
    assert clock.monotonic() == 3600.0
    assert clock.wall() == START + dt.timedelta(hours=1)


def test_run_propagates_the_coroutines_exception() -> None:
    async def main() -> None:
        await asyncio.sleep(5)
        raise LookupError("nothing here")

    with pytest.raises(LookupError, match=r"^nothing here$"):
        VirtualClock().run(main())


def test_monotonic_starts_at_zero_and_is_the_event_loops_time() -> None:
    clock = VirtualClock(start=START)
    readings: list[float] = []

    async def main() -> None:
        readings.append(loop_time())
        await asyncio.sleep(12.5)
        readings.append(loop_time())

    assert clock.monotonic() == 0.0
    clock.run(main())
    assert readings == [0.0, 12.5]
    assert clock.monotonic() == 12.5


def test_new_event_loop_is_a_loop_factory_running_on_the_clock() -> None:
    clock = VirtualClock(start=START)

    async def main() -> tuple[bool, float]:
        await asyncio.sleep(60)
        return isinstance(asyncio.get_running_loop(), VirtualEventLoop), loop_time()

    with asyncio.Runner(loop_factory=clock.new_event_loop) as runner:
        assert runner.run(main()) == (True, 60.0)
    assert clock.wall() == START + dt.timedelta(minutes=1)


def test_default_start_is_new_year_2026_utc() -> None:
    assert VirtualClock().wall() == dt.datetime(2026, 1, 1, tzinfo=UTC)


def test_naive_start_means_utc() -> None:
    clock = VirtualClock(start=dt.datetime(2026, 6, 1, 8, 30))

    assert clock.wall() == dt.datetime(2026, 6, 1, 8, 30, tzinfo=UTC)
    assert clock.wall().tzinfo is UTC


def test_aware_start_in_another_zone_reads_back_in_utc() -> None:
    clock = VirtualClock(start=dt.datetime(2026, 6, 1, 10, 30, tzinfo=ZoneInfo("Europe/Berlin")))

    assert clock.wall() == dt.datetime(2026, 6, 1, 8, 30, tzinfo=UTC)
    assert clock.wall().tzinfo is UTC


@pytest.mark.parametrize(
    "bad_start",
    ["2026-01-01", dt.date(2026, 1, 1), 1_767_225_600, None],
    ids=["str", "date", "timestamp", "None"],
)
def test_bad_start_is_a_type_error(bad_start: object) -> None:
    expected = f"'start' must be a datetime (got {bad_start!r})"

    with pytest.raises(TypeError) as raised:
        VirtualClock(start=bad_start)  # type: ignore[arg-type]
    assert str(raised.value) == expected

    # The decorator checks where the test is written, not when it runs.
    with pytest.raises(TypeError) as raised:
        virtual_time(start=bad_start)  # type: ignore[arg-type]
    assert str(raised.value) == expected


def test_virtual_time_used_without_parentheses_fails_at_once_naming_start() -> None:
    async def scenario() -> None:
        pass

    with pytest.raises(TypeError, match=r"^'start' must be a datetime"):
        virtual_time(scenario)  # type: ignore[arg-type]


def test_virtual_time_refuses_a_plain_function() -> None:
    def not_async() -> None:
        pass

    with pytest.raises(TypeError, match=r"^'function' must be a coroutine function"):
        virtual_time()(not_async)


def test_repr_shows_wall_and_monotonic_readings() -> None:
    assert repr(VirtualClock(start=START)) == (
        "VirtualClock(wall=2026-03-01T12:00:00+00:00, monotonic=0.0)"
    )


# --------------------------------------------------------------------------
# Wall time moved by hand.


@virtual_time(start=START)
async def test_wall_advances_with_sleeps(clock: VirtualClock) -> None:
    assert clock.wall() == START
    await asyncio.sleep(90)
    assert clock.wall() == START + dt.timedelta(seconds=90)
    await clock.sleep(86_400)
    assert clock.wall() == START + dt.timedelta(days=1, seconds=90)
    assert clock.monotonic() == loop_time() == 86_490.0


@virtual_time(start=START)
async def test_step_wall_moves_only_the_wall_clock(clock: VirtualClock) -> None:
    clock.step_wall(3600)
    assert clock.wall() == START + dt.timedelta(hours=1)
    clock.step_wall(-7200)
    assert clock.wall() == START - dt.timedelta(hours=1)
    assert clock.monotonic() == loop_time() == 0.0


@virtual_time(start=START)
async def test_set_wall_moves_only_the_wall_clock_naive_meaning_utc(clock: VirtualClock) -> None:
    await asyncio.sleep(10)
    clock.set_wall(dt.datetime(2030, 1, 1))
    assert clock.wall() == dt.datetime(2030, 1, 1, tzinfo=UTC)
    clock.set_wall(dt.datetime(2030, 1, 1, 9, 0, tzinfo=ZoneInfo("Asia/Tokyo")))
    assert clock.wall() == dt.datetime(2030, 1, 1, 0, 0, tzinfo=UTC)
    assert clock.monotonic() == loop_time() == 10.0
    await asyncio.sleep(5)
    assert clock.wall() == dt.datetime(2030, 1, 1, 0, 0, 5, tzinfo=UTC)


@virtual_time(start=START)
async def test_suspend_moves_the_wall_clock_and_leaves_pending_timers_alone(
    clock: VirtualClock,
) -> None:
    sleeper = asyncio.create_task(asyncio.sleep(10))
    await asyncio.sleep(4)
    clock.suspend(3600)
    assert clock.wall() == START + dt.timedelta(hours=1, seconds=4)
    assert loop_time() == 4.0
    await sleeper  # monotonic timers do not notice the suspend
    assert loop_time() == 10.0
    assert clock.wall() == START + dt.timedelta(hours=1, seconds=10)


def test_hand_moved_wall_time_refuses_bad_values() -> None:
    clock = VirtualClock(start=START)

    with pytest.raises(TypeError, match=r"^'moment' must be a datetime \(got '2030-01-01'\)$"):
        clock.set_wall("2030-01-01")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^'seconds' must be finite \(got nan\)$"):
        clock.step_wall(float("nan"))
    with pytest.raises(TypeError, match=r"^'seconds' must be a number \(got '60'\)$"):
        clock.step_wall("60")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^'seconds' must be >= 0 \(got -5\)$"):
        clock.suspend(-5)
    assert clock.wall() == START  # nothing moved


# --------------------------------------------------------------------------
# The decorator and pytest.


@virtual_time()
async def test_virtual_time_without_a_clock_parameter_still_runs_in_virtual_time() -> None:
    started = real_time.perf_counter()
    await asyncio.sleep(WEEK)
    assert loop_time() == WEEK
    assert real_time.perf_counter() - started < 1.0


@pytest.mark.parametrize("hours", [1, 24])
@virtual_time(start=START)
async def test_virtual_time_takes_parametrize_arguments_beside_the_clock(
    hours: int, clock: VirtualClock
) -> None:
    await asyncio.sleep(hours * 3600)
    assert clock.wall() == START + dt.timedelta(hours=hours)


@virtual_time(start=START)
@pytest.mark.parametrize("minutes", [5, 90])
async def test_parametrize_applied_under_virtual_time_works_too(minutes: int) -> None:
    await asyncio.sleep(minutes * 60)
    assert loop_time() == minutes * 60


@virtual_time()
async def test_virtual_time_passes_pytest_fixtures_through(
    tmp_path: pathlib.Path, clock: VirtualClock
) -> None:
    await asyncio.sleep(1)
    (tmp_path / "note").write_text(clock.wall().isoformat())
    assert (tmp_path / "note").read_text() == "2026-01-01T00:00:01+00:00"


def test_virtual_time_hides_the_clock_parameter_from_pytest() -> None:
    @virtual_time()
    async def scenario(name: str, clock: VirtualClock) -> str:
        return name

    assert list(inspect.signature(scenario).parameters) == ["name"]
    assert not inspect.iscoroutinefunction(scenario)
    assert scenario.__name__ == "scenario"


def test_each_call_of_a_decorated_function_gets_a_fresh_clock() -> None:
    @virtual_time(start=START)
    async def scenario(clock: VirtualClock) -> tuple[float, dt.datetime]:
        readings = (clock.monotonic(), clock.wall())
        await asyncio.sleep(100)
        return readings

    assert scenario() == (0.0, START)
    assert scenario() == (0.0, START)


@virtual_time()
async def test_work_in_a_thread_is_waited_for_in_real_time_when_no_timer_is_pending() -> None:
    # No timer pending: the loop blocks on its selector for real until the
    # thread's result arrives, and virtual time does not move.
    await asyncio.to_thread(real_time.sleep, 0.01)
    assert loop_time() == 0.0


# --------------------------------------------------------------------------
# What users test with it.


@virtual_time(start=START)
async def test_an_hourly_loop_over_a_simulated_week_takes_well_under_a_second(
    clock: VirtualClock,
) -> None:
    walls: list[dt.datetime] = []

    @loop(hours=1, count=7 * 24)
    async def hourly() -> None:
        walls.append(clock.wall())

    started = real_time.perf_counter()
    await hourly.start()
    elapsed = real_time.perf_counter() - started

    assert elapsed < 1.0
    assert len(walls) == 168
    assert walls[0] == START
    assert walls[-1] == START + dt.timedelta(hours=167)
    assert walls == [START + dt.timedelta(hours=n) for n in range(168)]


@virtual_time(start=dt.datetime(2026, 3, 28, tzinfo=UTC))
async def test_a_time_loop_across_a_dst_change_keeps_local_time(clock: VirtualClock) -> None:
    london = ZoneInfo("Europe/London")  # BST begins at 01:00 UTC on 2026-03-29
    local: list[str] = []

    @loop(time=dt.time(9, 0, tzinfo=london), count=3)
    async def morning() -> None:
        now = clock.wall()
        local.append(f"{now:%H:%M}Z = {now.astimezone(london):%H:%M %Z}")

    await morning.start()

    assert local == ["09:00Z = 09:00 GMT", "08:00Z = 09:00 BST", "08:00Z = 09:00 BST"]


def test_a_backoff_sequence_runs_in_milliseconds_and_the_same_every_time() -> None:
    async def scenario() -> list[tuple[dt.datetime, int, float]]:
        calls = 0

        @loop(hours=1, count=1, backoff=ExponentialBackoff(jitter=False))
        async def fetch() -> None:
            nonlocal calls
            calls += 1
            if calls <= 6:
                raise ConnectionError("down")

        subscription = fetch.events()
        await fetch.start()
        subscription.close()
        return [
            (event.at, event.attempt, event.delay)
            async for event in subscription
            if isinstance(event, RetryScheduled)
        ]

    started = real_time.perf_counter()
    first = VirtualClock(start=START).run(scenario())
    second = VirtualClock(start=START).run(scenario())
    elapsed = real_time.perf_counter() - started

    def at(seconds: int) -> dt.datetime:
        return START + dt.timedelta(seconds=seconds)

    assert first == [
        (at(0), 1, 2.0),
        (at(2), 2, 4.0),
        (at(6), 3, 8.0),
        (at(14), 4, 16.0),
        (at(30), 5, 32.0),
        (at(62), 6, 64.0),
    ]
    assert second == first
    assert elapsed < 1.0


def test_clock_sleep_checks_its_argument_and_a_cancelled_sleep_moves_nothing() -> None:
    clock = VirtualClock()

    async def main() -> float:
        with pytest.raises(ValueError, match=r"^'seconds' must be >= 0 \(got -1\)$"):
            await clock.sleep(-1)
        sleeper = asyncio.ensure_future(clock.sleep(3600))
        await asyncio.sleep(0)
        sleeper.cancel()
        with pytest.raises(asyncio.CancelledError):
            await sleeper
        return clock.monotonic()

    assert clock.run(main()) == 0.0
