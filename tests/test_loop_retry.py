"""Failures in a Loop: retry with backoff, retry rules, escalation.

The rules: docs/loops.md, "Retry rules and backoff" and "Failure rules".

All in virtual time. ``ExponentialBackoff(jitter=False)`` makes every delay
the exact window (2, 4, 8, ... seconds), so the instants at which a body is
retried are asserted exactly; ``loop_time()`` is the event loop's virtual
monotonic clock, 0.0 at the start of each test.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from supervised_loops import ExponentialBackoff, Loop, RetryRule, State, loop
from supervised_loops.events import ActorFailed, Event, IterationFailed, RetryScheduled
from supervised_loops.testing import VirtualClock, virtual_time

EXACT = ExponentialBackoff(jitter=False)
START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def loop_time() -> float:
    """The running event loop's monotonic clock (virtual seconds)."""
    return asyncio.get_running_loop().time()


class HTTPError(Exception):
    """An HTTP-like error: a status code and, for 429/503, a Retry-After."""

    def __init__(self, status: int, retry_after: float | None = None) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.retry_after = retry_after


def server_error(error: BaseException) -> bool:
    return isinstance(error, HTTPError) and error.status in (502, 503)


def outcomes(*results: BaseException | None) -> Iterator[BaseException | None]:
    """The scripted result of each call of a body: an error to raise, or None for success."""
    return iter(results)


def gaps(instants: list[float]) -> list[float]:
    return [later - earlier for earlier, later in itertools.pairwise(instants)]


async def drain(subscription: Any) -> list[Event]:
    """Everything a subscription has received so far."""
    subscription.close()
    return [event async for event in subscription]


def scripted(script: Iterator[BaseException | None], calls: list[float], **options: Any) -> Loop:
    """A loop whose n-th call notes its time in ``calls``, then raises the n-th
    error of ``script`` (None: it succeeds)."""

    @loop(**options)
    async def fetch() -> None:
        calls.append(loop_time())
        failure = next(script)
        if failure is not None:
            raise failure

    return fetch


async def retry_delays(script: Iterator[BaseException | None], **options: Any) -> list[float]:
    """Run a scripted loop to its end; the retry delays it chose."""
    fetch = scripted(script, [], **options)
    subscription = fetch.events()
    await fetch.start()
    events = await drain(subscription)
    return [event.delay for event in events if isinstance(event, RetryScheduled)]


# --------------------------------------------------------------------------
# The whitelist: retried with exponential backoff.


@pytest.mark.parametrize(
    "error",
    [
        OSError("disk hiccup"),
        ConnectionError("reset by peer"),
        ConnectionResetError("reset"),
        TimeoutError("timed out"),  # also what asyncio raises on a timeout
    ],
    ids=["OSError", "ConnectionError", "ConnectionResetError", "TimeoutError"],
)
@virtual_time()
async def test_whitelisted_error_is_retried_after_2_4_8_16_seconds_without_advancing(
    error: BaseException,
) -> None:
    calls: list[tuple[float, int]] = []
    script = outcomes(error, error, error, error, None)

    @loop(hours=1, count=1, backoff=EXACT)
    async def fetch() -> None:
        calls.append((loop_time(), fetch.current_loop))
        failure = next(script)
        if failure is not None:
            raise failure

    await fetch.start()

    assert calls == [(0.0, 0), (2.0, 0), (6.0, 0), (14.0, 0), (30.0, 0)]
    assert fetch.current_loop == 1
    assert not fetch.failed()


@virtual_time()
async def test_retry_delay_counts_from_the_failure_not_from_the_start_of_the_body() -> None:
    calls: list[float] = []
    script = outcomes(ConnectionError("a"), ConnectionError("b"), None)

    @loop(hours=1, count=1, backoff=EXACT)
    async def fetch() -> None:
        calls.append(loop_time())
        await asyncio.sleep(1)
        failure = next(script)
        if failure is not None:
            raise failure

    await fetch.start()

    assert calls == [0.0, 3.0, 8.0]  # failed at 1 -> +2; failed at 4 -> +4


