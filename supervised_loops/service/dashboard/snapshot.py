"""The tree as rows the page draws, and what changed since a client's last look.

A *row* is one actor: its status fields, for a supervisor its children's
paths and its restart intensity, for a loop its recent iterations. The
server computes the rows of the whole tree at most once per period, however
many browsers are connected (`Snapshots`), and sends each browser only the
rows that changed since it last heard (`Sent`).

The period adapts so that the dashboard's own work stays a small share of
the event loop: it is never shorter than the configured interval, and never
shorter than `BUDGET_FACTOR` times what the last snapshot cost to build.
A tree of a hundred loops is redrawn every second; a tree so large that a
snapshot costs 100 ms is redrawn every 2 s, keeping the dashboard under 5 %
of the loop's time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ...clock import get_clock
from ...messages import ActorStatus
from .history import History

__all__ = ["BUDGET_FACTOR", "Sent", "Snapshot", "Snapshots", "rows_of"]

#: The period is at least this many times a snapshot's cost (1/20: 5 %).
BUDGET_FACTOR = 20.0

Row = dict[str, Any]


def _row(status: ActorStatus, history: History, limits: Callable[[str], Any]) -> Row:
    upcoming = status.next_iteration
    row: Row = {
        "name": status.name,
        "kind": status.kind,
        "state": status.state.value,
        "iteration": status.current_loop,
        # To 10 ms: the status derives it from the monotonic clock anew each
        # time, and a microsecond of jitter must not count as a change.
        "next": None if upcoming is None else round(upcoming.timestamp(), 2),
        "failures": status.failures,
        "restarts": status.restarts,
        "error": status.last_error,
        "schedule": status.schedule,
    }
    if status.kind == "supervisor":
        row["children"] = [child.path for child in status.children]
        found = limits(status.path)
        if found is not None:
            now = get_clock().wall()
            row["intensity"] = [history.intensity(status.path, now), found[0], found[1]]
    loop = history.loops.get(status.path)
    if loop is not None:
        row["hv"] = loop.version
    return row


def rows_of(status: ActorStatus, history: History, limits: Callable[[str], Any]) -> dict[str, Row]:
    """Every actor of ``status`` (the actor and its subtree) as rows by path."""
    rows: dict[str, Row] = {}
    stack = [status]
    while stack:
        current = stack.pop()
        rows[current.path] = _row(current, history, limits)
        stack.extend(reversed(current.children))
    return rows


class Snapshot:
    """The rows of the whole tree at one moment, and how long to keep them."""

    __slots__ = ("period", "root", "rows", "taken")

    def __init__(self, root: str, rows: dict[str, Row], taken: float, period: float) -> None:
        self.root = root
        self.rows = rows
        self.taken = taken
        self.period = period


class Snapshots:
    """The current `Snapshot`, rebuilt when a client asks after it has aged one period."""

    def __init__(
        self,
        status: Callable[[], ActorStatus],
        history: History,
        limits: Callable[[str], Any],
        *,
        interval: float,
    ) -> None:
        self._status = status
        self._history = history
        self._limits = limits
        self._interval = interval
        self._current: Snapshot | None = None

    def current(self, now: float) -> Snapshot:
        """The snapshot in force at ``now`` (event-loop clock), built if stale."""
        found = self._current
        if found is not None and now < found.taken + found.period:
            return found
        began = time.perf_counter()
        status = self._status()
        rows = rows_of(status, self._history, self._limits)
        cost = time.perf_counter() - began
        period = max(self._interval, cost * BUDGET_FACTOR)
        self._current = Snapshot(status.path, rows, now, period)
        return self._current


class Sent:
    """What one browser has been sent: the rows it holds and the history versions."""

    def __init__(self, history: History) -> None:
        self._history = history
        self._rows: dict[str, Row] = {}

    def forget(self) -> None:
        """The browser lost events: send it everything next time."""
        self._rows.clear()

    def changes(self, rows: dict[str, Row], *, full: bool = False) -> dict[str, Any]:
        """The rows changed since the last call, and the paths gone.

        With ``full``, ``rows`` is the whole tree (so rows not in it are
        gone); otherwise a subtree, and nothing is reported gone. A changed
        loop row carries its recent iterations under ``"history"``.
        """
        sent = self._rows
        changed: dict[str, Row] = {}
        for path, row in rows.items():
            if sent.get(path) != row:
                sent[path] = row
                loop = self._history.loops.get(path)
                changed[path] = row if loop is None else {**row, "history": loop.recent()}
        removed: list[str] = []
        if full and len(sent) != len(rows):
            removed = [path for path in sent if path not in rows]
            for path in removed:
                del sent[path]
        return {"rows": changed, "removed": removed}
