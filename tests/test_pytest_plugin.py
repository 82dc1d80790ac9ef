"""The pytest plugin: the virtual_time marker and the virtual_clock fixture.

Each test runs a small test file in a fresh pytest (pytester), in
pytest-asyncio's strict and auto modes, and checks what a user sees: the
test ran in virtual time (an hour of sleep in no real time), with the wall
clock the marker set, async fixtures on the same loop, and clear failures
for misuse.
"""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

MODES = pytest.mark.parametrize("mode", ["strict", "auto"])


def _ini(pytester: pytest.Pytester, mode: str) -> None:
    pytester.makeini(
        f"""
        [pytest]
        asyncio_mode = {mode}
        asyncio_default_fixture_loop_scope = function
        filterwarnings = error
        """
    )


def _asyncio_mark(mode: str) -> str:
    return "@pytest.mark.asyncio" if mode == "strict" else ""


@MODES
def test_marker_runs_a_day_of_sleep_in_virtual_time(pytester: pytest.Pytester, mode: str) -> None:
    _ini(pytester, mode)
    pytester.makepyfile(
        f"""
        import asyncio, time
        import pytest

        {_asyncio_mark(mode)}
        @pytest.mark.virtual_time
        async def test_day():
            loop = asyncio.get_running_loop()
            real = time.monotonic()
            before = loop.time()
            await asyncio.sleep(86_400)
            assert loop.time() - before == 86_400
            assert time.monotonic() - real < 5
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


@MODES
def test_marker_start_sets_the_wall_clock_and_a_daily_loop_follows_dst(
    pytester: pytest.Pytester, mode: str
) -> None:
    _ini(pytester, mode)
    pytester.makepyfile(
        f"""
        import asyncio, datetime as dt
        from zoneinfo import ZoneInfo
        import pytest
        from supervised_loops import loop

        NEW_YORK = ZoneInfo("America/New_York")

        {_asyncio_mark(mode)}
        @pytest.mark.virtual_time(start=dt.datetime(2026, 3, 7, 12, tzinfo=dt.UTC))
        async def test_spring_forward(virtual_clock):
            assert virtual_clock.wall() == dt.datetime(2026, 3, 7, 12, tzinfo=dt.UTC)
            runs = []

            @loop(time=dt.time(9, 0, tzinfo=NEW_YORK), count=2)
            async def report():
                runs.append(virtual_clock.wall().astimezone(NEW_YORK))

            report.start()
            await report.get_task()
            # 09:00 local on both sides of the change: 14:00 UTC, then 13:00 UTC.
            assert [r.hour for r in runs] == [9, 9]
            assert [r.utcoffset() for r in runs] == [dt.timedelta(hours=-5), dt.timedelta(hours=-4)]
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


@MODES
def test_fixture_alone_turns_virtual_time_on_and_async_fixtures_share_the_loop(
    pytester: pytest.Pytester, mode: str
) -> None:
    _ini(pytester, mode)
    pytester.makepyfile(
        f"""
        import asyncio
        import pytest
        import pytest_asyncio
        from supervised_loops import loop
        from supervised_loops.testing import VirtualClock

        @pytest_asyncio.fixture
        async def ticker():
            ticks = []

            @loop(seconds=60)
            async def tick():
                ticks.append(asyncio.get_running_loop().time())

            tick.start()
            yield tick, ticks
            tick.cancel()

        {_asyncio_mark(mode)}
        async def test_hour(virtual_clock, ticker):
            assert isinstance(virtual_clock, VirtualClock)
            tick, ticks = ticker
            await virtual_clock.sleep(3600.5)
            assert len(ticks) == 61
            assert ticks[-1] == 3600.0
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


@MODES
def test_unmarked_async_tests_keep_the_real_clock(pytester: pytest.Pytester, mode: str) -> None:
    _ini(pytester, mode)
    pytester.makepyfile(
        f"""
        import asyncio
        import pytest
        from supervised_loops.clock import SystemClock, get_clock

        {_asyncio_mark(mode)}
        async def test_real():
            assert isinstance(get_clock(), SystemClock)
            loop = asyncio.get_running_loop()
            before = loop.time()
            await asyncio.sleep(0.01)
            assert loop.time() - before >= 0.01
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_module_mark_applies_to_every_test_in_the_module(pytester: pytest.Pytester) -> None:
    _ini(pytester, "auto")
    pytester.makepyfile(
        """
        import asyncio
        import pytest

        pytestmark = pytest.mark.virtual_time

        async def test_one(virtual_clock):
            await asyncio.sleep(600)
            assert virtual_clock.monotonic() == 600

        async def test_two(virtual_clock):
            assert virtual_clock.monotonic() == 0   # a fresh clock per test
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_marker_on_a_sync_test_fails_with_the_rule(pytester: pytest.Pytester) -> None:
    _ini(pytester, "strict")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.virtual_time
        def test_sync():
            pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*'@pytest.mark.virtual_time' needs an async test*"])


def test_strict_mode_without_the_asyncio_mark_is_refused(pytester: pytest.Pytester) -> None:
    _ini(pytester, "strict")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.virtual_time
        async def test_forgot_asyncio():
            pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*mark it '@pytest.mark.asyncio' too*"])
    assert result.ret != 0


def test_bad_start_is_a_usage_error_naming_the_value(pytester: pytest.Pytester) -> None:
    _ini(pytester, "auto")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.virtual_time(start="2026-01-01")
        async def test_bad():
            pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*'start' must be a datetime (got '2026-01-01')*"])


def test_marker_is_registered_for_strict_markers(pytester: pytest.Pytester) -> None:
    _ini(pytester, "strict")
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.virtual_time(start=datetime)*"])


def test_the_marker_wins_over_a_conftest_default_which_decides_the_rest(
    pytester: pytest.Pytester,
) -> None:
    _ini(pytester, "auto")
    pytester.makeconftest(
        """
        import datetime as dt
        from supervised_loops.testing import VirtualClock

        def pytest_asyncio_loop_factories(config, item):
            start = dt.datetime(2030, 6, 1, tzinfo=dt.UTC)
            return {"virtual": lambda: VirtualClock(start).new_event_loop()}
        """
    )
    pytester.makepyfile(
        """
        import datetime as dt
        import pytest
        from supervised_loops.clock import get_clock

        @pytest.mark.virtual_time(start=dt.datetime(2026, 11, 1, tzinfo=dt.UTC))
        async def test_marked():
            assert get_clock().wall() == dt.datetime(2026, 11, 1, tzinfo=dt.UTC)

        async def test_unmarked():
            assert get_clock().wall() == dt.datetime(2030, 6, 1, tzinfo=dt.UTC)
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
