"""Lifecycle events of a Loop, and the subscriptions that carry them.

Everything runs in virtual time from ``START``, so every event's ``at`` is
exact: it is ``START`` plus the virtual seconds elapsed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import pytest

from supervised_loops import ExponentialBackoff, Pause, Stop, loop
from supervised_loops.events import (
    ActorEnded,
    ActorFailed,
    ActorStarted,
    DeadLetter,
    Event,
    EventHub,
    EventsDropped,
    IterationFailed,
    RetryScheduled,
    Subscription,
)
from supervised_loops.loops import iteration as _loop_iteration

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def at(seconds: float) -> dt.datetime:
    return START + dt.timedelta(seconds=seconds)


async def pending(subscription: Subscription) -> list[Event]:
    """Close a subscription and return what it still holds (a closed one never waits)."""
    subscription.close()
    return [event async for event in subscription]


# -- the order of a loop's events --------------------------------------------------


@pytest.mark.virtual_time(start=START)
async def test_events_follow_the_run_started_failed_retry_scheduled_failed() -> None:
    calls = 0
    handled: list[str] = []

    @loop(seconds=10, backoff=ExponentialBackoff(jitter=False))
    async def work() -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise OSError("reset")
        if calls == 4:
            raise ValueError("bad")

    @work.error
    async def on_error(error: BaseException) -> None:
        handled.append(repr(error))

    subscription = work.events()
    work.start()
    await asyncio.sleep(100)

    # 0 s: ok; 10 s: OSError, retried 2 s later; 12 s: ok; 20 s: ValueError, fails.
    assert await pending(subscription) == [
        ActorStarted(path="work", at=at(0)),
        IterationFailed(path="work", at=at(10), iteration=1, error="OSError: reset", retried=True),
        RetryScheduled(path="work", at=at(10), iteration=1, attempt=1, delay=2.0),
        IterationFailed(
            path="work", at=at(20), iteration=2, error="ValueError: bad", retried=False
        ),
        ActorFailed(path="work", at=at(20), error="ValueError: bad"),
    ]
    assert handled == ["ValueError('bad')"]


@pytest.mark.virtual_time(start=START)
async def test_successful_iterations_publish_no_event() -> None:
    @loop(seconds=1)
    async def tick() -> None:
        pass

    subscription = tick.events()
    tick.start()
    await asyncio.sleep(4.5)
    await tick.ask(Stop())

    assert tick.current_loop == 5
    assert await pending(subscription) == [
        ActorStarted(path="tick", at=at(0)),
        ActorEnded(path="tick", at=at(4.5), cancelled=False),
    ]


@pytest.mark.virtual_time(start=START)
async def test_stop_while_waiting_to_retry_publishes_stopped_after_the_retry_scheduled() -> None:
    @loop(seconds=60, backoff=ExponentialBackoff(jitter=False))
    async def flaky() -> None:
        raise ConnectionError("refused")

    subscription = flaky.events()
    flaky.start()
    await asyncio.sleep(1)  # the retry is due at 2 s
    await flaky.ask(Stop())

    assert await pending(subscription) == [
        ActorStarted(path="flaky", at=at(0)),
        IterationFailed(
            path="flaky", at=at(0), iteration=0, error="ConnectionError: refused", retried=True
        ),
        RetryScheduled(path="flaky", at=at(0), iteration=0, attempt=1, delay=2.0),
        ActorEnded(path="flaky", at=at(1), cancelled=False),
    ]


@pytest.mark.virtual_time(start=START)
async def test_retries_count_attempts_until_max_consecutive_failures_escalates() -> None:
    @loop(seconds=100, backoff=ExponentialBackoff(jitter=False), max_consecutive_failures=2)
    async def flaky() -> None:
        raise TimeoutError("slow")

    @flaky.error
    async def on_error(error: BaseException) -> None:
        pass

    subscription = flaky.events()
    flaky.start()
    await asyncio.sleep(50)

    # Windows 2 s then 4 s (no jitter); the third failure is not retried.
    assert await pending(subscription) == [
        ActorStarted(path="flaky", at=at(0)),
        IterationFailed(
            path="flaky", at=at(0), iteration=0, error="TimeoutError: slow", retried=True
        ),
        RetryScheduled(path="flaky", at=at(0), iteration=0, attempt=1, delay=2.0),
        IterationFailed(
            path="flaky", at=at(2), iteration=0, error="TimeoutError: slow", retried=True
        ),
        RetryScheduled(path="flaky", at=at(2), iteration=0, attempt=2, delay=4.0),
        IterationFailed(
            path="flaky", at=at(6), iteration=0, error="TimeoutError: slow", retried=False
        ),
        ActorFailed(path="flaky", at=at(6), error="TimeoutError: slow"),
    ]


@pytest.mark.virtual_time(start=START)
async def test_cancel_publishes_stopped_with_cancelled_true() -> None:
    @loop(hours=1)
    async def hourly() -> None:
        pass

    subscription = hourly.events()
    hourly.start()
    await asyncio.sleep(30)
    hourly.cancel()
    await asyncio.sleep(0)
    await asyncio.wait((hourly.get_task(),))  # type: ignore[arg-type]

    assert await pending(subscription) == [
        ActorStarted(path="hourly", at=at(0)),
        ActorEnded(path="hourly", at=at(30), cancelled=True),
    ]


@pytest.mark.virtual_time(start=START)
async def test_restart_publishes_the_cancelled_stop_of_the_old_run_then_a_new_start() -> None:
    @loop(seconds=5)
    async def work() -> None:
        pass

    subscription = work.events()
    work.start()
    await asyncio.sleep(7)
    work.restart()
    await asyncio.sleep(1)

    assert await pending(subscription) == [
        ActorStarted(path="work", at=at(0)),
        ActorEnded(path="work", at=at(7), cancelled=True),
        ActorStarted(path="work", at=at(7)),
    ]


@pytest.mark.virtual_time(start=START)
async def test_before_loop_failure_publishes_failed_without_an_iteration_event() -> None:
    @loop(seconds=5)
    async def work() -> None:
        pass

    @work.before_loop
    async def prepare() -> None:
        await asyncio.sleep(3)
        raise RuntimeError("no database")

    @work.error
    async def on_error(error: BaseException) -> None:
        pass

    subscription = work.events()
    work.start()
    await asyncio.sleep(10)

    assert work.failed()
    assert await pending(subscription) == [
        ActorStarted(path="work", at=at(0)),
        ActorFailed(path="work", at=at(3), error="RuntimeError: no database"),
    ]


@pytest.mark.virtual_time(start=START)
async def test_a_cancelled_error_nobody_asked_for_publishes_failed() -> None:
    @loop(seconds=5)
    async def work() -> None:
        raise asyncio.CancelledError

    @work.error
    async def on_error(error: BaseException) -> None:
        pass

    subscription = work.events()
    work.start()
    await asyncio.sleep(1)

    assert await pending(subscription) == [
        ActorStarted(path="work", at=at(0)),
        ActorFailed(path="work", at=at(0), error="CancelledError"),
    ]


@pytest.mark.virtual_time(start=START)
async def test_subscription_outlives_a_run_and_sees_the_next_start() -> None:
    @loop(seconds=5, count=1)
    async def once() -> None:
        pass

    subscription = once.events()
    once.start()
    await asyncio.sleep(2)
    once.start()
    await asyncio.sleep(2)

    assert await pending(subscription) == [
        ActorStarted(path="once", at=at(0)),
        ActorEnded(path="once", at=at(0), cancelled=False),
        ActorStarted(path="once", at=at(2)),
        ActorEnded(path="once", at=at(2), cancelled=False),
    ]


@pytest.mark.virtual_time(start=START)
async def test_message_to_a_loop_that_is_not_running_publishes_a_dead_letter() -> None:
    @loop(seconds=5)
    async def idle() -> None:
        pass

    subscription = idle.events()
    await asyncio.sleep(4)
    idle.tell(Pause())

    assert await pending(subscription) == [
        DeadLetter(path="idle", at=at(4), message="Pause()", reason="not running"),
    ]


@pytest.mark.virtual_time(start=START)
async def test_a_subscription_sees_only_events_published_after_it_was_opened() -> None:
    @loop(seconds=5)
    async def idle() -> None:
        pass

    early = idle.events()
    idle.tell(Pause())
    late = idle.events()
    idle.tell(Stop())

    assert [type(event) for event in await pending(early)] == [DeadLetter, DeadLetter]
    assert await pending(late) == [
        DeadLetter(path="idle", at=at(0), message="Stop()", reason="not running"),
    ]


# -- per-instance loops ----------------------------------------------------------------


class Cog:
    def __init__(self) -> None:
        self.runs = 0

    @loop(seconds=10, count=1)
    async def printer(self) -> None:
        self.runs += 1


@pytest.mark.virtual_time(start=START)
async def test_each_instance_loop_has_its_own_event_subscribers() -> None:
    first, second = Cog(), Cog()
    subscription = first.printer.events()
    second.printer.start()
    await asyncio.sleep(1)
    first.printer.start()
    await asyncio.sleep(1)

    assert (first.runs, second.runs) == (1, 1)
    assert await pending(subscription) == [
        ActorStarted(path="printer", at=at(1)),
        ActorEnded(path="printer", at=at(1), cancelled=False),
    ]


# -- slow subscribers ---------------------------------------------------------------------


@pytest.mark.virtual_time(start=START)
async def test_a_full_subscription_drops_the_oldest_and_reports_the_count_once() -> None:
    @loop(seconds=5)
    async def idle() -> None:
        pass

    subscription = idle.events(max_pending=2)
    for second in range(5):
        idle.tell(Pause())
        await asyncio.sleep(1)
        del second

    assert subscription.dropped == 3
    assert await anext(subscription) == EventsDropped(path="idle", at=at(3), count=3)
    assert await anext(subscription) == DeadLetter(
        path="idle", at=at(3), message="Pause()", reason="not running"
    )
    assert await anext(subscription) == DeadLetter(
        path="idle", at=at(4), message="Pause()", reason="not running"
    )
    # The loss was reported: new events come without a new marker...
    idle.tell(Stop())
    assert await anext(subscription) == DeadLetter(
        path="idle", at=at(5), message="Stop()", reason="not running"
    )
    # ... until the next overflow, which is counted from zero in its marker.
    for _ in range(3):
        idle.tell(Stop())
    assert await anext(subscription) == EventsDropped(path="idle", at=at(5), count=1)
    assert subscription.dropped == 4


@pytest.mark.virtual_time(start=START)
async def test_a_subscriber_that_never_reads_does_not_slow_the_loop() -> None:
    @loop(seconds=10, backoff=ExponentialBackoff(jitter=False, cap=2.0))
    async def flaky() -> None:
        raise OSError("down")

    stuck = flaky.events(max_pending=1)
    flaky.start()
    await asyncio.sleep(9)
    await flaky.ask(Stop())

    # Failures at 0, 2, 4, 6, 8 s: 1 start + 5 × 2 events + 1 stop = 12 published.
    assert stuck.dropped == 11
    assert await pending(stuck) == [
        EventsDropped(path="flaky", at=at(9), count=11),
        ActorEnded(path="flaky", at=at(9), cancelled=False),
    ]


@pytest.mark.virtual_time(start=START)
async def test_many_subscribers_each_receive_every_event_and_drop_independently() -> None:
    @loop(seconds=5)
    async def idle() -> None:
        pass

    readers = [idle.events() for _ in range(50)]
    slow = idle.events(max_pending=1)
    for _ in range(3):
        idle.tell(Pause())

    expected = [DeadLetter(path="idle", at=at(0), message="Pause()", reason="not running")] * 3
    for reader in readers:
        assert await pending(reader) == expected
        assert reader.dropped == 0
    assert slow.dropped == 2
    assert await pending(slow) == [EventsDropped(path="idle", at=at(0), count=2), expected[0]]


def test_max_pending_must_be_a_positive_int() -> None:
    @loop(seconds=5)
    async def idle() -> None:
        pass

    with pytest.raises(ValueError, match=r"^'max_pending' must be > 0 \(got 0\)$"):
        idle.events(max_pending=0)
    with pytest.raises(TypeError, match=r"^'max_pending' must be an int \(got True\)$"):
        idle.events(max_pending=True)


# -- closing --------------------------------------------------------------------------------


@pytest.mark.virtual_time(start=START)
async def test_closed_subscription_yields_what_it_holds_then_ends_and_receives_nothing_new() -> (
    None
):
    @loop(seconds=5)
    async def idle() -> None:
        pass

    subscription = idle.events()
    idle.tell(Pause())
    subscription.close()
    idle.tell(Stop())

    assert [event async for event in subscription] == [
        DeadLetter(path="idle", at=at(0), message="Pause()", reason="not running")
    ]
    with pytest.raises(StopAsyncIteration):
        await anext(subscription)


@pytest.mark.virtual_time(start=START)
async def test_close_wakes_a_consumer_waiting_for_the_next_event() -> None:
    hub = EventHub()
    subscription = hub.subscribe()
    waiting = asyncio.ensure_future(anext(subscription))
    await asyncio.sleep(0)
    subscription.close()

    with pytest.raises(StopAsyncIteration):
        await waiting
    assert not hub  # unsubscribed: publishing finds nobody


@pytest.mark.virtual_time(start=START)
async def test_async_with_closes_the_subscription_on_exit() -> None:
    hub = EventHub()
    async with hub.subscribe() as subscription:
        assert hub
    assert not hub
    hub.publish(ActorStarted(path="x", at=START))
    assert [event async for event in subscription] == []


@pytest.mark.virtual_time(start=START)
async def test_cancelling_a_pending_read_loses_no_event() -> None:
    hub = EventHub()
    subscription = hub.subscribe()
    waiting = asyncio.ensure_future(anext(subscription))
    await asyncio.sleep(0)
    waiting.cancel()
    await asyncio.wait((waiting,))
    hub.publish(ActorStarted(path="x", at=START))

    assert waiting.cancelled()
    assert await anext(subscription) == ActorStarted(path="x", at=START)


@pytest.mark.virtual_time(start=START)
async def test_closing_twice_and_hub_close_end_every_subscription() -> None:
    hub = EventHub()
    first, second = hub.subscribe(), hub.subscribe()
    first.close()
    first.close()
    hub.close()

    assert not hub
    assert await pending(first) == []
    assert await pending(second) == []


# -- the cost of events on the hot path ------------------------------------------------------


def _timed_run(kind: str, subscriber: bool, iterations: int) -> tuple[float, int]:
    """Run a loop for real; return (µs per iteration, events its subscriber got)."""
    calls = 0

    @loop(
        seconds=0, count=iterations, backoff=ExponentialBackoff(base=1e-9, cap=1e-9, jitter=False)
    )
    async def body() -> None:
        nonlocal calls
        calls += 1
        if kind == "failure" and calls % 2:
            raise OSError("flaky")  # retried at once: one failure per iteration

    async def main() -> tuple[float, int]:
        subscription = body.events(max_pending=10 * iterations) if subscriber else None
        started = time.perf_counter()
        await body.start()
        elapsed = time.perf_counter() - started
        if subscription is None:
            return elapsed, 0
        return elapsed, len(await pending(subscription))

    elapsed, received = asyncio.run(main())
    return elapsed / iterations * 1e6, received


def test_success_publishes_nothing_and_without_subscribers_no_event_is_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Events stay off the hot path; prints the measured cost (run with -s to see it).

    A successful iteration is not an event, so its cost does not depend on
    subscribers. A failure pays a walk up the tree (``_has_listeners``) and,
    only when someone listens, builds and publishes two events.
    """
    built: list[str] = []
    for name in ("IterationFailed", "RetryScheduled"):
        real = getattr(_loop_iteration, name)

        def counting(
            *args: object, _real: type = real, _name: str = name, **kwargs: object
        ) -> object:
            built.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(_loop_iteration, name, counting)

    iterations = 2000
    _timed_run("success", False, iterations)  # warm-up, not measured
    cost = {}
    for kind in ("success", "failure"):
        for subscriber in (False, True):
            built.clear()
            cost[kind, subscriber], received = _timed_run(kind, subscriber, iterations)
            failures = iterations if kind == "failure" else 0
            assert len(built) == (2 * failures if subscriber else 0)
            assert received == (2 + 2 * failures if subscriber else 0)  # + start and stop
    print()
    for (kind, subscriber), microseconds in cost.items():
        print(f"{kind:7} iteration, subscriber={subscriber!s:5}: {microseconds:6.2f} µs")


@pytest.mark.virtual_time
async def test_a_second_concurrent_reader_of_one_subscription_is_refused_not_left_hanging() -> None:
    @loop(hours=1)
    async def job() -> None:
        pass

    subscription = job.events()
    first = asyncio.ensure_future(subscription.__anext__())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="one reader at a time"):
        await subscription.__anext__()
    job.start()
    assert isinstance(await first, ActorStarted)
    job.cancel()
    subscription.close()
