"""The discord.ext.tasks surface of `Loop` (docs/migration.md).

Code written for ``discord.ext.tasks`` must work after changing only the
import, so every name of the seeds is pinned down here: the ``loop()``
arguments, the methods and their return values, the read-only properties,
the decorators, the validation rules (docs/loops.md, "Validation") with their
exact messages, and
per-instance binding in classes. The known faults of the original (docs/migration.md)
are in ``test_loop_faults.py``.

Every timing runs in virtual time (``@virtual_time``), so an hourly loop
takes microseconds and every instant asserted is exact.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from supervised_loops import (
    ChangeInterval,
    DailyAt,
    Every,
    ExponentialBackoff,
    GetStatus,
    Loop,
    State,
    dead_letters,
    loop,
)
from supervised_loops.testing import DEFAULT_START, VirtualClock, virtual_time

EXACT = ExponentialBackoff(jitter=False)
NOON = dt.time(12, 0)


def exactly(message: str) -> str:
    """A ``pytest.raises(match=...)`` pattern accepting ``message`` and nothing else."""
    return f"^{re.escape(message)}$"


async def nothing() -> None:
    """A loop body that does nothing."""


class Flaky(Exception):
    """An application error that a test whitelists for retry."""


# --------------------------------------------------------------------------
# loop() and its read-only properties.


def test_loop_returns_a_decorator_that_builds_a_loop() -> None:
    decorator = loop(seconds=5)
    printer = decorator(nothing)
    assert isinstance(printer, Loop)
    assert printer.name == "nothing"  # the function's __name__ by default


def test_relative_loop_exposes_its_interval_parts_and_no_time() -> None:
    printer = loop(seconds=5, minutes=2, hours=1)(nothing)
    assert (printer.seconds, printer.minutes, printer.hours) == (5.0, 2.0, 1.0)
    assert printer.time is None
    assert printer.count is None
    assert printer.schedule == Every(seconds=5, minutes=2, hours=1)


def test_unset_interval_parts_read_as_zero_like_discord() -> None:
    printer = loop(minutes=3)(nothing)
    assert (printer.seconds, printer.minutes, printer.hours) == (0.0, 3.0, 0.0)


def test_time_loop_exposes_sorted_deduplicated_aware_times_and_no_interval() -> None:
    tokyo = dt.timezone(dt.timedelta(hours=9))
    later = dt.time(18, 30, tzinfo=tokyo)
    printer = loop(time=[later, NOON, NOON])(nothing)
    # Naive means UTC, as in discord.ext.tasks; duplicates are dropped.
    assert printer.time == [NOON.replace(tzinfo=dt.UTC), later]
    assert (printer.seconds, printer.minutes, printer.hours) == (None, None, None)
    assert printer.schedule == DailyAt([NOON, later])


def test_time_property_is_a_copy_that_cannot_change_the_loop() -> None:
    printer = loop(time=NOON)(nothing)
    times = printer.time
    assert times is not None
    times.append(dt.time(13, 0))
    assert printer.time == [NOON.replace(tzinfo=dt.UTC)]


def test_count_and_name_are_the_given_values() -> None:
    printer = loop(seconds=1, count=5, name="slow_count")(nothing)
    assert printer.count == 5
    assert printer.name == "slow_count"


@pytest.mark.parametrize(
    "attribute",
    ["seconds", "minutes", "hours", "time", "count", "name", "current_loop", "next_iteration"],
)
def test_properties_are_read_only(attribute: str) -> None:
    printer = loop(seconds=1)(nothing)
    with pytest.raises(AttributeError):
        setattr(printer, attribute, 3)


# --------------------------------------------------------------------------
# start, get_task, is_running, current_loop, next_iteration.


@virtual_time()
async def test_start_returns_the_task_and_passes_args_and_kwargs_to_the_body() -> None:
    seen: list[tuple[Any, ...]] = []

    @loop(seconds=10, count=2)
    async def greeter(first: int, second: int, *, punctuation: str) -> None:
        seen.append((first, second, punctuation))

    task = greeter.start(1, 2, punctuation="!")
    assert isinstance(task, asyncio.Task)
    assert greeter.get_task() is task
    await task
    assert seen == [(1, 2, "!"), (1, 2, "!")]


@virtual_time()
async def test_start_while_running_raises_runtime_error_naming_the_loop() -> None:
    printer = loop(seconds=10, name="printer")(nothing)
    task = printer.start()
    await asyncio.sleep(25)
    with pytest.raises(
        RuntimeError,
        match=exactly(
            "loop 'printer' is already running; stop() or cancel() it first, or call restart()"
        ),
    ):
        printer.start()
    assert printer.get_task() is task  # the running task was not replaced
    printer.stop()
    await task


@virtual_time()
async def test_start_while_before_loop_is_waiting_raises_runtime_error() -> None:
    ready = asyncio.Event()
    printer = loop(seconds=10, name="printer")(nothing)

    @printer.before_loop
    async def wait_until_ready() -> None:
        await ready.wait()

    task = printer.start()
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="is already running"):
        printer.start()
    ready.set()
    printer.stop()
    await task


@virtual_time()
async def test_get_task_and_is_running_follow_the_run() -> None:
    printer = loop(seconds=10, count=3)(nothing)
    assert printer.get_task() is None
    assert printer.is_running() is False
    task = printer.start()
    assert printer.is_running() is True
    await task
    assert printer.is_running() is False
    # Like discord.ext.tasks, the finished task stays reachable.
    assert printer.get_task() is task
    assert task.done()


@virtual_time()
async def test_is_running_stays_true_until_after_loop_has_finished() -> None:
    observed: list[bool] = []
    printer = loop(seconds=10, count=1)(nothing)

    @printer.after_loop
    async def after() -> None:
        await asyncio.sleep(5)
        observed.append(printer.is_running())

    await printer.start()
    assert observed == [True]
    assert printer.is_running() is False


@virtual_time()
async def test_current_loop_counts_completed_iterations_and_the_body_sees_it(
    clock: VirtualClock,
) -> None:
    seen: list[int] = []

    @loop(seconds=10, count=5)
    async def slow_count() -> None:
        seen.append(slow_count.current_loop)

    assert slow_count.current_loop == 0
    await slow_count.start()
    assert seen == [0, 1, 2, 3, 4]
    assert slow_count.current_loop == 5  # the last run's count stays readable
    assert clock.monotonic() == 40.0


@virtual_time()
async def test_current_loop_starts_again_at_zero_on_a_new_start() -> None:
    seen: list[int] = []

    @loop(seconds=10, count=2)
    async def counter() -> None:
        seen.append(counter.current_loop)

    await counter.start()
    await counter.start()
    assert seen == [0, 1, 0, 1]


@virtual_time()
async def test_next_iteration_is_none_before_start_and_while_starting() -> None:
    ready = asyncio.Event()
    printer = loop(seconds=10)(nothing)
    assert printer.next_iteration is None

    @printer.before_loop
    async def before() -> None:
        await ready.wait()

    task = printer.start()
    await asyncio.sleep(1)
    assert printer.next_iteration is None  # still in before_loop: not scheduled yet
    ready.set()
    printer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@virtual_time()
async def test_next_iteration_is_the_aware_utc_grid_point_while_sleeping() -> None:
    printer = loop(seconds=10)(nothing)
    task = printer.start()
    await asyncio.sleep(25)  # iterations ran at 0, 10, 20; the next is due at 30
    upcoming = printer.next_iteration
    assert upcoming == DEFAULT_START + dt.timedelta(seconds=30)
    assert upcoming is not None
    assert upcoming.tzinfo is dt.UTC
    printer.stop()
    await task


@virtual_time()
async def test_next_iteration_during_the_body_is_the_following_grid_point() -> None:
    observed: list[dt.datetime | None] = []

    @loop(minutes=1, count=2)
    async def slow() -> None:
        await asyncio.sleep(15)
        observed.append(slow.next_iteration)

    await slow.start()
    assert observed == [
        DEFAULT_START + dt.timedelta(minutes=1),
        DEFAULT_START + dt.timedelta(minutes=2),
    ]


@virtual_time()
async def test_next_iteration_of_a_time_loop_is_the_next_slot() -> None:
    daily = loop(time=dt.time(9, 30))(nothing)
    task = daily.start()
    await asyncio.sleep(60)
    assert daily.next_iteration == dt.datetime(2026, 1, 1, 9, 30, tzinfo=dt.UTC)
    daily.stop()
    await task


@virtual_time()
async def test_next_iteration_is_none_once_stop_is_requested_and_after_the_run() -> None:
    gate = asyncio.Event()

    @loop(seconds=10)
    async def worker() -> None:
        await gate.wait()

    task = worker.start()
    await asyncio.sleep(1)  # inside the first iteration
    assert worker.next_iteration is not None
    worker.stop()
    assert worker.next_iteration is None  # stopping: nothing is scheduled any more
    gate.set()
    await task
    assert worker.next_iteration is None


# --------------------------------------------------------------------------
# await loop(*args): one direct call of the body.


@virtual_time()
async def test_awaiting_the_loop_calls_the_body_once_and_returns_its_value() -> None:
    calls: list[tuple[int, int]] = []

    @loop(seconds=10)
    async def add(a: int, b: int) -> int:
        calls.append((a, b))
        return a + b

    assert await add(2, b=3) == 5
    assert calls == [(2, 3)]
    # A direct call is not a run: nothing started, nothing counted.
    assert add.get_task() is None
    assert add.is_running() is False
    assert add.current_loop == 0


@virtual_time()
async def test_awaiting_a_bound_loop_passes_the_instance_first() -> None:
    class Cog:
        def __init__(self) -> None:
            self.factor = 10

        @loop(seconds=10)
        async def scale(self, value: int) -> int:
            return self.factor * value

    assert await Cog().scale(4) == 40


# --------------------------------------------------------------------------
# failed, is_being_cancelled, error handlers.


@virtual_time()
async def test_failed_is_true_after_an_escalated_error_and_reset_by_a_new_start() -> None:
    attempts = 0

    @loop(seconds=10)
    async def fragile() -> None:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise ZeroDivisionError("bad maths")

    @fragile.error
    async def quiet(error: BaseException) -> None:
        pass

    assert fragile.failed() is False
    with pytest.raises(ZeroDivisionError, match="bad maths"):
        await fragile.start()
    assert fragile.failed() is True
    task = fragile.start()
    await asyncio.sleep(5)
    assert fragile.failed() is False
    fragile.stop()
    await task


@virtual_time()
async def test_is_being_cancelled_is_true_inside_after_loop_only_after_a_cancel() -> None:
    observed: list[bool] = []
    printer = loop(seconds=10)(nothing)

    @printer.after_loop
    async def after() -> None:
        observed.append(printer.is_being_cancelled())

    task = printer.start()
    await asyncio.sleep(5)
    assert printer.is_being_cancelled() is False
    printer.stop()
    await task
    task = printer.start()
    await asyncio.sleep(5)
    printer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert observed == [False, True]
    assert printer.is_being_cancelled() is False  # the run is over


@virtual_time()
async def test_error_handler_receives_the_exception_alone_like_discord() -> None:
    received: list[tuple[Any, ...]] = []

    @loop(seconds=10)
    async def job(target: str, *, retries: int) -> None:
        raise KeyError(target)

    @job.error
    async def on_error(*args: Any) -> None:
        received.append(args)
        assert job.failed() is True  # already failed when the handler runs

    # discord.ext.tasks 2.x calls the handler with the exception only (plus
    # ``self`` in a class), whatever the start arguments: handlers written
    # as ``async def on_error(error)`` must keep working.
    with pytest.raises(KeyError):
        await job.start("db", retries=3)
    assert len(received) == 1
    (error,) = received[0]
    assert isinstance(error, KeyError)
    assert error.args == ("db",)


@virtual_time()
async def test_default_error_handler_logs_the_error_with_its_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="supervised_loops")

    @loop(seconds=10)
    async def broken() -> None:
        if broken.current_loop == 1:
            raise ZeroDivisionError("division by zero")

    with pytest.raises(ZeroDivisionError) as raised:
        await broken.start()
    records = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(records) == 1
    record = records[0]
    assert record.name == "supervised_loops"
    assert record.getMessage() == "loop 'broken' failed at iteration 1"
    assert record.exc_info is not None
    assert record.exc_info[1] is raised.value
    assert "Traceback (most recent call last)" in caplog.text
    assert 'raise ZeroDivisionError("division by zero")' in caplog.text


@virtual_time()
async def test_a_custom_error_handler_replaces_the_default_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="supervised_loops")

    @loop(seconds=10)
    async def broken() -> None:
        raise ZeroDivisionError

    @broken.error
    async def handled(error: BaseException) -> None:
        pass

    with pytest.raises(ZeroDivisionError):
        await broken.start()
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


# --------------------------------------------------------------------------
# Decorators.


@pytest.mark.parametrize("decorator", ["before_loop", "after_loop", "error"])
def test_hook_decorators_return_the_function_unchanged(decorator: str) -> None:
    printer = loop(seconds=1)(nothing)

    async def hook(*args: Any) -> None:
        pass

    assert getattr(printer, decorator)(hook) is hook


@pytest.mark.parametrize("decorator", ["before_loop", "after_loop", "error"])
def test_hook_decorators_refuse_a_plain_function(decorator: str) -> None:
    printer = loop(seconds=1)(nothing)

    def hook() -> None:
        pass

    with pytest.raises(
        TypeError, match=exactly(f"'{decorator}' must be a coroutine function (got {hook!r})")
    ):
        getattr(printer, decorator)(hook)


@virtual_time()
async def test_hooks_run_in_order_around_the_iterations() -> None:
    order: list[str] = []

    @loop(seconds=10, count=2)
    async def job() -> None:
        order.append(f"body {job.current_loop}")

    @job.before_loop
    async def before() -> None:
        order.append("before")

    @job.after_loop
    async def after() -> None:
        order.append("after")

    await job.start()
    assert order == ["before", "body 0", "body 1", "after"]


# --------------------------------------------------------------------------
# Exception types.


def test_remove_exception_type_returns_whether_every_class_was_removed() -> None:
    printer = loop(seconds=1)(nothing)
    # The defaults are OSError and TimeoutError (docs/loops.md, "Retry rules and backoff").
    assert printer.remove_exception_type(OSError) is True
    assert printer.remove_exception_type(OSError) is False  # already gone
    # discord.ext.tasks semantics: False when any was missing, the rest still removed.
    assert printer.remove_exception_type(TimeoutError, KeyError) is False
    assert printer.remove_exception_type(TimeoutError) is False


def test_add_then_remove_exception_type_round_trips() -> None:
    printer = loop(seconds=1)(nothing)
    printer.add_exception_type(Flaky, LookupError)
    assert printer.remove_exception_type(Flaky, LookupError) is True


def test_add_exception_type_refuses_a_non_class() -> None:
    printer = loop(seconds=1)(nothing)
    with pytest.raises(
        TypeError, match=exactly("'exceptions[0]' must be an exception class (got 42)")
    ):
        printer.add_exception_type(42)  # type: ignore[arg-type]


def test_add_exception_type_refuses_a_non_exception_class_and_adds_nothing() -> None:
    printer = loop(seconds=1)(nothing)
    with pytest.raises(
        TypeError, match=exactly("'exceptions[1]' must be an exception class (got <class 'int'>)")
    ):
        printer.add_exception_type(Flaky, int)  # type: ignore[arg-type]
    assert printer.remove_exception_type(Flaky) is False  # the valid one was not added either


@pytest.mark.parametrize(
    "never", [asyncio.CancelledError, KeyboardInterrupt, SystemExit, GeneratorExit]
)
def test_add_exception_type_refuses_exceptions_that_are_never_retried(
    never: type[BaseException],
) -> None:
    printer = loop(seconds=1)(nothing)
    with pytest.raises(
        ValueError,
        match=exactly(
            "'exceptions[0]' must be retryable: not KeyboardInterrupt, SystemExit,"
            f" GeneratorExit or CancelledError (got {never!r})"
        ),
    ):
        printer.add_exception_type(never)


@virtual_time()
async def test_an_added_exception_type_is_retried_with_backoff(clock: VirtualClock) -> None:
    starts: list[float] = []

    @loop(minutes=10, count=1, backoff=EXACT)
    async def sync() -> None:
        starts.append(clock.monotonic())
        if len(starts) < 3:
            raise Flaky

    sync.add_exception_type(Flaky)
    await sync.start()
    # Retried 2 s then 4 s later (windows 2, 4); current_loop did not advance meanwhile.
    assert starts == [0.0, 2.0, 6.0]
    assert sync.current_loop == 1
    assert sync.failed() is False


@virtual_time()
async def test_cleared_exception_types_make_os_errors_escalate(clock: VirtualClock) -> None:
    calls = 0

    @loop(seconds=10)
    async def fetch() -> None:
        nonlocal calls
        calls += 1
        raise ConnectionResetError("peer reset")

    @fetch.error
    async def quiet(error: BaseException) -> None:
        pass

    fetch.clear_exception_types()
    with pytest.raises(ConnectionResetError):
        await fetch.start()
    assert calls == 1
    assert fetch.failed() is True
    assert clock.monotonic() == 0.0


@virtual_time()
async def test_reconnect_false_escalates_whitelisted_errors_at_once() -> None:
    @loop(seconds=10, reconnect=False)
    async def fetch() -> None:
        raise TimeoutError

    @fetch.error
    async def quiet(error: BaseException) -> None:
        pass

    with pytest.raises(TimeoutError):
        await fetch.start()
    assert fetch.failed() is True


# --------------------------------------------------------------------------
# The validation rules (docs/loops.md, "Validation"). Each bad input fails at the call, with the
# message users see; loop() and change_interval() share the rules.

NAN = math.nan
INF = math.inf
INTERVAL_ERRORS: list[Any] = [
    pytest.param({"seconds": -1}, ValueError, "'seconds' must be >= 0 (got -1)", id="negative"),
    pytest.param(
        {"minutes": -1, "seconds": 90},
        ValueError,
        "'minutes' must be >= 0 (got -1)",
        id="negative-part-positive-total",
    ),
    pytest.param({"seconds": NAN}, ValueError, "'seconds' must be finite (got nan)", id="nan"),
    pytest.param({"minutes": INF}, ValueError, "'minutes' must be finite (got inf)", id="inf"),
    pytest.param({"hours": -INF}, ValueError, "'hours' must be finite (got -inf)", id="-inf"),
    pytest.param(
        {"seconds": 1e308, "hours": 1e308},
        ValueError,
        "'seconds + 60 * minutes + 3600 * hours' must be <= 31536000000 (1000 years) (got inf)",
        id="total-overflows-to-inf",
    ),
    pytest.param({"seconds": "5"}, TypeError, "'seconds' must be a number (got '5')", id="string"),
    pytest.param(
        {"seconds": 5, "time": NOON},
        TypeError,
        "'time' cannot be mixed with seconds/minutes/hours; "
        "use either a relative interval or times of day",
        id="time-with-seconds",
    ),
    pytest.param(
        {"hours": 1, "time": [NOON]},
        TypeError,
        "'time' cannot be mixed with seconds/minutes/hours; "
        "use either a relative interval or times of day",
        id="time-with-hours",
    ),
    pytest.param(
        {"time": "12:00"},
        TypeError,
        "'time' must be a datetime.time or a sequence of datetime.time (got '12:00')",
        id="time-not-a-time",
    ),
    pytest.param(
        {"time": [NOON, NOON, "13:00"]},
        TypeError,
        "'time[2]' must be a datetime.time (got '13:00')",
        id="time-element-2",
    ),
    pytest.param(
        {"time": (NOON, dt.datetime(2026, 1, 1))},
        TypeError,
        "'time[1]' must be a datetime.time (got datetime.datetime(2026, 1, 1, 0, 0))",
        id="time-element-datetime",
    ),
    pytest.param({"time": []}, ValueError, "'time' must be a non-empty sequence (got [])", id="[]"),
    pytest.param({"time": ()}, ValueError, "'time' must be a non-empty sequence (got ())", id="()"),
]


@pytest.mark.parametrize(("kwargs", "error", "message"), INTERVAL_ERRORS)
def test_loop_rejects_a_bad_interval(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=exactly(message)):
        loop(**kwargs)(nothing)


@pytest.mark.parametrize(("kwargs", "error", "message"), INTERVAL_ERRORS)
def test_change_interval_message_rejects_a_bad_interval(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=exactly(message)):
        ChangeInterval(**kwargs)


class RecordingLoop(Loop):
    """A Loop that records every message told to it (to prove nothing was sent)."""

    def __init__(self, coro: Callable[..., Awaitable[Any]], **options: Any) -> None:
        super().__init__(coro, **options)
        self.told: list[object] = []

    def tell(self, message: Any) -> None:
        self.told.append(message)
        super().tell(message)


@pytest.mark.parametrize(("kwargs", "error", "message"), INTERVAL_ERRORS)
@virtual_time()
async def test_change_interval_raises_in_the_caller_and_sends_nothing(
    kwargs: dict[str, Any], error: type[Exception], message: str, clock: VirtualClock
) -> None:
    starts: list[float] = []

    async def tick() -> None:
        starts.append(clock.monotonic())

    ticker = RecordingLoop(tick, schedule=Every(seconds=10))
    task = ticker.start()
    await asyncio.sleep(5)
    with pytest.raises(error, match=exactly(message)):
        ticker.change_interval(**kwargs)
    assert ticker.told == []
    assert ticker.schedule == Every(seconds=10)
    await asyncio.sleep(20)
    assert starts == [0.0, 10.0, 20.0]  # the old grid is untouched
    ticker.stop()
    await task


@pytest.mark.parametrize(("kwargs", "error", "message"), INTERVAL_ERRORS[:7])
def test_change_interval_raises_before_the_first_start_too(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    printer = loop(seconds=10)(nothing)
    with pytest.raises(error, match=exactly(message)):
        printer.change_interval(**kwargs)
    assert printer.seconds == 10.0


def test_decorating_a_plain_function_is_a_type_error() -> None:
    def plain() -> None:
        pass

    with pytest.raises(
        TypeError, match=exactly(f"'loop' must be a coroutine function (got {plain!r})")
    ):
        loop(seconds=1)(plain)  # type: ignore[arg-type]


def test_decorating_an_async_generator_function_is_a_type_error() -> None:
    async def stream() -> Any:
        yield 1

    with pytest.raises(TypeError, match="'loop' must be a coroutine function"):
        loop(seconds=1)(stream)


@pytest.mark.parametrize(
    ("count", "error", "message"),
    [
        (0, ValueError, "'count' must be > 0 (got 0)"),
        (-3, ValueError, "'count' must be > 0 (got -3)"),
        (2.5, TypeError, "'count' must be an int (got 2.5)"),
    ],
)
def test_count_must_be_a_positive_int_or_none(
    count: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=exactly(message)):
        loop(seconds=1, count=count)(nothing)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: ExponentialBackoff(base=NAN), "'base' must be finite (got nan)"),
        (lambda: ExponentialBackoff(cap=INF), "'cap' must be finite (got inf)"),
        (lambda: ExponentialBackoff(reset_after=INF), "'reset_after' must be finite (got inf)"),
        (lambda: Every(seconds=NAN), "'seconds' must be finite (got nan)"),
    ],
)
def test_non_finite_delays_are_refused_everywhere_they_are_taken(
    build: Callable[[], object], message: str
) -> None:
    with pytest.raises(ValueError, match=exactly(message)):
        build()


@pytest.mark.parametrize("timeout", [NAN, INF])
@virtual_time()
async def test_ask_refuses_a_non_finite_timeout(timeout: float) -> None:
    printer = loop(seconds=1)(nothing)
    with pytest.raises(ValueError, match=exactly(f"'timeout' must be finite (got {timeout!r})")):
        await printer.ask(GetStatus(), timeout=timeout)


# --------------------------------------------------------------------------
# change_interval that works.


@virtual_time()
async def test_change_interval_while_sleeping_recomputes_the_wake_up_at_once(
    clock: VirtualClock,
) -> None:
    starts: list[float] = []

    @loop(hours=1)
    async def poll() -> None:
        starts.append(clock.monotonic())

    task = poll.start()
    await asyncio.sleep(60)
    poll.change_interval(seconds=90)
    assert poll.seconds == 90.0
    assert poll.minutes == 0.0
    await asyncio.sleep(200)
    # From the last iteration (0): due at 90, then on the new grid.
    assert starts == [0.0, 90.0, 180.0]
    poll.stop()
    await task


@virtual_time()
async def test_change_interval_to_times_of_day_switches_the_properties(clock: VirtualClock) -> None:
    starts: list[dt.datetime] = []

    @loop(hours=1)
    async def poll() -> None:
        starts.append(clock.wall())

    task = poll.start()
    await asyncio.sleep(60)
    poll.change_interval(time=dt.time(6, 0))
    assert poll.time == [dt.time(6, 0, tzinfo=dt.UTC)]
    assert (poll.seconds, poll.minutes, poll.hours) == (None, None, None)
    await asyncio.sleep(86_400)
    assert starts == [DEFAULT_START, dt.datetime(2026, 1, 1, 6, 0, tzinfo=dt.UTC)]
    poll.stop()
    await task


# --------------------------------------------------------------------------
# Per-instance binding.


@virtual_time()
async def test_each_instance_gets_its_own_loop_with_its_own_state() -> None:
    class Cog:
        def __init__(self, step: int) -> None:
            self.step = step
            self.index = 0

        @loop(seconds=5, count=3)
        async def printer(self) -> None:
            self.index += self.step

    one, two = Cog(1), Cog(10)
    assert one.printer is one.printer  # cached: the same Loop every access
    assert one.printer is not two.printer
    assert Cog.printer is not one.printer  # the class attribute stays unbound
    task = one.printer.start()
    assert two.printer.is_running() is False
    await task
    await two.printer.start()
    assert (one.index, two.index) == (3, 30)
    assert one.printer.current_loop == 3


@virtual_time()
async def test_hooks_and_error_handler_receive_the_instance() -> None:
    calls: list[tuple[str, Any]] = []

    class Cog:
        @loop(seconds=5, count=1)
        async def job(self) -> None:
            raise KeyError("missing")

        @job.before_loop
        async def before_job(self) -> None:
            calls.append(("before", self))

        @job.after_loop
        async def after_job(self) -> None:
            calls.append(("after", self))

        @job.error
        async def job_error(self, error: BaseException) -> None:
            calls.append(("error", (self, type(error))))

    cog = Cog()
    with pytest.raises(KeyError):
        await cog.job.start()
    assert calls == [("before", cog), ("error", (cog, KeyError)), ("after", cog)]


@virtual_time()
async def test_loops_bound_to_different_attributes_stay_separate_when_names_clash() -> None:
    def make(tag: str) -> Callable[[Any], Awaitable[None]]:
        async def tick(self: Any) -> None:
            self.seen.append(tag)

        return tick

    class Cog:
        def __init__(self) -> None:
            self.seen: list[str] = []

        first = loop(seconds=10, count=1)(make("first"))
        second = loop(seconds=10, count=1)(make("second"))

    cog = Cog()
    assert cog.first is not cog.second
    assert cog.first is cog.first
    assert cog.second is cog.second
    await cog.first.start()
    await cog.second.start()
    assert cog.seen == ["first", "second"]


@pytest.mark.parametrize("weakrefable", [True, False], ids=["weakref-slot", "no-weakref-slot"])
@virtual_time()
async def test_classes_with_slots_get_per_instance_loops(weakrefable: bool) -> None:
    slots = ("index", "__weakref__") if weakrefable else ("index",)

    async def count_up(self: Any) -> None:
        self.index += 1

    namespace: dict[str, Any] = {
        "__slots__": slots,
        "__init__": lambda self: setattr(self, "index", 0),
        "counter": loop(seconds=1, count=2)(count_up),
    }
    Slotted = type("Slotted", (), namespace)
    one, two = Slotted(), Slotted()
    assert not hasattr(one, "__dict__")
    assert one.counter is one.counter
    assert one.counter is not two.counter
    await one.counter.start()
    await two.counter.start()
    await two.counter.start()
    assert (one.index, two.index) == (2, 4)


@virtual_time()
async def test_customisations_on_the_class_attribute_carry_over_to_instances(
    clock: VirtualClock,
) -> None:
    events: list[str] = []

    class Cog:
        @loop(hours=1, count=2, backoff=EXACT)
        async def sync(self) -> None:
            events.append(f"body@{clock.monotonic():g}")
            if events.count("body@30") == 1 and events[-1] == "body@30":
                raise Flaky

    @Cog.sync.before_loop
    async def before(self: Cog) -> None:
        events.append("before")

    @Cog.sync.after_loop
    async def after(self: Cog) -> None:
        events.append("after")

    Cog.sync.add_exception_type(Flaky)
    Cog.sync.change_interval(seconds=30)

    cog = Cog()
    assert cog.sync.seconds == 30.0
    await cog.sync.start()
    # Flaky was retried (2 s backoff) because it was whitelisted on the class.
    assert events == ["before", "body@0", "body@30", "body@32", "after"]
    # Each instance owns a copy: removing the type on it leaves the class alone.
    assert cog.sync.remove_exception_type(Flaky) is True
    assert Cog().sync.remove_exception_type(Flaky) is True


@virtual_time()
async def test_status_reports_the_loop_state() -> None:
    printer = loop(seconds=10)(nothing)
    assert printer.status().state is State.IDLE
    task = printer.start()
    await asyncio.sleep(5)
    status = printer.status()
    assert status.state is State.SLEEPING
    assert status.current_loop == 1
    assert status.next_iteration == DEFAULT_START + dt.timedelta(seconds=10)
    printer.stop()
    await task
    assert printer.status().state is State.STOPPED


def test_stop_and_cancel_on_a_loop_that_never_ran_do_nothing_but_count_dead_letters() -> None:
    printer = loop(seconds=10)(nothing)
    printer.stop()  # discord.ext.tasks ignores these too; here they are also counted
    printer.cancel()
    assert printer.is_running() is False
    assert printer.get_task() is None
    assert dead_letters.count == 2


@virtual_time()
async def test_cancelling_the_task_returned_by_start_is_like_cancel() -> None:
    observed: list[tuple[bool, bool]] = []
    printer = loop(seconds=10)(nothing)

    @printer.after_loop
    async def after() -> None:
        await asyncio.sleep(1)  # after_loop may still await
        observed.append((printer.is_being_cancelled(), printer.failed()))

    task = printer.start()
    await asyncio.sleep(5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert observed == [(True, False)]
    assert printer.status().state is State.CANCELLED


@virtual_time()
async def test_an_error_raised_by_the_error_handler_is_escalated_not_swallowed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="supervised_loops")

    @loop(seconds=10)
    async def job() -> None:
        raise KeyError("original")

    @job.error
    async def clumsy(error: BaseException) -> None:
        raise RuntimeError("handler broke")

    with pytest.raises(RuntimeError, match="handler broke") as raised:
        await job.start()
    assert isinstance(raised.value.__context__, KeyError)  # the original stays reachable
    assert job.failed() is True
    assert [r.getMessage() for r in caplog.records] == ["error handler of loop 'job' raised"]


@virtual_time()
async def test_change_interval_on_one_instance_leaves_the_class_and_other_instances_alone() -> None:
    class Cog:
        @loop(seconds=10)
        async def printer(self) -> None:
            pass

    one, two = Cog(), Cog()
    one.printer.change_interval(minutes=1)
    assert (one.printer.seconds, one.printer.minutes) == (0.0, 1.0)
    assert (two.printer.seconds, two.printer.minutes) == (10.0, 0.0)
    assert (Cog.printer.seconds, Cog.printer.minutes) == (10.0, 0.0)


def test_coro_and_reconnect_are_read_only_attributes_as_in_discord_ext_tasks() -> None:
    async def work() -> None:
        pass

    job = loop(seconds=1, reconnect=False)(work)
    assert job.coro is work
    assert job.reconnect is False
    assert loop(seconds=1)(work).reconnect is True
    with pytest.raises(AttributeError):
        job.coro = work  # type: ignore[misc]


def test_a_loop_refuses_a_schedule_without_next_after_when_it_is_built() -> None:
    async def work() -> None:
        pass

    with pytest.raises(
        TypeError, match=r"^'schedule' must be an object with a next_after\(moment\) method"
    ):
        Loop(work, schedule=42)  # type: ignore[arg-type]


async def test_a_method_loop_taken_from_the_class_is_refused_with_a_clear_error() -> None:
    class Cog:
        @loop(seconds=1)
        async def printer(self) -> None:
            pass

    with pytest.raises(TypeError, match=r"^loop 'printer' is a method's: start or supervise an"):
        Cog.printer.start()
    assert not Cog.printer.is_running()
    cog = Cog()
    cog.printer.start()  # an instance's loop is fine
    cog.printer.cancel()