@virtual_time()
async def test_backoff_window_stops_doubling_at_the_cap() -> None:
    calls: list[float] = []

    @loop(hours=3, count=1, backoff=EXACT)
    async def fetch() -> None:
        calls.append(loop_time())
        if len(calls) <= 13:
            raise ConnectionError("down")

    await fetch.start()

    doubling = [2.0**k for k in range(1, 11)]  # 2 ... 1024
    assert gaps(calls) == [*doubling, 1024.0, 1024.0, 1024.0]


@virtual_time()
async def test_backoff_base_and_cap_set_the_exact_delays() -> None:
    calls: list[float] = []

    @loop(hours=1, count=1, backoff=ExponentialBackoff(base=0.5, cap=5.0, jitter=False))
    async def fetch() -> None:
        calls.append(loop_time())
        if len(calls) <= 5:
            raise TimeoutError

    await fetch.start()

    assert gaps(calls) == [1.0, 2.0, 4.0, 5.0, 5.0]


@virtual_time()
async def test_default_backoff_is_discord_compatible_full_jitter_within_doubling_windows() -> None:
    # No backoff given: uniform(0, 2**min(k, 10)) for the k-th retry. A
    # back-to-back loop (interval 0) leaves the delays uncut by any tick.
    calls: list[float] = []

    @loop(seconds=0, count=1)
    async def fetch() -> None:
        calls.append(loop_time())
        if len(calls) <= 12:
            raise ConnectionError("down")

    await fetch.start()

    delays = gaps(calls)
    windows = [float(min(2**k, 1024)) for k in range(1, 13)]
    assert len(delays) == 12
    assert all(0.0 <= delay <= window for delay, window in zip(delays, windows, strict=True))
    assert delays != windows  # jittered, not the exact windows


@virtual_time()
async def test_zero_interval_loop_still_backs_off_instead_of_retrying_back_to_back() -> None:
    calls: list[float] = []

    @loop(seconds=0, count=2, backoff=EXACT)
    async def drain_queue() -> None:
        calls.append(loop_time())
        if len(calls) <= 4:
            raise ConnectionError("broker down")

    await drain_queue.start()

    assert calls == [0.0, 2.0, 6.0, 14.0, 30.0, 30.0]


@virtual_time()
async def test_reconnect_false_escalates_a_whitelisted_error_at_once() -> None:
    calls = 0
    handled: list[BaseException] = []
    error = ConnectionError("reset")

    @loop(seconds=10, reconnect=False, backoff=EXACT)
    async def fetch() -> None:
        nonlocal calls
        calls += 1
        raise error

    @fetch.error
    async def on_error(exc: BaseException) -> None:
        handled.append(exc)

    task = fetch.start()
    with pytest.raises(ConnectionError) as raised:
        await task

    assert raised.value is error
    assert calls == 1
    assert handled == [error]
    assert fetch.failed()


@virtual_time()
async def test_add_exception_type_makes_a_custom_error_transient() -> None:
    class Flaky(Exception):
        pass

    calls: list[float] = []

    @loop(hours=1, count=1, backoff=EXACT)
    async def fetch() -> None:
        calls.append(loop_time())
        if len(calls) <= 2:
            raise Flaky("again")

    fetch.add_exception_type(Flaky)
    await fetch.start()

    assert calls == [0.0, 2.0, 6.0]
    assert not fetch.failed()


@virtual_time()
async def test_clear_exception_types_makes_os_errors_escalate() -> None:
    calls = 0

    @loop(hours=1, backoff=EXACT)
    async def fetch() -> None:
        nonlocal calls
        calls += 1
        raise OSError("disk")

    fetch.clear_exception_types()
    task = fetch.start()
    with pytest.raises(OSError, match=r"^disk$"):
        await task

    assert calls == 1
    assert fetch.failed()


