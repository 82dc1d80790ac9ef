"""Lifecycle events, and the hub that fans them out to subscribers.

Every lifecycle change of an actor (started, iteration failed, retry
scheduled, stopped, failed, restarted, escalated, dead letter, ...) is an
immutable `Event`. ``actor.events()`` yields the events of the actor
and of everything below it in the tree.

Why a hub of bounded queues and not a stream library: publishing happens on
the actors' own code paths, so it must never wait and never allocate more
than one small object per subscriber. A subscriber that falls behind loses
its *oldest* events, and the loss is counted in `Subscription.dropped`
(and reported in `EventsDropped` markers) so it is never silent.
Per-iteration successes are not events: only changes are, which keeps the
hot path free of event work.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import sys
import warnings

import attrs

from . import _validate

__all__ = [
    "ActorEnded",
    "ActorFailed",
    "ActorStarted",
    "ChildRemoved",
    "ChildRestarted",
    "CutShort",
    "DeadLetter",
    "Escalated",
    "Event",
    "EventHub",
    "EventsDropped",
    "IntensityExceeded",
    "IterationFailed",
    "Quarantined",
    "RetryScheduled",
    "Subscription",
    "Unkillable",
]


@attrs.frozen
class Event:
    """Base of every event.

    Attributes:
        path: the path of the actor the event is about.
        at: when it happened (aware UTC, from the event loop's clock).
    """

    path: str
    at: dt.datetime


@attrs.frozen
class ActorStarted(Event):
    """A run of the actor began."""


@attrs.frozen
class ActorEnded(Event):
    """A run ended without failure.

    Earlier versions named it ``ActorStopped``; that name now belongs to the error
    ``supervised_loops.ActorStopped`` alone, and ``events.ActorStopped``
    is a deprecated alias of this class (see docs/events.md).

    Attributes:
        cancelled: true when it ended by cancellation.
    """

    cancelled: bool = False


@attrs.frozen
class ActorFailed(Event):
    """A run ended with an escalated error (``error`` is ``"Type: message"``)."""

    error: str


@attrs.frozen
class IterationFailed(Event):
    """An iteration raised.

    Attributes:
        iteration: the ``current_loop`` of the failed iteration.
        error: ``"Type: message"``.
        retried: true when the error is transient and the iteration will be retried.
    """

    iteration: int
    error: str
    retried: bool


@attrs.frozen
class RetryScheduled(Event):
    """A transient error is retried after ``delay`` seconds (``attempt`` counts from 1)."""

    iteration: int
    attempt: int
    delay: float


@attrs.frozen
class ChildRestarted(Event):
    """A supervisor restarted a child (``path`` is the child's)."""

    reason: str


@attrs.frozen
class ChildRemoved(Event):
    """A supervisor forgot a child (``path`` is the child's, as it was in the tree).

    Published by ``delete_child``, by ``terminate_child`` of a temporary
    child, when a temporary child ends (it is never restarted), and when
    ``start_child`` fails. The child and everything below it have left the
    tree for good: nothing restarts them.
    """


@attrs.frozen
class Escalated(Event):
    """A failure was passed up to the parent (``path`` is the escalating actor)."""

    error: str


@attrs.frozen
class IntensityExceeded(Event):
    """A supervisor exceeded its restart intensity and is failing."""

    restarts: int
    seconds: float


@attrs.frozen
class Quarantined(Event):
    """A child was parked after spending its budget; ``probe_in`` seconds to the next probe."""

    error: str
    probe_in: float


@attrs.frozen
class Unkillable(Event):
    """A child did not end within the hard limit after cancellation."""

    waited: float


@attrs.frozen
class CutShort(Event):
    """An actor's clean-up (a Loop's ``after_loop``) was cancelled before its end.

    Only a supervisor's hard shutdown limit or a forced shutdown does this;
    ``waited`` is the seconds the clean-up was given after cancellation was
    first asked for.
    """

    waited: float


@attrs.frozen
class DeadLetter(Event):
    """A message could not be delivered (``path`` is the addressee).

    Attributes:
        message: ``repr`` of the message.
        reason: why, e.g. ``"not running"`` or ``"mailbox full"``.
    """

    message: str
    reason: str


@attrs.frozen
class EventsDropped(Event):
    """Marker yielded to a slow subscriber: ``count`` older events were lost."""

    count: int


class Subscription:
    """One subscriber's bounded queue of events; an async iterator.

    Iterating yields events in publication order. When more than
    ``max_pending`` events are waiting, the oldest are discarded and the
    next item yielded is an `EventsDropped` telling how many.
    Cancelling a pending ``__anext__`` is safe and loses nothing. A
    subscription has one reader at a time: a second concurrent ``__anext__``
    raises ``RuntimeError`` (subscribe again to get a second reader).

    Made by ``actor.events()``; not constructed directly. ``async with``
    closes it on exit (leaving the block by cancellation closes it too).
    """

    __slots__ = ("_closed", "_hub", "_loop", "_pending", "_unreported", "_waiter", "dropped")

    def __init__(self, hub: EventHub, max_pending: int) -> None:
        self._hub = hub
        # The event loop the reader runs in (known once it subscribes or
        # waits inside one): where an event must be published from.
        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        # A deque holds at most sys.maxsize items; a larger bound is never reached.
        self._pending: collections.deque[Event] = collections.deque(
            maxlen=min(max_pending, sys.maxsize)
        )
        self._waiter: asyncio.Future[None] | None = None
        self._unreported = 0
        self._closed = False
        #: Events this subscriber lost because it fell behind, in total.
        self.dropped = 0

    def _push(self, event: Event) -> None:
        pending = self._pending
        if len(pending) == pending.maxlen:
            self.dropped += 1
            self._unreported += 1
        pending.append(event)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        """Wait for the next event (or an `EventsDropped` marker) and return it.

        Cancelling the wait is safe: no event is taken from the queue, and the
        next ``__anext__`` returns the one that would have been returned.

        Raises:
            StopAsyncIteration: the subscription is closed and drained.
            RuntimeError: another ``__anext__`` is already waiting.
        """
        while not self._pending:
            if self._closed:
                raise StopAsyncIteration
            if self._waiter is not None:
                raise RuntimeError(
                    "a Subscription has one reader at a time; call events() again for another"
                )
            self._loop = asyncio.get_running_loop()
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        if self._unreported:
            count, self._unreported = self._unreported, 0
            first = self._pending[0]
            return EventsDropped(path=first.path, at=first.at, count=count)
        return self._pending.popleft()

    def close(self) -> None:
        """Stop receiving; iteration ends once the queued events are consumed."""
        if not self._closed:
            self._closed = True
            self._hub._unsubscribe(self)
            waiter = self._waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    async def __aenter__(self) -> Subscription:
        """Return the subscription itself, already receiving.

        Never suspends, so it cannot be cancelled part-way.
        """
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Close the subscription; leaving the block by cancellation closes it too.

        Never suspends, so a cancellation cannot interrupt it.
        """
        self.close()


class EventHub:
    """Fans events out to subscriptions; publishing never blocks."""

    __slots__ = ("_subscriptions",)

    def __init__(self) -> None:
        self._subscriptions: list[Subscription] = []

    def __bool__(self) -> bool:
        return bool(self._subscriptions)

    def subscribe(self, max_pending: int = 1000) -> Subscription:
        """Return a new subscription keeping at most ``max_pending`` unread events.

        Raises:
            TypeError: ``max_pending`` is not an int.
            ValueError: ``max_pending`` is not positive.
        """
        _validate.positive_int("max_pending", max_pending)
        subscription = Subscription(self, max_pending)
        self._subscriptions.append(subscription)
        return subscription

    def publish(self, event: Event) -> None:
        for subscription in self._subscriptions:
            subscription._push(event)

    def event_loop(self) -> asyncio.AbstractEventLoop | None:
        """The open event loop one of the subscribers reads in, if any."""
        for subscription in self._subscriptions:
            event_loop = subscription._loop
            if event_loop is not None and not event_loop.is_closed():
                return event_loop
        return None

    def close(self) -> None:
        """End every subscription (they drain what they hold, then stop)."""
        for subscription in list(self._subscriptions):
            subscription.close()

    def _unsubscribe(self, subscription: Subscription) -> None:
        try:
            self._subscriptions.remove(subscription)
        except ValueError:
            pass


def describe(error: BaseException) -> str:
    """``"TypeName: message"`` for an error, as events and statuses show it."""
    text = str(error)
    name = type(error).__qualname__
    return f"{name}: {text}" if text else name


def __getattr__(name: str) -> object:
    # The event was called ActorStopped, like the error ActorStopped; old
    # imports keep working, with a warning, until the alias is removed.
    if name == "ActorStopped":
        warnings.warn(
            "supervised_loops.events.ActorStopped was renamed ActorEnded "
            "(supervised_loops.ActorStopped is the error raised to an asker)",
            DeprecationWarning,
            stacklevel=2,
        )
        return ActorEnded
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
