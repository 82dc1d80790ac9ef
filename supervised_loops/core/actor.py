"""The actor: a mailbox, request/reply, dead letters and a parent link.

An actor is anything that runs in the background and is steered by messages:
a Loop, a Supervisor, a worker. This module knows nothing of loops, workers
or supervisors, nor of runs: it holds the mailbox they share and the link to
a parent, whose protocol is `core.parent`'s. How a run starts and ends is
`core.runnable`'s.

The mailbox has two lanes:

* **Control lane.** Instances of `ControlMessage`
  are handled *synchronously in the sender's call*, by the subclass's
  ``_on_control``. asyncio runs one thing at a time, so the handler runs while
  the actor's own task is suspended at an ``await``: it only records the
  request (a flag, a new schedule, a reply to send later) and wakes the actor.
  That is what makes the lane impossible to block or fill: there is no queue
  to overflow, redundant requests coalesce into the same flag, and a control
  message always overtakes user traffic. Urgent messages (``Cancel``,
  ``Restart``) preempt by cancelling the actor's task right there.
* **User lane.** Any other message is queued (FIFO, bounded by
  ``mailbox_size``) and handled by `Actor.handle_message` in the actor's
  own task, one at a time, at the points where the actor is idle.

Nothing is dropped silently. A message that cannot be delivered (the actor is
not running, the user lane is full, the actor ended with it still queued) is
a *dead letter*: counted in `dead_letters`, published as a
`DeadLetter` event, and, if it was asked,
answered with a clear error instead of leaving the asker hanging.

May import: the pure top-level modules (``messages``, ``events``, ``errors``,
``clock``, ``_validate``). Nothing of core's other modules at run time.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import logging
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeAlias, overload

from .. import _validate
from ..clock import SystemClock, get_clock
from ..errors import ActorNotRunning, ActorStopped, MailboxFull, UnhandledMessage
from ..events import DeadLetter, Event, EventHub, Subscription
from ..messages import Ack, ActorStatus, ControlMessage, GetStatus
from .deadlines import expire_after

if TYPE_CHECKING:
    from .parent import Parent

__all__ = ["DEFAULT_ASK_TIMEOUT", "Actor", "DeadLetters", "dead_letters"]

logger = logging.getLogger("supervised_loops")

#: Seconds ``ask`` waits for a reply unless told otherwise. Long enough for a
#: ``Stop`` to let an ordinary iteration finish; pass ``timeout=`` for more.
DEFAULT_ASK_TIMEOUT = 30.0

#: Default bound of the user lane, in messages.
DEFAULT_MAILBOX_SIZE = 1000

Reply: TypeAlias = "asyncio.Future[Any] | None"


class DeadLetters:
    """The process-wide count of undeliverable messages, and the latest few.

    Attributes:
        count: dead letters since the process started (or the last ``clear``).
        recent: the latest dead letters, oldest first (at most 100).
    """

    __slots__ = ("_lock", "count", "recent")

    def __init__(self) -> None:
        self.count = 0
        self.recent: collections.deque[DeadLetter] = collections.deque(maxlen=100)
        self._lock = threading.Lock()

    def _record(self, letter: DeadLetter) -> None:
        with self._lock:  # dead letters may come from tell_threadsafe's thread
            self.count += 1
            self.recent.append(letter)

    def clear(self) -> None:
        """Reset the count and forget the recent letters (for tests)."""
        with self._lock:
            self.count = 0
            self.recent.clear()

    def __repr__(self) -> str:
        return f"<DeadLetters count={self.count}>"


#: The process-wide dead-letter office.
dead_letters = DeadLetters()


class Actor:
    """Base class of everything that lives in a supervision tree.

    Users subclass a Loop or a Supervisor and override `handle_message`
    to accept their own message types.
    """

    # For the library's own actor kinds: a subclass implements is_running,
    # status and _on_control; it calls _drain_inbox wherever it is idle, and
    # _discard_inbox when a run ends. Actors that run (all of the library's)
    # build on core.runnable.Runnable.

    __slots__ = (
        "__weakref__",
        "_event_loop",
        "_hub",
        "_inbox",
        "_mailbox_size",
        "_name",
        "_parent",
        "_path",
    )

    def __init__(self, name: str, *, mailbox_size: int = DEFAULT_MAILBOX_SIZE) -> None:
        self._name = _validate.actor_name("name", name)
        self._mailbox_size = _validate.positive_int("mailbox_size", mailbox_size)
        self._parent: Parent | None = None
        self._path: str | None = None  # made on first use, dropped by _repath
        self._hub: EventHub | None = None
        # Created on the first user message: most actors only ever get control
        # messages, and an empty deque costs ~760 bytes per actor.
        self._inbox: collections.deque[tuple[Any, Reply]] | None = None
        self._event_loop: asyncio.AbstractEventLoop | None = None

    # -- identity ---------------------------------------------------------

    @property
    def name(self) -> str:
        """The actor's name, unique among its siblings."""
        return self._name

    @property
    def path(self) -> str:
        """The ``/``-separated names from the root of the tree to this actor."""
        path = self._path
        if path is None:
            parent = self._parent
            path = self._name if parent is None else f"{parent.path}/{self._name}"
            self._path = path
        return path

    def _path_uncached(self) -> str:
        """The path, made without keeping it (for a one-off use such as a task's name)."""
        path = self._path
        if path is None:
            parent = self._parent
            path = self._name if parent is None else f"{parent._path_uncached()}/{self._name}"
        return path

    @property
    def parent(self) -> Actor | None:
        """The supervising actor, or None for a standalone actor."""
        return self._parent

    @property
    def mailbox_depth(self) -> int:
        """User messages waiting in the mailbox (what a metrics exporter reports)."""
        inbox = self._inbox
        return 0 if inbox is None else len(inbox)

    def _attach(self, parent: Parent, name: str) -> None:
        """Become ``parent``'s child, named ``name`` (the tree link; supervisors call it)."""
        self._parent = parent
        self._name = name
        self._repath()

    def _detach(self, parent: Parent) -> None:
        """Leave ``parent`` (nothing happens if it is not this actor's parent)."""
        if self._parent is parent:
            self._parent = None
            self._repath()

    def _repath(self) -> None:
        """Forget the path of this actor and of its whole subtree.

        The path is read on every observed iteration (and in every log line
        and event), so it is kept once made, not rebuilt from the parents
        each time; it is made on first use (an idle tree nobody observes
        keeps no path strings). The tree links change only in `_attach` and
        `_detach`, and each change drops the paths of the subtree below.
        """
        stack: list[Actor] = [self]
        while stack:
            actor = stack.pop()
            if actor._path is not None:
                actor._path = None
                stack.extend(actor._tree_children())

    def _tree_children(self) -> Iterable[Actor]:
        """The actors attached below this one (none; a supervisor has its children)."""
        return ()

    # -- what subclasses provide ------------------------------------------

    def is_running(self) -> bool:
        """Whether a run of the actor is in progress (including its ending)."""
        raise NotImplementedError

    def status(self) -> ActorStatus:
        """Return a snapshot of the actor."""
        raise NotImplementedError

    def _on_control(self, message: ControlMessage, reply: Reply) -> None:
        """Handle a control message synchronously (see the module docstring)."""
        raise NotImplementedError

    async def handle_message(self, message: Any) -> Any:
        """Handle a user message in the actor's own task; return the reply.

        Override this to give an actor messages of its own. It is called for
        one message at a time, in arrival order, while the actor is idle. An
        exception is sent back to an asker; for a message that was only told,
        it is a failure of the actor, escalated like any other. It runs in
        the actor's task: a Cancel, Restart or shutdown that arrives while it
        awaits cancels it there, and an asker waiting for its reply gets
        ActorStopped at once.

        Raises:
            UnhandledMessage: the default, for any message.
        """
        raise UnhandledMessage(self.path, message)

    # -- sending ----------------------------------------------------------

    def tell(self, message: Any) -> None:
        """Deliver ``message`` without waiting; never blocks, never raises for delivery.

        A message that cannot be delivered becomes a dead letter.
        """
        if isinstance(message, ControlMessage):
            self._on_control(message, None)
        else:
            self._deliver_user(message, None)

    # The reply's type follows the message's: a status for GetStatus, an
    # Ack for the other control messages, whatever handle_message returns
    # for a user message.
    @overload
    async def ask(  # type: ignore[overload-overlap]
        self, message: GetStatus, *, timeout: float | None = DEFAULT_ASK_TIMEOUT
    ) -> ActorStatus: ...
    @overload
    async def ask(
        self, message: ControlMessage, *, timeout: float | None = DEFAULT_ASK_TIMEOUT
    ) -> Ack: ...
    @overload
    async def ask(self, message: Any, *, timeout: float | None = DEFAULT_ASK_TIMEOUT) -> Any: ...
    async def ask(self, message: Any, *, timeout: float | None = DEFAULT_ASK_TIMEOUT) -> Any:
        """Deliver ``message`` and wait for the reply.

        For a control message the reply is an
        `Ack` (or an
        `ActorStatus` for ``GetStatus``) sent
        when the message has taken effect. Cancelling ``ask`` abandons the
        reply; the message stays delivered.

        Args:
            message: the message.
            timeout: seconds to wait for the reply; None waits forever.

        Raises:
            ActorNotRunning: the message needs a running actor and this one is not.
            ActorStopped: the actor ended before answering.
            AskTimeout: no reply within ``timeout`` seconds.
            Exception: whatever ``handle_message`` raised for a user message.
        """
        if timeout is not DEFAULT_ASK_TIMEOUT:  # the default is known to be valid
            timeout = _validate.optional_seconds("timeout", timeout)
        reply: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._deliver(message, reply)
        if reply.done() or timeout is None:
            return await reply
        # The deadline fails the reply itself (see core.deadlines: one heap
        # and one timer for every pending ask of the event loop), rather than
        # asyncio.timeout around asyncio.shield: no outer future, no timer per
        # ask. Whichever comes first, the answer or the deadline, settles the
        # reply; answerers skip a reply that is already done. Cancelling the
        # asker cancels the reply (it is what the asker awaits): abandoned.
        expire_after(reply, timeout, self, message)
        return await reply

    def tell_threadsafe(self, message: Any) -> None:
        """Deliver ``message`` from another thread; returns at once.

        The message is handed to the actor's event loop and delivered there as
        by `tell`. If the actor has never run, or its event loop is
        closed, the message becomes a dead letter ("no event loop to deliver
        to"). Events are only ever published from an event loop's thread:
        that dead letter is published from the loop of the actor's
        supervisor, or of a subscriber to its events, when there is one
        (from the calling thread only when no event loop exists at all).
        """
        event_loop = self._event_loop
        if event_loop is not None and not event_loop.is_closed():
            try:
                event_loop.call_soon_threadsafe(self._deliver, message, None)
                return
            except RuntimeError:  # the loop closed between the check and the call
                pass
        reason = "no event loop to deliver to"
        elsewhere = self._publishing_loop()
        if elsewhere is not None:
            try:
                elsewhere.call_soon_threadsafe(self._dead_letter, message, None, reason)
                return
            except RuntimeError:  # closed meanwhile: no loop left to publish from
                pass
        self._dead_letter(message, None, reason)

    def _publishing_loop(self) -> asyncio.AbstractEventLoop | None:
        """An open event loop of this actor's tree: an ancestor's, or a subscriber's."""
        actor: Actor | None = self
        while actor is not None:
            event_loop = actor._event_loop
            if event_loop is not None and not event_loop.is_closed():
                return event_loop
            hub = actor._hub
            if hub:
                event_loop = hub.event_loop()
                if event_loop is not None:
                    return event_loop
            actor = actor._parent
        return None

    def _deliver(self, message: Any, reply: Reply) -> None:
        if isinstance(message, ControlMessage):
            self._on_control(message, reply)
        else:
            self._deliver_user(message, reply)

    def _deliver_user(self, message: Any, reply: Reply) -> None:
        if not self.is_running():
            self._dead_letter(message, reply, "not running")
            return
        inbox = self._inbox
        if inbox is None:
            inbox = self._inbox = collections.deque()
        elif len(inbox) >= self._mailbox_size:
            self._dead_letter(message, reply, "mailbox full")
            return
        inbox.append((message, reply))
        self._wake()

    def _wake(self) -> None:
        """Make the actor's task look at its mailbox (subclasses override)."""

    # -- user lane --------------------------------------------------------

    async def _drain_inbox(self) -> None:
        """Handle every queued user message, in order, in the actor's task.

        Raises:
            Exception: what ``handle_message`` raised for a told message.
        """
        inbox = self._inbox
        while inbox:
            message, reply = inbox.popleft()
            try:
                result = await self.handle_message(message)
            except Exception as error:
                if reply is None:
                    raise
                if not reply.done():
                    reply.set_exception(error)
            except BaseException:
                # Cancelled (Cancel, Restart, a shutdown) while handling it: the
                # message is out of the inbox, so _discard_inbox will not answer
                # it; answer now, or an asker without a timeout waits forever.
                if reply is not None and not reply.done():
                    reply.set_exception(ActorStopped(self.path, message))
                raise
            else:
                if reply is not None and not reply.done():
                    reply.set_result(result)

    def _discard_inbox(self) -> None:
        """Turn every queued user message into a dead letter (the run ended)."""
        inbox = self._inbox
        while inbox:
            message, reply = inbox.popleft()
            self._dead_letter(message, reply, "actor ended")

    # -- dead letters and replies -------------------------------------------

    def _dead_letter(self, message: Any, reply: Reply, reason: str) -> None:
        letter = DeadLetter(path=self.path, at=self._now(), message=repr(message), reason=reason)
        dead_letters._record(letter)
        if reply is not None and not reply.done():
            if reason == "actor ended":
                reply.set_exception(ActorStopped(self.path, message))
            elif reason == "mailbox full":
                reply.set_exception(MailboxFull(self.path, message))
            else:
                reply.set_exception(ActorNotRunning(self.path, message))
        self._publish(letter)

    def _now(self) -> dt.datetime:
        event_loop = self._event_loop
        if event_loop is None:
            try:
                event_loop = asyncio.get_running_loop()
            except RuntimeError:  # a tell outside asyncio, to an actor that never ran
                return SystemClock().wall()
        return get_clock(event_loop).wall()

    # -- events -------------------------------------------------------------

    def events(self, *, max_pending: int = 1000) -> Subscription:
        """Subscribe to the events of this actor and everything below it.

        The subscription is an async iterator; close it (or use it as an
        async context manager) when done. A subscriber that falls more than
        ``max_pending`` events behind loses the oldest ones and is told so by
        an ``EventsDropped`` marker; the actors are never slowed down.

        Raises:
            TypeError: ``max_pending`` is not an int.
            ValueError: ``max_pending`` is not positive.
        """
        if self._hub is None:
            self._hub = EventHub()
        return self._hub.subscribe(max_pending)

    def _has_listeners(self) -> bool:
        actor: Actor | None = self
        while actor is not None:
            if actor._hub:
                return True
            actor = actor._parent
        return False

    def _publish(self, event: Event) -> None:
        actor: Actor | None = self
        while actor is not None:
            if actor._hub:
                actor._hub.publish(event)
            actor = actor._parent

    def _emit(self, factory: Callable[..., Event], **fields: Any) -> None:
        """Build and publish an event, if anyone up the tree listens."""
        if self._has_listeners():
            self._publish(factory(path=self.path, at=self._now(), **fields))

    def _admits_starts(self) -> bool:
        """Whether a child may start itself now (a Restart sent to it); supervisors override.

        Not while this actor is stopped or shutting down: the child would run
        outside the tree (see `core.runnable.Runnable._refuse_orphan`).
        """
        return self.is_running()

    def _ends_quietly_on_stop(self) -> bool:
        """Whether a ``Stop`` now would end the actor at once, running no user code.

        A supervisor stopping its children in reverse order may then stop a
        run of such children together: the order of their ends cannot be
        told apart (Loops say yes when asleep with no ``after_loop``).
        """
        return False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.path!r}>"