@virtual_time()
async def test_remove_exception_type_stops_retrying_that_type_only() -> None:
    calls: list[str] = []
    script = outcomes(TimeoutError("slow"), ConnectionError("reset"))

    @loop(hours=1, backoff=EXACT)
    async def fetch() -> None:
        failure = next(script)
        calls.append(type(failure).__name__)
        assert failure is not None
        raise failure

    assert fetch.remove_exception_type(OSError) is True
    assert fetch.remove_exception_type(OSError) is False  # no longer there
    task = fetch.start()
    with pytest.raises(ConnectionError, match=r"^reset$"):
        await task

    # TimeoutError is still listed on its own; ConnectionError was only
    # covered by OSError.
    assert calls == ["TimeoutError", "ConnectionError"]


def test_keyboard_interrupt_cannot_be_added_as_an_exception_type() -> None:
    @loop(seconds=1)
    async def fetch() -> None:
        pass

    with pytest.raises(ValueError, match="must be retryable: not KeyboardInterrupt"):
        fetch.add_exception_type(KeyboardInterrupt)


# --------------------------------------------------------------------------
# Retry rules: class plus predicate, each with its own backoff.


@virtual_time()
async def test_retry_rule_with_predicate_retries_502_and_503_with_its_own_backoff() -> None:
    calls: list[float] = []
    script = outcomes(HTTPError(502), HTTPError(503), HTTPError(502), None)
    rule = RetryRule(HTTPError, when=server_error, backoff=ExponentialBackoff(3, jitter=False))

    fetch = scripted(script, calls, hours=1, count=1, retry=[rule])

    await fetch.start()

    assert calls == [0.0, 6.0, 18.0, 42.0]  # 6, 12, 24: base 3
    assert not fetch.failed()


@virtual_time()
async def test_retry_rule_predicate_false_escalates_a_404() -> None:
    calls = 0
    handled: list[BaseException] = []
    not_found = HTTPError(404)

    @loop(hours=1, retry=[RetryRule(HTTPError, when=server_error, backoff=EXACT)])
    async def fetch() -> None:
        nonlocal calls
        calls += 1
        raise not_found

    @fetch.error
    async def on_error(exc: BaseException) -> None:
        handled.append(exc)

    task = fetch.start()
    with pytest.raises(HTTPError, match=r"^HTTP 404$"):
        await task

    assert calls == 1
    assert handled == [not_found]
    assert fetch.failed()


@virtual_time()
async def test_add_retry_rule_gives_each_rule_its_own_backoff_and_attempt_count() -> None:
    calls: list[float] = []
    script = outcomes(
        HTTPError(502), ConnectionError("a"), HTTPError(503), ConnectionError("b"), None
    )

    fetch = scripted(script, calls, hours=1, count=1, backoff=EXACT)

    fetch.add_retry_rule(
        RetryRule(HTTPError, when=server_error, backoff=ExponentialBackoff(0.5, jitter=False))
    )
    await fetch.start()

    # 502: rule attempt 1 -> 1 s; ConnectionError: whitelist attempt 1 -> 2 s;
    # 503: rule attempt 2 -> 2 s; ConnectionError: whitelist attempt 2 -> 4 s.
    assert gaps(calls) == [1.0, 2.0, 2.0, 4.0]


@virtual_time()
async def test_retry_rules_match_before_the_whitelist() -> None:
    calls: list[float] = []

    fast = RetryRule(ConnectionError, backoff=ExponentialBackoff(0.25, jitter=False))

    @loop(hours=1, count=1, backoff=EXACT, retry=[fast])
    async def fetch() -> None:
        calls.append(loop_time())
        if len(calls) <= 2:
            raise ConnectionError("reset")

    await fetch.start()

    assert gaps(calls) == [0.5, 1.0]  # the rule's backoff, not the loop's 2, 4


@virtual_time()
async def test_retry_after_is_honoured_as_a_floor_even_beyond_the_next_tick() -> None:
    calls: list[tuple[float, int]] = []
    script = outcomes(HTTPError(503, retry_after=35), None, None)

    @loop(seconds=10, count=2, retry=[RetryRule(HTTPError, when=server_error, backoff=EXACT)])
    async def fetch() -> None:
        calls.append((loop_time(), fetch.current_loop))
        failure = next(script)
        if failure is not None:
            raise failure

    await fetch.start()

    # The server said 35 s: later than the ticks at 10, 20 and 30, which the
    # retry runs in place of (no burst of three catch-up runs after it).
    assert calls == [(0.0, 0), (35.0, 0), (40.0, 1)]


