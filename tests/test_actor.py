"""Tests for supervised_loops.actor: the mailbox, ask/tell, dead letters and events.

The actor under test is always a Loop (the only concrete actor so far); what
is checked here is the mailbox contract (docs/messages.md) every actor shares:
``tell`` never blocks nor raises, ``ask`` answers or fails clearly, user
messages are handled in order between iterations, the control lane cannot be
blocked, nothing is lost silently, and events reach subscribers in order
without slowing the actor down.

Everything except the ``tell_threadsafe`` test runs in virtual time, so the
times asserted are exact seconds after the virtual start.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import threading
from typing import Any

import pytest

from supervised_loops import (
    DEFAULT_ASK_TIMEOUT,
    Ack,
    ActorNotRunning,
    ActorStopped,
    AskTimeout,
    ChangeInterval,
    Every,
    ExponentialBackoff,
    GetStatus,
    Loop,
    MailboxFull,
    RunNow,
    State,
    Stop,
    UnhandledMessage,
    dead_letters,
    loop,
)
from supervised_loops.events import (
    ActorEnded,
    ActorFailed,
    ActorStarted,
    DeadLetter,
    Event,
    EventsDropped,
    IterationFailed,
    RetryScheduled,
    Subscription,
)
from supervised_loops.messages import Cancel, Pause, Resume
from supervised_loops.testing import virtual_time

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def at(seconds: float) -> dt.datetime:
    """The virtual wall time ``seconds`` after the start of a test."""
    return START + dt.timedelta(seconds=seconds)


def now() -> float:
    """Virtual seconds since the start of the test."""
    return asyncio.get_running_loop().time()


async def idle() -> None:
    """A body that does nothing."""


async def drain(subscription: Subscription) -> list[Event]:
    """Close ``subscription`` and return every event it still holds, in order."""
    subscription.close()
    return [event async for event in subscription]


class Mailbox(Loop):
    """A loop with messages of its own: it records what it handled, and when.

    ``("echo", x)`` replies ``x``; ``("fail", text)`` raises ValueError(text);
    anything else is refused as the base class does. The body records its
    start and end so the tests can check that messages are handled between
    iterations, never during one.
    """

    def __init__(self, *, body_seconds: float = 2.0, mailbox_size: int = 1000) -> None:
        self.log: list[tuple[float, str, Any]] = []
        self.body_seconds = body_seconds
        super().__init__(
            self._body, schedule=Every(seconds=10), name="mailbox", mailbox_size=mailbox_size
        )

    async def _body(self) -> None:
        self.log.append((now(), "body", self.current_loop))
        await asyncio.sleep(self.body_seconds)
        self.log.append((now(), "body done", self.current_loop))

    async def handle_message(self, message: Any) -> Any:
        if isinstance(message, tuple) and message[0] == "echo":
            self.log.append((now(), "echo", message[1]))
            return message[1]
        if isinstance(message, tuple) and message[0] == "fail":
            self.log.append((now(), "fail", message[1]))
            raise ValueError(message[1])
        return await super().handle_message(message)


# --------------------------------------------------------------------------
# tell


@virtual_time()
async def test_tell_returns_at_once_while_the_message_takes_effect_later() -> None:
    actor = Mailbox(body_seconds=5.0)
    actor.start()
    await asyncio.sleep(1)  # mid-iteration: the body runs from 0 to 5
    assert actor.tell(Stop()) is None
    assert now() == 1.0
    assert actor.is_running()
    await actor.get_task()  # type: ignore[misc]
    assert now() == 5.0  # the iteration was allowed to finish
    assert actor.log == [(0.0, "body", 0), (5.0, "body done", 0)]


@virtual_time()
async def test_tell_to_a_never_started_actor_is_a_counted_and_published_dead_letter() -> None:
    actor = Mailbox()
    events = actor.events()
    actor.tell(Stop())  # never raises
    actor.tell(("echo", 1))
    assert dead_letters.count == 2
    expected = [
        DeadLetter(path="mailbox", at=START, message="Stop()", reason="not running"),
        DeadLetter(path="mailbox", at=START, message="('echo', 1)", reason="not running"),
    ]
    assert list(dead_letters.recent) == expected
    assert await drain(events) == expected


@virtual_time()
async def test_tell_to_a_stopped_actor_is_a_dead_letter() -> None:
    actor = Mailbox()
    actor.start()
    await asyncio.sleep(1)
    await actor.ask(Stop())  # acked at 2, when the first iteration has finished
    assert dead_letters.count == 0
    actor.tell(RunNow())
    assert list(dead_letters.recent) == [
        DeadLetter(path="mailbox", at=at(2), message="RunNow()", reason="not running")
    ]


def test_tell_outside_any_event_loop_to_a_never_started_actor_is_a_dead_letter() -> None:
    actor = Mailbox()
    actor.tell(Stop())
    assert dead_letters.count == 1
    assert dead_letters.recent[-1].reason == "not running"


# --------------------------------------------------------------------------
# ask


@virtual_time()
async def test_ask_returns_the_reply_of_handle_message() -> None:
    actor = Mailbox()
    actor.start()
    await asyncio.sleep(3)  # sleeping: the first iteration ended at 2
    assert await actor.ask(("echo", "hello")) == "hello"
    assert now() == 3.0  # handled at once by the idle loop, not at the next tick
    await actor.ask(Stop())


@virtual_time()
async def test_ask_to_a_never_started_actor_raises_actor_not_running_and_counts_a_dead_letter() -> (
    None
):
    actor = Mailbox()
    with pytest.raises(ActorNotRunning) as caught:
        await actor.ask(Stop())
    assert str(caught.value) == "actor 'mailbox' is not running; Stop() was not delivered"
    assert caught.value.actor == "mailbox"
    assert caught.value.message == Stop()
    with pytest.raises(ActorNotRunning):
        await actor.ask(("echo", 1))
    assert dead_letters.count == 2


def test_default_ask_timeout_is_thirty_seconds() -> None:
    assert DEFAULT_ASK_TIMEOUT == 30.0


@virtual_time()
async def test_ask_times_out_after_the_default_timeout_naming_actor_message_and_timeout() -> None:
    actor = Mailbox(body_seconds=100.0)
    actor.start()
    await asyncio.sleep(1)  # mid-iteration until 100
    with pytest.raises(AskTimeout) as caught:
        await actor.ask(Stop())
    assert now() == 1.0 + DEFAULT_ASK_TIMEOUT
    assert str(caught.value) == "actor 'mailbox' did not answer Stop() within 30.0 seconds"
    assert (caught.value.actor, caught.value.message, caught.value.timeout) == (
        "mailbox",
        Stop(),
        30.0,
    )
    assert isinstance(caught.value, TimeoutError)
    # The message was delivered all the same: the loop ends after its iteration.
    await actor.get_task()  # type: ignore[misc]
    assert now() == 100.0
    assert actor.current_loop == 1


@virtual_time()
async def test_ask_timeout_per_call_overrides_the_default() -> None:
    actor = Mailbox(body_seconds=100.0)
    actor.start()
    await asyncio.sleep(1)
    with pytest.raises(AskTimeout) as caught:
        await actor.ask(("echo", 1), timeout=5)
    assert now() == 6.0
    assert caught.value.timeout == 5.0
    assert str(caught.value) == "actor 'mailbox' did not answer ('echo', 1) within 5.0 seconds"
    actor.cancel()


@virtual_time()
async def test_ask_with_timeout_none_waits_as_long_as_it_takes() -> None:
    actor = Mailbox(body_seconds=100.0)
    actor.start()
    await asyncio.sleep(1)
    assert await actor.ask(Stop(), timeout=None) == Ack(Stop(), 1, None)
    assert now() == 100.0


@virtual_time()
async def test_ask_rejects_a_bad_timeout_before_sending() -> None:
    actor = Mailbox()
    actor.start()
    with pytest.raises(ValueError, match="'timeout'"):
        await actor.ask(Stop(), timeout=-1)
    assert actor.is_running()  # nothing was sent
    await asyncio.sleep(13)
    assert actor.current_loop == 2
    actor.cancel()


@virtual_time()
async def test_an_ask_that_timed_out_does_not_leave_an_unretrieved_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The RunNow asked here can never be answered (the body outlasts the ask,
    # then the loop is cancelled): its late ActorStopped must not be reported
    # by asyncio as "exception was never retrieved".
    actor = Mailbox(body_seconds=100.0)
    actor.start()
    await asyncio.sleep(1)
    with pytest.raises(AskTimeout):
        await actor.ask(RunNow(), timeout=1)
    await actor.ask(Cancel())
    gc.collect()
    assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == []


# --------------------------------------------------------------------------
# user messages


@virtual_time()
async def test_user_messages_are_handled_in_order_between_iterations_with_replies() -> None:
    actor = Mailbox(body_seconds=4.0)
    actor.start()
    await asyncio.sleep(1)  # the first iteration runs from 0 to 4
    actor.tell(("echo", "a"))
    asked = asyncio.ensure_future(actor.ask(("echo", "b")))
    await asyncio.sleep(0)  # let the ask deliver before the next tell
    actor.tell(("echo", "c"))
    assert await asked == "b"
    assert now() == 4.0  # answered as soon as the iteration ended
    assert actor.log == [
        (0.0, "body", 0),
        (4.0, "body done", 0),
        (4.0, "echo", "a"),
        (4.0, "echo", "b"),
        (4.0, "echo", "c"),
    ]
    await asyncio.sleep(7)  # the next iteration at 10 is not shifted by the messages
    assert actor.log[-1] == (10.0, "body", 1)
    await actor.ask(Stop())


@virtual_time()
async def test_user_message_asked_of_a_loop_without_a_handler_raises_unhandled_message() -> None:
    @loop(seconds=10)
    async def plain() -> None:
        pass

    plain.start()
    await asyncio.sleep(1)
    with pytest.raises(UnhandledMessage) as caught:
        await plain.ask("hello")
    assert str(caught.value) == (
        "actor 'plain' does not handle str messages (got 'hello'); "
        "override handle_message() to accept it"
    )
    assert (caught.value.actor, caught.value.message) == ("plain", "hello")
    # Asked, the refusal is the asker's problem: the loop goes on.
    assert plain.status().state is State.SLEEPING
    assert not plain.failed()
    await plain.ask(Stop())


@virtual_time()
async def test_subclass_handler_refusing_a_message_sends_unhandled_message_to_the_asker() -> None:
    actor = Mailbox()
    actor.start()
    await asyncio.sleep(3)
    with pytest.raises(UnhandledMessage):
        await actor.ask(42)
    with pytest.raises(ValueError, match=r"^nope$"):
        await actor.ask(("fail", "nope"))
    assert actor.status().state is State.SLEEPING
    assert not actor.failed()
    await actor.ask(Stop())


@virtual_time()
async def test_user_message_that_raises_when_only_told_is_a_failure_of_the_loop() -> None:
    actor = Mailbox()
    handled: list[BaseException] = []
    after: list[bool] = []

    @actor.error
    async def on_error(error: BaseException) -> None:
        handled.append(error)

    @actor.after_loop
    async def cleanup() -> None:
        after.append(actor.failed())

    events = actor.events()
    actor.start()
    await asyncio.sleep(3)
    actor.tell(("fail", "bad message"))
    with pytest.raises(ValueError, match=r"^bad message$"):
        await actor.get_task()  # type: ignore[misc]
    assert now() == 3.0
    assert [str(error) for error in handled] == ["bad message"]
    assert after == [True]
    assert actor.failed()
    assert actor.status().state is State.FAILED
    assert actor.status().last_error == "ValueError: bad message"
    assert (await drain(events))[-1] == ActorFailed(
        path="mailbox", at=at(3), error="ValueError: bad message"
    )


@virtual_time()
async def test_unhandled_user_message_when_only_told_is_a_failure_of_the_loop() -> None:
    # The base handle_message refuses every message; told, nobody can be
    # answered, so the refusal is escalated (documented in handle_message).
    actor = Mailbox()
    actor.start()
    await asyncio.sleep(3)
    actor.tell("unknown")
    with pytest.raises(UnhandledMessage):
        await actor.get_task()  # type: ignore[misc]
    assert actor.failed()


# --------------------------------------------------------------------------
# the user lane's bound, and the control lane


@virtual_time()
async def test_user_lane_overflow_is_a_mailbox_full_dead_letter() -> None:
    actor = Mailbox(body_seconds=5.0, mailbox_size=2)
    actor.start()
    await asyncio.sleep(1)  # mid-iteration: nothing is drained until 5
    actor.tell(("echo", 1))
    actor.tell(("echo", 2))
    actor.tell(("echo", 3))
    with pytest.raises(MailboxFull, match=r"actor 'mailbox' has a full mailbox; \('echo', 4\)"):
        await actor.ask(("echo", 4))
    assert dead_letters.count == 2
    assert [(d.message, d.reason) for d in dead_letters.recent] == [
        ("('echo', 3)", "mailbox full"),
        ("('echo', 4)", "mailbox full"),
    ]
    await asyncio.sleep(5)
    assert [entry for entry in actor.log if entry[1] == "echo"] == [
        (5.0, "echo", 1),
        (5.0, "echo", 2),
    ]
    await actor.ask(Stop())


@virtual_time()
async def test_control_messages_get_through_at_once_when_the_user_lane_is_full() -> None:
    actor = Mailbox(body_seconds=5.0, mailbox_size=3)
    actor.start()
    await asyncio.sleep(1)
    for number in range(3):
        actor.tell(("echo", number))
    actor.tell(("echo", "overflow"))
    assert dead_letters.count == 1
    status = await actor.ask(GetStatus())
    assert now() == 1.0
    assert status.state is State.RUNNING
    assert await actor.ask(Pause()) == Ack(Pause(), 0, None)
    assert now() == 1.0
    assert await actor.ask(Stop()) == Ack(Stop(), 1, None)
    assert now() == 5.0  # the iteration finished; Stop was not queued behind the messages
    # Control messages are handled before user messages: the queued ones
    # never ran, and became dead letters when the loop ended.
    assert [entry for entry in actor.log if entry[1] == "echo"] == []
    assert dead_letters.count == 4


@virtual_time()
async def test_user_messages_pending_when_the_loop_ends_become_dead_letters_and_askers_get_actor_stopped() -> (  # noqa: E501
    None
):
    actor = Mailbox(body_seconds=5.0)
    actor.start()
    await asyncio.sleep(1)
    actor.tell(("echo", "told"))
    asked = asyncio.ensure_future(actor.ask(("echo", "asked")))
    await asyncio.sleep(0)
    actor.stop()
    with pytest.raises(ActorStopped) as caught:
        await asked
    assert str(caught.value) == "actor 'mailbox' ended before answering ('echo', 'asked')"
    assert now() == 5.0
    assert [(d.message, d.reason) for d in dead_letters.recent] == [
        ("('echo', 'told')", "actor ended"),
        ("('echo', 'asked')", "actor ended"),
    ]


@virtual_time()
async def test_user_message_sent_while_after_loop_runs_becomes_a_dead_letter_at_the_end() -> None:
    actor = Mailbox()

    @actor.after_loop
    async def cleanup() -> None:
        await asyncio.sleep(4)

    actor.start()
    await asyncio.sleep(3)
    actor.stop()  # after_loop runs from 3 to 7
    await asyncio.sleep(1)
    with pytest.raises(ActorStopped):
        await actor.ask(("echo", 1))
    assert now() == 7.0
    assert dead_letters.recent[-1].reason == "actor ended"


# --------------------------------------------------------------------------
# tell_threadsafe


async def test_tell_threadsafe_from_a_real_thread_is_handled_in_the_actor_task_real_time() -> None:
    received = asyncio.Event()
    handled_in: list[tuple[Any, int]] = []

    class Inbox(Loop):
        async def handle_message(self, message: Any) -> Any:
            handled_in.append((message, threading.get_ident()))
            received.set()

    inbox = Inbox(idle, schedule=Every(hours=1), name="inbox")
    inbox.start()
    assert await inbox.wait_ready()
    sender = threading.Thread(target=inbox.tell_threadsafe, args=("ping",))
    sender.start()
    async with asyncio.timeout(10):
        await received.wait()
    sender.join()
    assert handled_in == [("ping", threading.get_ident())]
    assert dead_letters.count == 0
    await inbox.ask(Stop())


def test_tell_threadsafe_to_an_actor_that_never_ran_is_a_dead_letter() -> None:
    actor = Mailbox()
    actor.tell_threadsafe(Stop())
    assert dead_letters.count == 1
    assert dead_letters.recent[-1].reason == "no event loop to deliver to"


# --------------------------------------------------------------------------
# control coalescing


@virtual_time()
async def test_two_stops_merge_and_both_askers_are_acked_when_after_loop_is_done() -> None:
    actor = Mailbox(body_seconds=5.0)
    after: list[float] = []

    @actor.after_loop
    async def cleanup() -> None:
        await asyncio.sleep(1)
        after.append(now())

    actor.start()
    await asyncio.sleep(1)
    first = asyncio.ensure_future(actor.ask(Stop()))
    second = asyncio.ensure_future(actor.ask(Stop()))
    assert await first == Ack(Stop(), 1, None)
    assert await second == Ack(Stop(), 1, None)
    assert now() == 6.0
    assert after == [6.0]  # one after_loop for both


@virtual_time()
async def test_cancel_overrides_a_pending_stop() -> None:
    actor = Mailbox(body_seconds=5.0)
    after: list[bool] = []

    @actor.after_loop
    async def cleanup() -> None:
        after.append(actor.is_being_cancelled())

    actor.start()
    await asyncio.sleep(1)
    stopping = asyncio.ensure_future(actor.ask(Stop()))
    await asyncio.sleep(1)
    assert await actor.ask(Cancel()) == Ack(Cancel(), 0, None)
    assert now() == 2.0  # the iteration was preempted, not finished
    assert await stopping == Ack(Stop(), 0, None)
    assert after == [True]
    assert actor.status().state is State.CANCELLED
    assert actor.log == [(0.0, "body", 0)]


@virtual_time()
async def test_the_last_change_interval_wins_and_every_asker_sees_its_next_run_time() -> None:
    actor = Mailbox(body_seconds=4.0)
    actor.start()
    await asyncio.sleep(1)  # during the first iteration (0 to 4)
    first = asyncio.ensure_future(actor.ask(ChangeInterval(seconds=5)))
    second = asyncio.ensure_future(actor.ask(ChangeInterval(seconds=7)))
    assert await first == Ack(ChangeInterval(seconds=5), 1, at(7))
    assert await second == Ack(ChangeInterval(seconds=7), 1, at(7))
    assert now() == 4.0
    assert actor.seconds == 7
    await asyncio.sleep(11)
    assert [t for t, what, _ in actor.log if what == "body"] == [0.0, 7.0, 14.0]
    await actor.ask(Stop())


@virtual_time()
async def test_duplicate_run_now_requests_merge_into_one_extra_iteration() -> None:
    actor = Mailbox(body_seconds=2.0)
    actor.start()
    await asyncio.sleep(3)  # sleeping until 10
    first = asyncio.ensure_future(actor.ask(RunNow()))
    second = asyncio.ensure_future(actor.ask(RunNow()))
    assert await first == Ack(RunNow(), 2, at(10))
    assert await second == Ack(RunNow(), 2, at(10))
    assert now() == 5.0
    await asyncio.sleep(6)
    assert [t for t, what, _ in actor.log if what == "body"] == [0.0, 3.0, 10.0]
    await actor.ask(Stop())


# --------------------------------------------------------------------------
# events


@virtual_time()
async def test_events_yield_the_lifecycle_in_order() -> None:
    failures = iter([OSError("network down"), None, ValueError("bad data")])

    @loop(seconds=10, backoff=ExponentialBackoff(jitter=False))
    async def worker() -> None:
        error = next(failures)
        if error is not None:
            raise error

    events = worker.events()
    worker.start()
    await asyncio.sleep(5)  # fails at 0, retried at 2, then sleeping until 10
    await worker.ask(Stop())
    worker.start()  # second run: fails at once for good
    with pytest.raises(ValueError):
        await worker.get_task()  # type: ignore[misc]
    events.close()
    assert [event async for event in events] == [
        ActorStarted(path="worker", at=at(0)),
        IterationFailed(path="worker", at=at(0), iteration=0, error="OSError: network down",
                        retried=True),
        RetryScheduled(path="worker", at=at(0), iteration=0, attempt=1, delay=2.0),
        ActorEnded(path="worker", at=at(5), cancelled=False),
        ActorStarted(path="worker", at=at(5)),
        IterationFailed(path="worker", at=at(5), iteration=0, error="ValueError: bad data",
                        retried=False),
        ActorFailed(path="worker", at=at(5), error="ValueError: bad data"),
    ]  # fmt: skip


@virtual_time()
async def test_cancelled_run_publishes_actor_stopped_with_cancelled_true() -> None:
    actor = Mailbox()
    events = actor.events()
    actor.start()
    await asyncio.sleep(1)
    await actor.ask(Cancel())
    assert await drain(events) == [
        ActorStarted(path="mailbox", at=at(0)),
        ActorEnded(path="mailbox", at=at(1), cancelled=True),
    ]


@virtual_time()
async def test_a_waiting_subscriber_receives_events_as_they_happen() -> None:
    actor = Mailbox()
    events = actor.events()
    received = asyncio.ensure_future(anext(events))
    await asyncio.sleep(1)
    assert not received.done()
    actor.start()
    assert await received == ActorStarted(path="mailbox", at=at(1))
    await actor.ask(Stop())


@virtual_time()
async def test_slow_subscriber_loses_the_oldest_events_and_is_told_how_many() -> None:
    actor = Mailbox()
    slow = actor.events(max_pending=2)
    fast = actor.events()
    for message in (Stop(), Cancel(), Pause(), Resume(), RunNow()):
        actor.tell(message)  # five dead letters, published at once
    assert slow.dropped == 3
    assert await anext(slow) == EventsDropped(path="mailbox", at=START, count=3)
    assert await anext(slow) == DeadLetter(
        path="mailbox", at=START, message="Resume()", reason="not running"
    )
    assert await anext(slow) == DeadLetter(
        path="mailbox", at=START, message="RunNow()", reason="not running"
    )
    # Caught up: the next event comes without a marker, and the total stays.
    actor.tell(Stop())
    assert await anext(slow) == DeadLetter(
        path="mailbox", at=START, message="Stop()", reason="not running"
    )
    assert slow.dropped == 3
    # A subscriber with room lost nothing.
    assert fast.dropped == 0
    assert len(await drain(fast)) == 6


def test_events_rejects_a_non_positive_max_pending() -> None:
    actor = Mailbox()
    with pytest.raises(ValueError, match=r"^'max_pending' must be > 0 \(got 0\)$"):
        actor.events(max_pending=0)


@virtual_time()
async def test_closed_subscription_ends_iteration_and_gets_no_more_events() -> None:
    actor = Mailbox()
    events = actor.events()
    actor.tell(Stop())
    async with events:
        assert await anext(events) == DeadLetter(
            path="mailbox", at=START, message="Stop()", reason="not running"
        )
    actor.tell(Stop())
    assert [event async for event in events] == []


class SlowHandler(Loop):
    """A loop whose handle_message takes 100 seconds, so a Cancel lands during it."""

    def __init__(self) -> None:
        super().__init__(idle, schedule=Every(seconds=10), name="slow")

    async def handle_message(self, message: Any) -> Any:
        await asyncio.sleep(100)
        return message


@virtual_time()
async def test_an_ask_being_handled_when_the_actor_is_cancelled_fails_at_once() -> None:
    actor = SlowHandler()
    actor.start()
    await asyncio.sleep(1)
    asker = asyncio.ensure_future(actor.ask("hello", timeout=None))
    await asyncio.sleep(1)  # handle_message("hello") is running
    actor.tell(Cancel())
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert asker.done()
    with pytest.raises(ActorStopped) as caught:
        asker.result()
    assert str(caught.value) == "actor 'slow' ended before answering 'hello'"
    assert now() == 2.0


def test_tell_threadsafe_to_an_actor_that_never_ran_publishes_on_the_event_loop_thread() -> None:
    # A subscriber reads in an event loop; the dead letter of a message sent
    # from another thread to an actor that never ran is published from that
    # loop's thread, never from the sending thread.
    published_in: list[int] = []

    class Watched(Mailbox):
        def _dead_letter(self, message: Any, reply: Any, reason: str) -> None:
            published_in.append(threading.get_ident())
            super()._dead_letter(message, reply, reason)

    async def scenario() -> None:
        actor = Watched()
        subscription = actor.events()
        sender_errors: list[BaseException] = []

        def send() -> None:
            try:
                actor.tell_threadsafe(Stop())
            except BaseException as error:  # pragma: no cover - the failure reported below
                sender_errors.append(error)

        sender = threading.Thread(target=send)
        sender.start()
        sender.join()
        assert sender_errors == []
        assert published_in == []  # handed to this loop, not published by the sender
        async with asyncio.timeout(10):
            event = await anext(subscription)
        assert isinstance(event, DeadLetter)
        assert event.reason == "no event loop to deliver to"
        assert published_in == [threading.get_ident()]
        subscription.close()

    asyncio.run(scenario(), debug=True)
    assert dead_letters.count == 1
