"""pytest plugin: async tests in virtual time (installed with the ``test`` or ``pytest`` extra).

Registered through the ``pytest11`` entry point, so installing the extra
is enough. It gives pytest-asyncio tests two things:

* the ``virtual_time`` marker: the test (and its function-scoped async
  fixtures) runs on a `supervised_loops.testing.VirtualEventLoop`, where
  idle waits jump the clock: an hourly loop runs a day in milliseconds.
  ``@pytest.mark.virtual_time(start=datetime(2026, 3, 8, 6, tzinfo=UTC))``
  sets the virtual wall clock, which is what time-of-day schedules and DST
  changes are computed from.
* the ``virtual_clock`` fixture: the test's `supervised_loops.testing.VirtualClock`
  (to read it, step the wall clock, simulate a suspend). Asking for it is
  enough to run the test in virtual time, marker or not.

It works in pytest-asyncio's strict mode (mark the test ``asyncio`` as
usual, plus ``virtual_time``) and auto mode, through pytest-asyncio's loop
factories hook. Every other async test runs on the loop it would have had:
the plugin hands pytest-asyncio the standard factory for them, which builds
the loop through the event loop policy in force, as pytest-asyncio does. A
project's own ``pytest_asyncio_loop_factories`` (in a conftest) decides for
the tests the marker and fixture leave.
The virtual loop is per test: a test with a wider ``loop_scope`` shares
one clock across the tests of that scope. The page is ``docs/testing.md``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
from collections.abc import Callable, Mapping

import pytest
import pytest_asyncio

from .clock import get_clock
from .testing import DEFAULT_START, VirtualClock, _aware_utc

__all__ = ["MARKER", "virtual_clock"]

#: The marker's name.
MARKER = "virtual_time"

_MARKER_HELP = (
    f"{MARKER}(start=datetime): run this async test on a virtual-time event loop "
    "whose wall clock starts at `start` (aware; naive means UTC; default "
    f"{DEFAULT_START.isoformat()}). See supervised_loops.pytest_plugin."
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", _MARKER_HELP)


def _wants_virtual_time(item: pytest.Item) -> bool:
    return item.get_closest_marker(MARKER) is not None or "virtual_clock" in getattr(
        item, "fixturenames", ()
    )


def _start_of(item: pytest.Item) -> dt.datetime:
    marker = item.get_closest_marker(MARKER)
    if marker is None:
        return DEFAULT_START
    if len(marker.args) > 1 or set(marker.kwargs) - {"start"}:
        raise pytest.UsageError(
            f"{item.nodeid}: '@pytest.mark.{MARKER}' takes one argument, 'start' "
            f"(got args={marker.args!r}, kwargs={marker.kwargs!r})"
        )
    start = marker.args[0] if marker.args else marker.kwargs.get("start", DEFAULT_START)
    try:
        return _aware_utc("start", start)
    except TypeError as error:
        raise pytest.UsageError(f"{item.nodeid}: {error}") from None


def _virtual_loop(start: dt.datetime) -> asyncio.AbstractEventLoop:
    return VirtualClock(start).new_event_loop()


def _standard_loop() -> asyncio.AbstractEventLoop:
    # What pytest-asyncio does without a factory: ask the policy in force
    # (its `event_loop_policy` fixture sets it around this call).
    return asyncio.new_event_loop()


# pytest registers only functions named pytest_*, hence the suffixed names.
@pytest.hookimpl(optionalhook=True, tryfirst=True, specname="pytest_asyncio_loop_factories")
def pytest_asyncio_loop_factories_virtual(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]] | None:
    """A virtual-time loop for the tests that ask for one (marker or fixture).

    Asked first, so the marker's ``start`` holds even in a project whose
    conftest makes virtual time the default; None for the other tests,
    which a project's own answer, or the standard answer below, decides.
    """
    if _wants_virtual_time(item):
        return {"virtual": functools.partial(_virtual_loop, _start_of(item))}
    return None


@pytest.hookimpl(optionalhook=True, trylast=True, specname="pytest_asyncio_loop_factories")
def pytest_asyncio_loop_factories_standard(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]] | None:
    """The standard loop for every test nobody else answered for.

    pytest-asyncio requires an answer for each test once any plugin
    implements the hook.
    """
    return {"asyncio": _standard_loop}


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker(MARKER) is not None and not pytest_asyncio.is_async_test(item):
        pytest.fail(
            f"'@pytest.mark.{MARKER}' needs an async test run by pytest-asyncio "
            f"(in strict mode, mark it '@pytest.mark.asyncio' too): {item.nodeid}",
            pytrace=False,
        )


@pytest_asyncio.fixture
async def virtual_clock() -> VirtualClock:
    """The `VirtualClock` the test runs on (asking for it turns virtual time on).

    Raises (as a test failure): the test does not run on a virtual-time
    event loop (a sync test, or a test whose loop another plugin chose).
    """
    clock = get_clock(asyncio.get_running_loop())
    if not isinstance(clock, VirtualClock):
        pytest.fail(
            "the 'virtual_clock' fixture needs an async test run by pytest-asyncio "
            "on a virtual-time loop (in strict mode, mark it '@pytest.mark.asyncio')",
            pytrace=False,
        )
    return clock