@virtual_time()
async def test_retry_after_shorter_than_the_backoff_does_not_shorten_it() -> None:
    calls: list[float] = []
    script = outcomes(HTTPError(503, retry_after=0.5), None)

    fetch = scripted(script, calls, hours=1, count=1, retry=[RetryRule(HTTPError, backoff=EXACT)])

    await fetch.start()

    assert calls == [0.0, 2.0]


@virtual_time()
async def test_retry_after_is_ignored_when_the_rule_says_so() -> None:
    calls: list[float] = []
    script = outcomes(HTTPError(503, retry_after=600), None)
    rule = RetryRule(HTTPError, backoff=EXACT, honour_retry_after=False)

    fetch = scripted(script, calls, hours=1, count=1, retry=[rule])

    await fetch.start()

    assert calls == [0.0, 2.0]


# --------------------------------------------------------------------------
# Schedule-aware backoff.


@virtual_time()
async def test_retry_never_runs_later_than_the_next_regular_tick() -> None:
    calls: list[tuple[float, int]] = []

    @loop(seconds=10, count=2, backoff=EXACT)
    async def fetch() -> None:
        calls.append((loop_time(), fetch.current_loop))
        if len(calls) <= 5:
            raise ConnectionError("down")

    await fetch.start()

    # Backoff 2, 4, then 8 is cut to the tick at 10; after that each retry
    # waits for the next tick (16 would pass 20, 32 would pass 30): never a
    # zero delay, never later than the schedule would run the body anyway.
    assert calls == [(0.0, 0), (2.0, 0), (6.0, 0), (10.0, 0), (20.0, 0), (30.0, 0), (40.0, 1)]


@virtual_time()
async def test_retry_capped_at_the_next_tick_runs_in_its_place_without_a_second_run() -> None:
    calls: list[tuple[float, int]] = []

    @loop(seconds=10, count=3, backoff=ExponentialBackoff(base=100, jitter=False))
    async def fetch() -> None:
        calls.append((loop_time(), fetch.current_loop))
        if len(calls) == 1:
            raise ConnectionError("down")

    await fetch.start()

    # The retry at 10 is the run of tick 10; the next run is at 20, not at 10 again.
    assert calls == [(0.0, 0), (10.0, 0), (20.0, 1), (30.0, 2)]


@virtual_time()
async def test_cap_at_next_tick_false_lets_the_backoff_run_past_the_ticks() -> None:
    calls: list[float] = []
    rule = RetryRule(ConnectionError, backoff=EXACT, cap_at_next_tick=False)

    @loop(seconds=10, count=2, retry=[rule])
    async def fetch() -> None:
        calls.append(loop_time())
        if len(calls) <= 4:
            raise ConnectionError("down")

    await fetch.start()

    # 2, 4, 8, 16 uncut; the retry at 30 stands for the ticks it passed.
    assert calls == [0.0, 2.0, 6.0, 14.0, 30.0, 40.0]


@virtual_time(start=START)
async def test_time_loop_retry_capped_at_the_next_slot_runs_that_slot_once(
    clock: VirtualClock,
) -> None:
    walls: list[tuple[dt.datetime, int]] = []
    # A 10 h window, cut to the 17:00 slot.
    slow = ExponentialBackoff(base=5 * 3600, cap=86_400, jitter=False)

    @loop(time=[dt.time(9, 0), dt.time(17, 0)], count=3, backoff=slow)
    async def report() -> None:
        walls.append((clock.wall(), report.current_loop))
        if len(walls) == 1:
            raise ConnectionError("mail server down")

    await report.start()

    assert walls == [
        (dt.datetime(2026, 1, 1, 9, 0, tzinfo=dt.UTC), 0),
        (dt.datetime(2026, 1, 1, 17, 0, tzinfo=dt.UTC), 0),  # the retry, in the 17:00 slot
        (dt.datetime(2026, 1, 2, 9, 0, tzinfo=dt.UTC), 1),  # not 17:00 a second time
        (dt.datetime(2026, 1, 2, 17, 0, tzinfo=dt.UTC), 2),
    ]


