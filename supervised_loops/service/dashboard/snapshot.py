"""The tree as rows the page draws, and what changed since a browser's last look.

A *row* is one actor: its status fields, for a supervisor its restart
intensity and (when unfolded) its children's paths, for a loop the version
of its ring of recent iterations (`supervised_loops.loops.recent`), whose
contents go with the row when it changed. What it costs must not grow
with the tree, since the dashboard shares the event loop with the actors:
a `View` builds only the rows a browser can see — the root, and the
children of each unfolded supervisor — so a tree of 10 000 loops in a
hundred folded supervisors costs a hundred rows per update, not ten
thousand statuses.

Supervisors are unfolded by default when they have at most `FOLD_ABOVE`
children (the root always); the browser sends the ones the person opened or
closed. A supervisor's row comes from what its lifecycle events said (state,
restarts, failures, last error: `History.actors`), never from its status,
which would walk its whole subtree.

The period of a view adapts so that the dashboard's own work stays a small
share of the event loop: never shorter than the configured interval, never
shorter than `BUDGET_FACTOR` times what the last update cost to build.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from typing import Any

from ...clock import get_clock
from ...core.actor import Actor
from ...loops.face import Loop
from ...loops.recent import RecentIterations
from ...messages import ActorStatus, State
from ...supervision.face import Supervisor
from .history import History
from .watch import Watch

__all__ = ["BUDGET_FACTOR", "FOLD_ABOVE", "Sent", "View", "row_of_status", "rows_of"]

#: The period is at least this many times an update's cost (1/20: 5 %).
BUDGET_FACTOR = 20.0

#: Supervisors with more children than this start folded (the root never).
FOLD_ABOVE = 20

Row = dict[str, Any]
Limits = Callable[[str], "tuple[int, float] | None"]
#: The ring of the loop at a path, or None (not a loop, gone, or without a ring).
RecentOf = Callable[[str], "RecentIterations | None"]


def _next(status: ActorStatus) -> float | None:
    # To 10 ms: the status derives it from the monotonic clock anew each
    # time, and a microsecond of jitter must not count as a change.
    upcoming = status.next_iteration
    return None if upcoming is None else round(upcoming.timestamp(), 2)


_ENDED = frozenset({State.STOPPED.value, State.CANCELLED.value, State.FAILED.value})


def _intensity(path: str, history: History, limits: Limits) -> list[Any] | None:
    found = limits(path)
    if found is None:
        return None
    return [history.intensity(path, get_clock().wall()), found[0], found[1]]


def row_of_status(
    status: ActorStatus, history: History, limits: Limits, ring: RecentIterations | None
) -> Row:
    """The row of one actor from its full status (``ring``: its recent iterations)."""
    row: Row = {
        "name": status.name,
        "kind": status.kind,
        "state": status.state.value,
        "iteration": status.current_loop,
        "next": _next(status),
        "failures": status.failures,
        "restarts": status.restarts,
        "error": status.last_error,
        "schedule": status.schedule,
    }
    if status.kind == "supervisor":
        row["children"] = [child.path for child in status.children]
        row["intensity"] = _intensity(status.path, history, limits)
    if ring is not None:
        row["hv"] = ring.version
    return row


def rows_of(
    status: ActorStatus, history: History, limits: Limits, recent_of: RecentOf
) -> dict[str, Row]:
    """Every actor of ``status`` (the actor and its whole subtree) as rows by path.

    For ``GET /api/state``: it costs a full status of the subtree.
    """
    rows: dict[str, Row] = {}
    stack = [status]
    while stack:
        current = stack.pop()
        ring = recent_of(current.path) if current.kind == "loop" else None
        rows[current.path] = row_of_status(current, history, limits, ring)
        stack.extend(reversed(current.children))
    return rows


class View:
    """The rows one browser can see, rebuilt at most once per period.

    Args:
        tree: the root.
        history: every actor's lifecycle record.
        limits: a supervisor's ``(max_restarts, max_seconds)`` by path.
        watch: gives the loops in the view their rings (and takes them back later).
        opened, closed: supervisors the browser unfolded or folded, by path
            (the others follow `FOLD_ABOVE`).
        interval: the shortest period, in seconds.
    """

    def __init__(
        self,
        tree: Supervisor,
        history: History,
        limits: Limits,
        watch: Watch,
        *,
        opened: Collection[str] = (),
        closed: Collection[str] = (),
        interval: float = 1.0,
    ) -> None:
        self._tree = tree
        self._history = history
        self._limits = limits
        self._watch = watch
        self._opened = frozenset(opened)
        self._closed = frozenset(closed)
        self._interval = interval
        #: Seconds until the next update (grows with the cost of the last).
        self.period = interval
        self._visible: set[str] = set()

    def rows(self) -> dict[str, Row]:
        """The visible rows, by path; adjusts `period` to their cost."""
        began = time.perf_counter()
        rows: dict[str, Row] = {}
        self._add(self._tree, rows)
        self._watch.sweep()
        self._visible = set(rows)
        self.period = max(self._interval, (time.perf_counter() - began) * BUDGET_FACTOR)
        return rows

    def row(self, actor: Actor) -> dict[str, Row]:
        """The rows an event about ``actor`` may change, among those the browser saw last.

        Its own row, and its parent's: a child's event can change its
        supervisor's state (the first child to end during a shutdown shows
        the supervisor ``stopping``).
        """
        rows: dict[str, Row] = {}
        if actor.path in self._visible:
            self._add(actor, rows, deep=False)
        parent = actor.parent
        if parent is not None and parent.path in self._visible:
            self._add(parent, rows, deep=False)
        return rows

    def _add(self, actor: Actor, rows: dict[str, Row], *, deep: bool = True) -> None:
        path = actor.path
        if not isinstance(actor, Supervisor):
            ring = self._watch.see(actor) if isinstance(actor, Loop) else None
            rows[path] = row_of_status(actor.status(), self._history, self._limits, ring)
            return
        known = self._history.children.get(path, {})
        is_open = (
            path == self._tree.path
            or path in self._opened
            or (path not in self._closed and len(known) <= FOLD_ABOVE)
        )
        children = list(known) if is_open else None
        record = self._history.actor(path)
        # The state from the supervisor itself (one attribute read; its status
        # would walk its subtree), not from the events the history has seen:
        # a browser's stream may get an event before the history does, and
        # ``stopping`` is announced by no event. Quarantine is its parent's
        # decision about an ended supervisor: known from its event.
        state = actor._own_state().value
        if record.state == State.QUARANTINED.value and state in _ENDED:
            state = record.state
        rows[path] = {
            "name": actor.name,
            "kind": "supervisor",
            "state": state,
            "iteration": 0,
            "next": None,
            "failures": record.failures,
            "restarts": record.restarts,
            "error": record.error,
            "schedule": None,
            "intensity": _intensity(path, self._history, self._limits),
            "count": len(known),
            "children": children,
        }
        if children is None or not deep:
            return
        for child_path in children:
            try:
                child = actor.lookup(child_path.rpartition("/")[2])
            except LookupError:  # deleted from the tree: forget it
                self._history.forget(child_path)
                continue
            self._add(child, rows)


class Sent:
    """What one browser has been sent: the rows it holds, and how far each chart goes.

    A loop's chart is sent whole the first time, then only the iterations
    the browser has not had (about two a second for a loop every 0.5 s,
    instead of sixty): the page appends them.

    Args:
        recent_of: the ring of a loop by path, for the rows that changed.
    """

    def __init__(self, recent_of: RecentOf) -> None:
        self._recent_of = recent_of
        self._rows: dict[str, Row] = {}
        self._charts: dict[str, tuple[RecentIterations, int]] = {}

    def forget(self) -> None:
        """The browser lost events: send it everything next time."""
        self._rows.clear()
        self._charts.clear()

    def changes(self, rows: dict[str, Row], *, full: bool = False) -> dict[str, Any]:
        """The rows changed since the last call, and the paths gone.

        With ``full``, ``rows`` is all the browser sees (so rows not in it
        are gone); otherwise a part, and nothing is reported gone. A changed
        loop row carries under ``"history"`` the iterations its browser has
        not had (`RecentIterations.recent`).
        """
        sent = self._rows
        changed: dict[str, Row] = {}
        for path, row in rows.items():
            if sent.get(path) != row:
                sent[path] = row
                ring = self._recent_of(path) if "hv" in row else None
                changed[path] = row if ring is None else {**row, "history": self._chart(path, ring)}
        removed: list[str] = []
        if full and len(sent) != len(rows):
            removed = [path for path in sent if path not in rows]
            for path in removed:
                del sent[path]
                self._charts.pop(path, None)
        return {"rows": changed, "removed": removed}

    def _chart(self, path: str, ring: RecentIterations) -> dict[str, Any]:
        had = self._charts.get(path)
        since = had[1] if had is not None and had[0] is ring else 0  # a new ring: all of it
        self._charts[path] = (ring, ring.count)
        return ring.recent(since)
