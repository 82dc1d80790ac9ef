"""Virtual time for tests: hours of loops in milliseconds, deterministically.

A `VirtualClock` owns an asyncio event loop whose clock does not
follow the machine's: whenever every task is waiting and the next thing to
happen is a timer, the loop jumps straight to that timer. An hourly loop, a
daily ``time=`` loop across a DST change or a whole backoff sequence then
runs in a few milliseconds, and always in the same order. The clock also
carries the wall time (an aware UTC datetime, starting wherever the test
says), which advances with the loop's clock and can be stepped on its own to
simulate an NTP correction or a suspended machine.

Three ways to use it:

    # 1. Run a coroutine.
    clock = VirtualClock(start=datetime(2026, 3, 8, 6, 0, tzinfo=UTC))
    clock.run(main())

    # 2. Decorate an async test (pytest or anything else).
    @virtual_time(start=datetime(2026, 3, 8, 6, 0, tzinfo=UTC))
    async def test_daily_report(clock):       # `clock` is optional
        report.start()
        await clock.sleep(86_400)             # one virtual day
        assert report.current_loop == 1

    # 3. pytest-asyncio >= 1.4: in conftest.py, the hook returns a mapping
    #    of factories, one fresh clock per test:
    def pytest_asyncio_loop_factories(config, item):
        return {"virtual": lambda: VirtualClock().new_event_loop()}

What it cannot do: time jumps only when nothing is ready to run, but it
cannot know about work in other threads or processes. A test that waits on a
thread (``run_in_executor``, ``tell_threadsafe``) while a timer is pending
sees virtual time race ahead of that thread. Real sockets and pipes are still
polled without blocking before each jump.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import inspect
import selectors
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from . import _validate
from .clock import attach_clock

__all__ = ["VirtualClock", "VirtualEventLoop", "virtual_time"]

T = TypeVar("T")

#: Where virtual wall time starts unless told otherwise.
DEFAULT_START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _aware_utc(name: str, moment: object) -> dt.datetime:
    """Return ``moment`` in UTC (naive means UTC), or raise TypeError."""
    checked = _validate.instance(name, moment, dt.datetime, "a datetime")
    if checked.tzinfo is None:
        checked = checked.replace(tzinfo=dt.UTC)
    return checked.astimezone(dt.UTC)


class _JumpingSelector(selectors.BaseSelector):
    """A selector that turns an idle wait into a jump of the virtual clock."""

    def __init__(self, real: selectors.BaseSelector, clock: VirtualClock) -> None:
        self._real = real
        self._clock = clock

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = self._real.select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:
            # No timer at all: only outside work (a thread, a socket) can
            # wake the loop, so wait for it for real.
            return self._real.select(None)
        self._clock._jump(timeout)
        return []

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._real.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.modify(fileobj, events, data)

    def close(self) -> None:
        self._real.close()

    def get_key(self, fileobj: Any) -> selectors.SelectorKey:
        return self._real.get_key(fileobj)

    def get_map(self) -> Any:
        return self._real.get_map()


class VirtualEventLoop(asyncio.SelectorEventLoop):
    """An event loop whose ``time()`` is a `VirtualClock`'s."""

    def __init__(self, clock: VirtualClock) -> None:
        self._virtual_clock = clock
        super().__init__(_JumpingSelector(selectors.DefaultSelector(), clock))
        attach_clock(self, clock)

    def time(self) -> float:
        return self._virtual_clock.monotonic()

    async def shutdown_default_executor(self, timeout: float | None = None) -> None:
        """Join the default executor's threads in real time, however long it takes.

        ``asyncio.run`` bounds the join (300 seconds on Python 3.12+); on this
        loop that bound would be virtual and expire at once while a thread
        is still finishing, so the join is never bounded here. Cancelling
        it ends the wait, not the threads.
        """
        del timeout  # a real-time wait must never be virtual
        await super().shutdown_default_executor()