@virtual_time()
async def test_exponent_resets_after_reset_after_successes_successful_iterations() -> None:
    failure = ConnectionError("blip")
    script = outcomes(failure, failure, None, failure, None, None, failure, None)
    policy = ExponentialBackoff(jitter=False, reset_after=None, reset_after_successes=2)
    # One success between failures is not enough (8, not 2); two are.
    assert await retry_delays(script, hours=1, count=4, backoff=policy) == [2.0, 4.0, 8.0, 2.0]


@virtual_time()
async def test_exponent_resets_after_one_success_by_default() -> None:
    script = outcomes(ConnectionError("a"), ConnectionError("b"), None, ConnectionError("c"), None)
    assert await retry_delays(script, hours=1, count=2, backoff=EXACT) == [2, 4, 2]


@virtual_time()
async def test_exponent_resets_after_a_quiet_period() -> None:
    script = outcomes(
        ConnectionError("t=0"),
        None,
        ConnectionError("t=60"),  # 60 s after the last failure: attempt 2
        None,
        None,
        ConnectionError("t=180"),  # 120 s after the last failure: quiet, attempt 1
        None,
    )
    policy = ExponentialBackoff(jitter=False, reset_after=100, reset_after_successes=None)
    assert await retry_delays(script, minutes=1, count=4, backoff=policy) == [2, 4, 2]


# --------------------------------------------------------------------------
# max_consecutive_failures.


@virtual_time()
async def test_max_consecutive_failures_escalates_after_that_many_failed_retries() -> None:
    calls: list[float] = []
    handled: list[BaseException] = []
    errors: list[BaseException] = []

    @loop(hours=1, backoff=EXACT, max_consecutive_failures=3)
    async def fetch() -> None:
        calls.append(loop_time())
        errors.append(ConnectionError(f"attempt {len(calls)}"))
        raise errors[-1]

    @fetch.error
    async def on_error(exc: BaseException) -> None:
        handled.append(exc)

    task = fetch.start()
    with pytest.raises(ConnectionError, match=r"^attempt 4$"):
        await task

    assert calls == [0.0, 2.0, 6.0, 14.0]  # three retries, then the fourth failure escalates
    assert handled == [errors[-1]]
    assert fetch.failed()


@virtual_time()
async def test_max_consecutive_failures_counts_only_consecutive_failures() -> None:
    failure = ConnectionError("blip")
    script = outcomes(failure, failure, None, failure, failure, None)

    @loop(hours=1, count=2, backoff=EXACT, max_consecutive_failures=2)
    async def fetch() -> None:
        error = next(script)
        if error is not None:
            raise ConnectionError(str(error))

    await fetch.start()

    assert fetch.current_loop == 2
    assert not fetch.failed()


# --------------------------------------------------------------------------
# Escalation.


@virtual_time()
async def test_escalated_error_calls_the_handler_once_then_after_loop_then_ends_the_task() -> None:
    log: list[Any] = []
    boom = ValueError("bad data")

    @loop(seconds=10, backoff=EXACT)
    async def process() -> None:
        log.append(("body", process.current_loop))
        if process.current_loop == 2:
            raise boom

    @process.error
    async def on_error(exc: BaseException) -> None:
        log.append(("error", exc, process.failed()))

    @process.after_loop
    async def teardown() -> None:
        log.append(("after", process.failed(), process.is_being_cancelled()))

    task = process.start()
    with pytest.raises(ValueError, match=r"^bad data$") as raised:
        await task

    assert raised.value is boom
    assert log == [
        ("body", 0),
        ("body", 1),
        ("body", 2),
        ("error", boom, True),
        ("after", True, False),
    ]
    assert loop_time() == 20.0  # not retried
    assert process.failed()
    assert not process.is_running()
    assert process.status().state is State.FAILED


@virtual_time()
async def test_default_error_handler_logs_the_error_with_its_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    boom = KeyError("missing")

    @loop(seconds=10)
    async def process() -> None:
        raise boom

    task = process.start()
    with caplog.at_level(logging.ERROR, logger="supervised_loops"), pytest.raises(KeyError):
        await task

    errors = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert len(errors) == 1
    assert errors[0].name == "supervised_loops"
    assert "'process'" in errors[0].getMessage()
    assert errors[0].exc_info is not None
    assert errors[0].exc_info[1] is boom


