"""What the dashboard remembers besides the loops' rings: recent events, each actor.

Each loop's recent iterations are in the loop itself while the dashboard is
open (`supervised_loops.loops.recent`: the engine writes them, at a cost the
instrumentation hook could not match). What is kept here comes from the
lifecycle events: for the whole tree the last `EVENTS_KEPT` events (the
timeline), each actor's record as its events describe it (the rows of
supervisors), and each supervisor's restarts within its intensity window.

Memory is bounded whatever runs, for however long:

* actors remembered: at most `ACTORS_KEPT` (the least recently created
  entries are forgotten first, for trees that keep adding children), each
  under 200 bytes (state, counts, last error);
* events: ``EVENTS_KEPT`` small dictionaries;
* restart windows: ``max_restarts + 1`` times per supervisor.

Everything here runs on the event loop's thread.
"""

from __future__ import annotations

import collections
import datetime as dt
from collections.abc import Callable
from typing import Any

import attrs

from ...events import (
    ActorEnded,
    ActorFailed,
    ActorStarted,
    ChildRestarted,
    Escalated,
    Event,
    Quarantined,
)
from ...messages import ActorStatus
from ...supervision.intensity import RestartWindow

__all__ = ["ACTORS_KEPT", "EVENTS_KEPT", "ActorRecord", "History", "event_to_json"]

#: Lifecycle events remembered for the timeline.
EVENTS_KEPT = 500

#: Actors remembered; beyond it the oldest entries are forgotten.
ACTORS_KEPT = 100_000


def event_to_json(event: Event) -> dict[str, Any]:
    """An event as the page shows it: ``type``, ``path``, ``at`` and its own fields."""
    fields = attrs.asdict(event, recurse=False)
    fields.pop("path")
    fields.pop("at")
    return {"type": type(event).__name__, "path": event.path, "at": event.at.isoformat(), **fields}


Limits = Callable[[str], "tuple[int, float] | None"]


class ActorRecord:
    """An actor as its lifecycle events describe it (rows of supervisors use it).

    A supervisor's own status walks its whole subtree; the dashboard must not
    pay that for a folded supervisor of ten thousand loops, so it keeps what
    the events say instead.
    """

    __slots__ = ("error", "failures", "restarts", "state")

    def __init__(self) -> None:
        self.state = "idle"
        self.restarts = 0
        self.failures = 0
        self.error: str | None = None


class History:
    """The tree's recent events and each actor's record; feed it events with `record`.

    Args:
        limits: ``limits(supervisor_path)`` returns that supervisor's
            ``(max_restarts, max_seconds)``, or None if there is no such
            supervisor: restart windows are kept for the ones it knows.
    """

    def __init__(self, limits: Limits | None = None) -> None:
        self._limits = limits
        self.events: collections.deque[dict[str, Any]] = collections.deque(maxlen=EVENTS_KEPT)
        self._windows: dict[str, RestartWindow] = {}
        #: Every actor known, by path, as its lifecycle events describe it.
        self.actors: dict[str, ActorRecord] = {}
        #: The children of each actor, by path, in start order.
        self.children: dict[str, dict[str, None]] = {}

    # Lifecycle events.

    def record(self, event: Event) -> None:
        """Remember ``event`` for the timeline; count a restart in its supervisor's window."""
        self.events.append(event_to_json(event))
        if isinstance(event, ActorStarted):
            self.actor(event.path).state = "running"
        elif isinstance(event, ActorEnded):
            self.actor(event.path).state = "cancelled" if event.cancelled else "stopped"
        elif isinstance(event, ActorFailed):
            found = self.actor(event.path)
            found.state = "failed"
            found.failures += 1
            found.error = event.error
        elif isinstance(event, Escalated):
            self.actor(event.path).error = event.error
        elif isinstance(event, Quarantined):
            self.actor(event.path).state = "quarantined"
        elif isinstance(event, ChildRestarted):
            self.actor(event.path).restarts += 1
        if isinstance(event, ChildRestarted) and self._limits is not None:
            supervisor = event.path.rpartition("/")[0]
            window = self._window(supervisor)
            if window is not None:
                window.add(event.at.timestamp())

    def actor(self, path: str) -> ActorRecord:
        """The record of the actor at ``path``, created (and listed under its parent) if new."""
        found = self.actors.get(path)
        if found is None:
            if len(self.actors) >= ACTORS_KEPT:
                self.forget(next(iter(self.actors)))
            found = self.actors[path] = ActorRecord()
            parent, _, _ = path.rpartition("/")
            if parent:
                self.children.setdefault(parent, {})[path] = None
        return found

    def forget(self, path: str) -> None:
        """Forget the actor at ``path`` (it is gone from the tree)."""
        self.actors.pop(path, None)
        self.children.pop(path, None)
        siblings = self.children.get(path.rpartition("/")[0])
        if siblings is not None:
            siblings.pop(path, None)

    def seed(self, status: ActorStatus) -> None:
        """Learn the tree as it is now (before any event), from one full status."""
        stack = [status]
        while stack:
            current = stack.pop()
            found = self.actor(current.path)
            found.state = current.state.value
            found.restarts = current.restarts
            found.failures = current.failures
            found.error = current.last_error
            stack.extend(reversed(current.children))

    def _window(self, supervisor: str) -> RestartWindow | None:
        window = self._windows.get(supervisor)
        if window is None and self._limits is not None:
            limits = self._limits(supervisor)
            if limits is not None:
                window = self._windows[supervisor] = RestartWindow(*limits)
        return window

    def intensity(self, supervisor: str, now: dt.datetime) -> int:
        """Restarts made by ``supervisor`` that still count in its window at ``now``."""
        window = self._windows.get(supervisor)
        return 0 if window is None else window.count(now.timestamp())
