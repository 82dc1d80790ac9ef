"""Lifecycle metrics from the events hub: restarts, escalations, actors by state.

The loop engine reports iterations through `supervised_loops.instrument`;
everything else an operator counts (a child restarted, a failure escalated,
an actor that started, stopped or failed) is already a lifecycle event. A
`LifecycleWatcher` subscribes to a tree's events and turns them into calls
on a `LifecycleSink`, so the core needs no hook of its own for them.

The state of each actor is tracked in coarse lifecycle terms (``running``
from its start to its end, whatever it does in between; then ``stopped``,
``cancelled``, ``failed`` or ``quarantined``), because those are the
changes that are events.

Which actors are counted (see docs/observability.md, "Which actors are
counted"): an actor enters at its first start, and an actor that ended but
may still be started again by its supervisor (a stopped, failed or
quarantined child it keeps) goes on counting in its final state. An actor
that ended *for good* leaves, together with everything below it: an actor
with no supervisor (a standalone loop, the root of the tree) whose run
ended, and a child its supervisor forgot (`ChildRemoved`: ``delete_child``,
a temporary child). Started again, it enters again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Protocol

from ..core.actor import Actor
from ..errors import ChildNotFound
from ..events import (
    ActorEnded,
    ActorFailed,
    ActorStarted,
    ChildRemoved,
    ChildRestarted,
    Escalated,
    Event,
    EventsDropped,
    Quarantined,
)
from ..instrument import Instrumentation
from ..leases.events import LeaseAcquired, LeaseLost
from ..messages import ActorStatus, State
from ..supervision.face import Supervisor

__all__ = ["LifecycleSink", "LifecycleWatcher", "Watchers", "coarse_state"]

logger = logging.getLogger("supervised_loops.telemetry")

_ENDED = {
    State.STOPPED: "stopped",
    State.CANCELLED: "cancelled",
    State.FAILED: "failed",
    State.QUARANTINED: "quarantined",
}


def coarse_state(state: State) -> str | None:
    """The lifecycle state counted for ``state``; None for an actor never started."""
    if state is State.IDLE:
        return None
    return _ENDED.get(state, "running")


class LifecycleSink(Protocol):
    """What a watcher reports to (an exporter implements it)."""

    def actor_moved(self, path: str, old: str | None, new: str) -> None:
        """The actor at ``path`` went from lifecycle state ``old`` (None: unseen) to ``new``."""

    def actor_left(self, path: str, old: str) -> None:
        """The actor at ``path``, last in state ``old``, ended for good: it is no longer counted."""

    def child_restarted(self, path: str, reason: str) -> None:
        """A supervisor restarted the child at ``path`` (``reason`` is free text)."""

    def escalated(self, path: str) -> None:
        """The actor at ``path`` passed a failure up to its parent."""

    def lease_changed(self, path: str, held: bool, transition: str) -> None:
        """The actor at ``path`` got (``held``) or gave up its lease.

        ``transition`` is ``acquired``, ``released`` (its run ended while
        holding it) or ``lost: <reason>`` (refused, deadline passed,
        unreachable): a bounded set, never a fencing token.
        """


class LifecycleWatcher:
    """Follows one tree's events, keeps each actor's lifecycle state, reports changes.

    Args:
        tree: the actor whose subtree is watched (usually the root supervisor).
        sink: who is told.

    `states` maps each path seen to its lifecycle state; `running` maps
    the paths of running actors to the actors themselves (what a mailbox
    depth is read from). Both are replaced, never mutated, so another
    thread (an OpenTelemetry metric reader) can read them without a lock.
    """

    def __init__(self, tree: Actor, sink: LifecycleSink) -> None:
        self._tree = tree
        self._sink = sink
        self.states: dict[str, str] = {}
        self.running: dict[str, Actor] = {}
        self.leases: set[str] = set()  # the paths holding their lease

    # -- the state of the tree now -------------------------------------------------

    def seed(self) -> None:
        """Take every actor's state from the tree's status, reporting each change.

        An actor counted before and no longer in the tree (or in a tree whose
        root ended for good) leaves.
        """
        states = dict(self.states)
        running: dict[str, Actor] = {}
        present: set[str] = set()
        root = self._tree.status()
        if coarse_state(root.state) == "running" or self._tree.parent is not None:
            for status in _walk(root):
                new = coarse_state(status.state)
                if new is None:
                    continue
                present.add(status.path)
                old = states.get(status.path)
                if old != new:
                    states[status.path] = new
                    self._sink.actor_moved(status.path, old, new)
                if new == "running":
                    actor = self._find(status.path)
                    if actor is not None:
                        running[status.path] = actor
        for path in [path for path in states if path not in present]:
            self._sink.actor_left(path, states.pop(path))
        self.states = states
        self.running = running

    def _find(self, path: str) -> Actor | None:
        tree = self._tree
        if path == tree.path:
            return tree
        prefix = tree.path + "/"
        if not isinstance(tree, Supervisor) or not path.startswith(prefix):
            return None
        try:
            return tree.lookup(path[len(prefix) :])
        except ChildNotFound:
            return None

    # -- following events ----------------------------------------------------------

    def handle(self, event: Event) -> None:
        """Apply one event (a pure function of the event and the states kept)."""
        if isinstance(event, ActorStarted):
            self._move(event.path, "running")
        elif isinstance(event, ActorEnded):
            self._end(event.path, "cancelled" if event.cancelled else "stopped")
        elif isinstance(event, ActorFailed):
            self._end(event.path, "failed")
        elif isinstance(event, ChildRemoved):
            self._leave(event.path)
        elif isinstance(event, Quarantined):
            self._move(event.path, "quarantined")
        elif isinstance(event, ChildRestarted):
            self._sink.child_restarted(event.path, event.reason)
        elif isinstance(event, Escalated):
            self._sink.escalated(event.path)
        elif isinstance(event, LeaseAcquired):
            self.leases.add(event.path)
            self._sink.lease_changed(event.path, True, "acquired")
        elif isinstance(event, LeaseLost):
            self.leases.discard(event.path)
            self._sink.lease_changed(event.path, False, f"lost: {event.reason}")
        elif isinstance(event, EventsDropped):
            # Some changes were lost: the status is the truth.
            self.seed()

    def _end(self, path: str, new: str) -> None:
        self._move(path, new)
        if path == self._tree.path and self._tree.parent is None:
            # Nothing starts the root again by itself: it and its subtree leave.
            self._leave(path)

    def _leave(self, path: str) -> None:
        """The actor at ``path`` ended for good: it and everything below it leave."""
        below = path + "/"
        gone = [p for p in self.states if p == path or p.startswith(below)]
        if not gone:
            return
        for left in gone:
            if left in self.leases:
                self.leases.discard(left)
                self._sink.lease_changed(left, False, "released")
        before = self.states
        self.states = {p: s for p, s in before.items() if p not in gone}
        self.running = {p: a for p, a in self.running.items() if p not in gone}
        for left in gone:
            self._sink.actor_left(left, before[left])

    def _move(self, path: str, new: str) -> None:
        if new != "running" and path in self.leases:
            # A run that ends gives its lease back (no event says so).
            self.leases.discard(path)
            self._sink.lease_changed(path, False, "released")
        old = self.states.get(path)
        if new == "running":
            actor = self._find(path)
            if actor is not None:
                self.running = {**self.running, path: actor}
        elif path in self.running:
            self.running = {p: a for p, a in self.running.items() if p != path}
        if old == new:
            return
        self.states = {**self.states, path: new}
        self._sink.actor_moved(path, old, new)

    @contextlib.asynccontextmanager
    async def watching(self) -> AsyncIterator[LifecycleWatcher]:
        """Follow the tree's events in a task until the block ends.

        The subscription is made and the states seeded before the block is
        entered, with no await between them, so no change falls in a gap.
        Leaving the block applies the events already published, then ends
        the watch; if the block's task is cancelled meanwhile, the watch
        ends at once and the cancellation propagates.
        """
        subscription = self._tree.events(max_pending=10_000)
        self.seed()

        async def follow() -> None:
            async for event in subscription:
                self.handle(event)

        task = asyncio.ensure_future(follow())
        try:
            yield self
        finally:
            # Closed, the subscription still yields what it holds: the
            # changes made up to now are all counted before the block ends.
            subscription.close()
            try:
                await task
            except asyncio.CancelledError:
                task.cancel()
                raise


def _walk(status: ActorStatus) -> Iterator[ActorStatus]:
    yield status
    for child in status.children:
        yield from _walk(child)


class Watchers:
    """The trees one exporter follows, and the wiring of `observe`.

    Args:
        exporter: the Instrumentation and LifecycleSink being wired.
    """

    def __init__(self, exporter: _Exporter) -> None:
        self._exporter = exporter
        self._watching: tuple[LifecycleWatcher, ...] = ()

    def running(self) -> Iterator[tuple[str, Actor]]:
        """``(path, actor)`` for each running actor of the trees followed.

        Safe from another thread (a metric reader's): the maps read are
        replaced, never mutated.
        """
        for watcher in self._watching:
            yield from tuple(watcher.running.items())

    @contextlib.asynccontextmanager
    async def observe(self, tree: Actor) -> AsyncIterator[None]:
        """Install the exporter for iterations and follow ``tree`` while the block runs.

        Iterations are received process-wide (loops outside ``tree`` are
        reported too), lifecycle changes from ``tree``. Leaving the block
        counts the events already published, then uninstalls the exporter
        unless it was installed before; cancellation ends it the same way.
        """
        exporter = self._exporter
        installed_here = not exporter.is_installed
        watcher = LifecycleWatcher(tree, exporter)
        self._watching = (*self._watching, watcher)
        if installed_here:
            exporter.install()
        try:
            async with watcher.watching():
                yield
        finally:
            self._watching = tuple(w for w in self._watching if w is not watcher)
            if installed_here:
                exporter.uninstall()


class _Exporter(Instrumentation, LifecycleSink, Protocol):
    """Both halves of an exporter, and how it is put in force."""

    @property
    def is_installed(self) -> bool: ...

    def install(self) -> None: ...

    def uninstall(self) -> None: ...