@virtual_time()
async def test_error_in_before_loop_is_escalated_not_swallowed() -> None:
    log: list[Any] = []
    boom = RuntimeError("no database")

    @loop(seconds=10)
    async def process() -> None:
        log.append("body")

    @process.before_loop
    async def setup() -> None:
        raise boom

    @process.error
    async def on_error(exc: BaseException) -> None:
        log.append(("error", exc))

    @process.after_loop
    async def teardown() -> None:
        log.append(("after", process.failed()))

    task = process.start()
    with pytest.raises(RuntimeError, match=r"^no database$"):
        await task

    assert log == [("error", boom), ("after", True)]
    assert process.failed()


@virtual_time()
async def test_a_whitelisted_error_in_before_loop_is_escalated_not_retried() -> None:
    calls = 0
    handled: list[BaseException] = []
    refused = ConnectionRefusedError("no database yet")

    @loop(seconds=10, backoff=EXACT)
    async def process() -> None:
        pass

    @process.before_loop
    async def setup() -> None:
        nonlocal calls
        calls += 1
        raise refused

    @process.error
    async def on_error(exc: BaseException) -> None:
        handled.append(exc)

    task = process.start()
    with pytest.raises(ConnectionRefusedError):
        await task

    assert calls == 1
    assert handled == [refused]
    assert process.current_loop == 0


@virtual_time()
async def test_error_in_after_loop_is_escalated_not_swallowed() -> None:
    handled: list[BaseException] = []
    boom = RuntimeError("flush failed")

    @loop(seconds=10, count=2)
    async def process() -> None:
        pass

    @process.after_loop
    async def teardown() -> None:
        raise boom

    @process.error
    async def on_error(exc: BaseException) -> None:
        handled.append(exc)

    task = process.start()
    with pytest.raises(RuntimeError, match=r"^flush failed$"):
        await task

    assert handled == [boom]
    assert process.failed()
    assert process.current_loop == 2


@virtual_time()
async def test_after_loop_error_after_a_body_error_is_reported_and_the_body_error_wins() -> None:
    handled: list[BaseException] = []
    body_error = ValueError("bad data")
    after_error = RuntimeError("flush failed")

    @loop(seconds=10)
    async def process() -> None:
        raise body_error

    @process.after_loop
    async def teardown() -> None:
        raise after_error

    @process.error
    async def on_error(exc: BaseException) -> None:
        handled.append(exc)

    task = process.start()
    with pytest.raises(ValueError, match=r"^bad data$"):
        await task

    assert handled == [body_error, after_error]


@virtual_time()
async def test_error_in_the_error_handler_escalates_with_the_original_as_context() -> None:
    log: list[str] = []
    original = ValueError("bad data")
    broken = RuntimeError("handler broke")

    @loop(seconds=10)
    async def process() -> None:
        raise original

    @process.error
    async def on_error(exc: BaseException) -> None:
        log.append("error")
        raise broken

    @process.after_loop
    async def teardown() -> None:
        log.append("after")

    task = process.start()
    with pytest.raises(RuntimeError, match=r"^handler broke$") as raised:
        await task

    assert raised.value is broken
    assert raised.value.__context__ is original
    assert log == ["error", "after"]
    assert process.failed()


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, SystemExit])
def test_keyboard_interrupt_and_system_exit_propagate_out_of_the_event_loop_unretried(
    interrupt: type[BaseException],
) -> None:
    calls = 0

    # Even a rule that covers BaseException never retries these.
    @loop(seconds=1, backoff=EXACT, retry=[RetryRule(BaseException, backoff=EXACT)])
    async def process() -> None:
        nonlocal calls
        calls += 1
        raise interrupt

    async def main() -> None:
        await process.start()

    with pytest.raises(interrupt):
        VirtualClock().run(main())

    assert calls == 1


# --------------------------------------------------------------------------
# Status and events.