class VirtualClock:
    """Virtual monotonic and wall time, driving its own event loops.

    Args:
        start: the wall time at which the clock starts (aware; a naive
            datetime is taken as UTC).

    The monotonic reading starts at 0.0 and only moves forward, by jumps of
    the event loop or by `suspend`; the wall reading is ``start`` plus
    the monotonic reading plus every `step_wall`.
    """

    def __init__(self, start: dt.datetime = DEFAULT_START) -> None:
        self._start = _aware_utc("start", start)
        self._monotonic = 0.0
        self._wall_offset = 0.0

    # -- readings ------------------------------------------------------------

    def monotonic(self) -> float:
        """Virtual seconds elapsed since the clock was made (the loop's ``time()``)."""
        return self._monotonic

    def wall(self) -> dt.datetime:
        """The virtual wall-clock time, aware UTC."""
        return self._start + dt.timedelta(seconds=self._monotonic + self._wall_offset)

    # -- moving time by hand ---------------------------------------------------

    def step_wall(self, seconds: float) -> None:
        """Step the wall clock alone by ``seconds`` (negative: backwards), like NTP.

        Monotonic time, and so every relative timer, is unaffected.

        Raises:
            TypeError: ``seconds`` is not a number.
            ValueError: ``seconds`` is NaN, infinite or too large for a float.
        """
        self._wall_offset += _validate.number("seconds", seconds)

    def set_wall(self, moment: dt.datetime) -> None:
        """Step the wall clock alone to ``moment`` (aware; naive means UTC).

        Raises:
            TypeError: ``moment`` is not a datetime.
        """
        moment = _aware_utc("moment", moment)
        self.step_wall((moment - self.wall()).total_seconds())

    def suspend(self, seconds: float) -> None:
        """Simulate a suspended machine: the wall clock moves, monotonic time does not.

        This is what Linux's ``CLOCK_MONOTONIC`` does across a suspend:
        timers fire late by the time spent suspended unless they re-check
        the wall clock.

        Raises:
            TypeError: ``seconds`` is not a number.
            ValueError: ``seconds`` is negative, NaN or infinite.
        """
        self.step_wall(_validate.seconds("seconds", seconds))

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` of virtual time (``asyncio.sleep`` on this clock's loop).

        Cancelled, it raises ``CancelledError`` at once, like ``asyncio.sleep``;
        the clock is not moved by the cancelled sleep.

        Raises:
            TypeError: ``seconds`` is not a number.
            ValueError: ``seconds`` is negative, NaN, infinite or too large
                for a float.
        """
        await asyncio.sleep(_validate.seconds("seconds", seconds))

    def _jump(self, seconds: float) -> None:
        if seconds > 0:
            self._monotonic += seconds

    # -- running ----------------------------------------------------------------

    def new_event_loop(self) -> VirtualEventLoop:
        """Return a new event loop running on this clock (a loop factory)."""
        return VirtualEventLoop(self)

    def run(self, main: Coroutine[Any, Any, T]) -> T:
        """Run ``main`` to completion on a new virtual-time event loop; return its result."""
        with asyncio.Runner(loop_factory=self.new_event_loop) as runner:
            return runner.run(main)

    def __repr__(self) -> str:
        return f"VirtualClock(wall={self.wall().isoformat()}, monotonic={self._monotonic})"


def virtual_time(
    start: dt.datetime = DEFAULT_START,
) -> Callable[[Callable[..., Awaitable[T]]], Callable[..., T]]:
    """Decorate an async test function so it runs in virtual time.

    The decorated function becomes a plain function that runs the coroutine
    on a fresh `VirtualClock` starting at ``start``. If the coroutine
    function has a parameter named ``clock``, it receives the clock; that
    parameter is hidden from the signature so pytest does not look for a
    fixture of that name. Other parameters (pytest fixtures, parametrize
    arguments) pass through.

    Raises:
        TypeError: ``start`` is not a datetime (raised here, where the test
            is decorated, not when it runs); the decorated object is not a
            coroutine function.
    """
    _aware_utc("start", start)

    def decorator(function: Callable[..., Awaitable[T]]) -> Callable[..., T]:
        _validate.coroutine_function("function", function)
        signature = inspect.signature(function)
        wants_clock = "clock" in signature.parameters

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> T:
            clock = VirtualClock(start)
            if wants_clock:
                kwargs["clock"] = clock
            return clock.run(function(*args, **kwargs))  # type: ignore[arg-type,unused-ignore]

        # Always set: once __wrapped__ is gone, the wrapper's own signature
        # would be (*args, **kwargs) and pytest would pass no fixtures at all.
        parameters = [p for p in signature.parameters.values() if p.name != "clock"]
        wrapper.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
        del wrapper.__wrapped__  # pytest must see the plain function, not the coroutine
        return wrapper

    return decorator