@virtual_time()
async def test_status_counts_failures_and_keeps_the_last_error() -> None:
    script = outcomes(ConnectionError("reset #1"), ConnectionError("reset #2"), None)

    @loop(hours=1, count=1, backoff=EXACT)
    async def fetch() -> None:
        error = next(script)
        if error is not None:
            raise error

    assert fetch.status().failures == 0
    assert fetch.status().last_error is None
    await fetch.start()
    status = fetch.status()

    assert status.failures == 2
    assert status.last_error == "ConnectionError: reset #2"
    assert status.current_loop == 1
    assert status.state is State.STOPPED


@virtual_time()
async def test_status_counts_every_failure_even_when_the_same_exception_object_recurs() -> None:
    cached = ConnectionError("down")  # some clients raise one prebuilt instance
    calls = 0

    @loop(hours=1, count=1, backoff=EXACT, max_consecutive_failures=3)
    async def fetch() -> None:
        nonlocal calls
        calls += 1
        if calls <= 4:
            raise cached

    task = fetch.start()
    with pytest.raises(ConnectionError):
        await task

    assert calls == 4
    assert fetch.status().failures == 4  # three retried, the fourth escalated


@virtual_time()
async def test_status_counts_an_escalated_error_once() -> None:
    script = outcomes(ConnectionError("first"), ConnectionError("second"))

    @loop(hours=1, backoff=EXACT, max_consecutive_failures=1)
    async def fetch() -> None:
        error = next(script)
        assert error is not None
        raise error

    task = fetch.start()
    with pytest.raises(ConnectionError):
        await task
    status = fetch.status()

    assert status.failures == 2  # retried, then escalated: each error counted once
    assert status.last_error == "ConnectionError: second"
    assert status.state is State.FAILED


@virtual_time()
async def test_status_while_waiting_to_retry_shows_retrying_and_the_retry_time() -> None:
    @loop(hours=1, backoff=EXACT)
    async def fetch() -> None:
        raise ConnectionError("down")

    task = fetch.start()
    await asyncio.sleep(1)  # failed at 0, retry due at 2
    status = fetch.status()
    fetch.stop()
    await task

    assert status.state is State.RETRYING
    assert status.next_iteration == START + dt.timedelta(seconds=2)
    assert status.current_loop == 0
    assert status.failures == 1


@virtual_time(start=START)
async def test_events_carry_iteration_attempt_and_delay() -> None:
    script = outcomes(None, ConnectionError("a"), ConnectionError("b"), None)

    @loop(seconds=100, count=2, backoff=EXACT)
    async def fetch() -> None:
        error = next(script)
        if error is not None:
            raise error

    subscription = fetch.events()
    await fetch.start()
    events = await drain(subscription)

    failures = [e for e in events if isinstance(e, IterationFailed | RetryScheduled)]
    at = START + dt.timedelta(seconds=100)
    assert failures == [
        IterationFailed(path="fetch", at=at, iteration=1, error="ConnectionError: a", retried=True),
        RetryScheduled(path="fetch", at=at, iteration=1, attempt=1, delay=2.0),
        IterationFailed(
            path="fetch",
            at=at + dt.timedelta(seconds=2),
            iteration=1,
            error="ConnectionError: b",
            retried=True,
        ),
        RetryScheduled(
            path="fetch", at=at + dt.timedelta(seconds=2), iteration=1, attempt=2, delay=4.0
        ),
    ]


@virtual_time(start=START)
async def test_escalated_error_emits_iteration_failed_not_retried_then_actor_failed() -> None:
    @loop(seconds=10)
    async def process() -> None:
        raise ValueError("bad data")

    subscription = process.events()
    task = process.start()
    with pytest.raises(ValueError, match=r"^bad data$"):
        await task
    events = await drain(subscription)

    relevant = [e for e in events if isinstance(e, IterationFailed | RetryScheduled | ActorFailed)]
    assert relevant == [
        IterationFailed(
            path="process", at=START, iteration=0, error="ValueError: bad data", retried=False
        ),
        ActorFailed(path="process", at=START, error="ValueError: bad data"),
    ]
