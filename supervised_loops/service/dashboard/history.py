"""What the dashboard remembers: each loop's recent iterations, recent events.

The loop engine reports every iteration to the process-wide instrumentation
hook (`supervised_loops.instrument`); `History` is such an instrumentation.
It keeps, per loop, the last `ITERATIONS_KEPT` iterations (duration,
lateness, outcome) in fixed-size arrays, the traceback of the last failed
iteration, and for the whole tree the last `EVENTS_KEPT` lifecycle events
and each supervisor's restarts within its intensity window.

Memory is bounded whatever runs, for however long:

* per loop: ``ITERATIONS_KEPT`` × 24 bytes of ring buffer, about 2 KiB
  with its bookkeeping and a short traceback (at most `TRACEBACK_CHARS`);
* loops remembered: at most `LOOPS_KEPT` (the least recently created
  entries are forgotten first, for trees that keep adding children), and as
  many actors' lifecycle records (state, counts, last error; under 200 bytes);
* events: ``EVENTS_KEPT`` small dictionaries;
* restart windows: ``max_restarts + 1`` times per supervisor.

A tree of 10 000 loops therefore holds about 21 MiB of history
(``bench/bench_dashboard.py`` measures it).

Recording an iteration allocates nothing and does no I/O: it is one call
per iteration, at its end, with plain values (`observes_starts` is False),
and it writes three consecutive slots of one array of floats and a counter.
Everything here runs on the event loop's thread.
"""

from __future__ import annotations

import array
import collections
import datetime as dt
import traceback
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
from ...instrument import Outcome, SkipReason, Trigger
from ...messages import ActorStatus
from ...supervision.intensity import RestartWindow

__all__ = [
    "EVENTS_KEPT",
    "ITERATIONS_KEPT",
    "LOOPS_KEPT",
    "TRACEBACK_CHARS",
    "ActorRecord",
    "History",
    "LoopHistory",
    "event_to_json",
]

#: Iterations remembered per loop (the chart and the outcome strip).
ITERATIONS_KEPT = 60

#: Lifecycle events remembered for the timeline.
EVENTS_KEPT = 500

#: Loops remembered; beyond it the oldest entries are forgotten.
LOOPS_KEPT = 100_000

#: Longest traceback kept per loop (its end, where the error is, is kept).
TRACEBACK_CHARS = 16_000

_CODES: dict[str, float] = {"ok": 0.0, "retried": 1.0, "failed": 2.0, "cancelled": 3.0}
_LETTERS = "orfc"


class LoopHistory:
    """The recent iterations of one loop, in one ring buffer of fixed size.

    Each iteration takes three consecutive doubles (duration, lateness,
    outcome code) of one array: recording one touches a single buffer, which
    matters when ten thousand loops take turns.
    """

    __slots__ = (
        "_ring",
        "count",
        "skipped",
        "traceback",
        "traceback_iteration",
    )

    def __init__(self) -> None:
        self._ring = array.array("d", bytes(8 * 3 * ITERATIONS_KEPT))
        #: Iterations recorded in total (the ring holds the last ITERATIONS_KEPT).
        self.count = 0
        #: Due iterations that did not run (overlap, missed, paused, standby).
        self.skipped = 0
        #: The formatted traceback of the last failed iteration, or None.
        self.traceback: str | None = None
        #: The iteration number that traceback belongs to.
        self.traceback_iteration = 0

    @property
    def version(self) -> int:
        """Changes whenever anything above does (lets readers skip unchanged loops).

        Derived, not stored: both counts only grow, and a traceback comes
        with a counted iteration, so recording an iteration writes one
        counter less.
        """
        return self.count + self.skipped

    def add(self, duration: float, lateness: float, outcome: Outcome) -> None:
        """Record one ended iteration."""
        ring = self._ring
        slot = 3 * (self.count % ITERATIONS_KEPT)
        ring[slot] = duration
        ring[slot + 1] = lateness
        ring[slot + 2] = _CODES[outcome]
        self.count += 1

    def recent(self) -> dict[str, Any]:
        """The remembered iterations, oldest first, as JSON-ready lists.

        ``durations`` and ``lateness`` in milliseconds (rounded to 0.01 ms),
        ``outcomes`` a string of ``o`` (ok), ``r`` (retried), ``f`` (failed)
        and ``c`` (cancelled).
        """
        kept = min(self.count, ITERATIONS_KEPT)
        start = self.count - kept
        ring = self._ring
        order = [3 * ((start + i) % ITERATIONS_KEPT) for i in range(kept)]
        return {
            "count": self.count,
            "skipped": self.skipped,
            "durations": [round(ring[i] * 1000, 2) for i in order],
            "lateness": [round(ring[i + 1] * 1000, 2) for i in order],
            "outcomes": "".join(_LETTERS[int(ring[i + 2])] for i in order),
            "traceback": self.traceback is not None,
        }


def _format(error: BaseException) -> str:
    text = "".join(traceback.format_exception(error))
    if len(text) > TRACEBACK_CHARS:
        text = "…" + text[-(TRACEBACK_CHARS - 1) :]
    return text


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
    """Per-loop iteration history and the tree's recent events.

    An `Instrumentation` (attach it with `supervised_loops.telemetry.fanout.attach`); feed it
    lifecycle events with `record`.

    Args:
        limits: ``limits(supervisor_path)`` returns that supervisor's
            ``(max_restarts, max_seconds)``, or None if there is no such
            supervisor: restart windows are kept for the ones it knows.
    """

    def __init__(self, limits: Limits | None = None) -> None:
        self._limits = limits
        self.loops: dict[str, LoopHistory] = {}
        self.events: collections.deque[dict[str, Any]] = collections.deque(maxlen=EVENTS_KEPT)
        self._windows: dict[str, RestartWindow] = {}
        #: Every actor known, by path, as its lifecycle events describe it.
        self.actors: dict[str, ActorRecord] = {}
        #: The children of each actor, by path, in start order.
        self.children: dict[str, dict[str, None]] = {}

    def loop(self, path: str) -> LoopHistory:
        """The history of the loop at ``path``, created empty if new."""
        found = self.loops.get(path)
        if found is None:
            if len(self.loops) >= LOOPS_KEPT:
                del self.loops[next(iter(self.loops))]
            found = self.loops[path] = LoopHistory()
        return found

    # The Instrumentation protocol: called by the loop engine, must not raise.

    #: Everything it keeps is known at an iteration's end: one call per iteration.
    observes_starts = False

    def iteration_started(
        self,
        path: str,
        name: str,
        iteration: int,
        trigger: Trigger,
        attempt: int,
        scheduled: float,
        started: float,
    ) -> object:
        return None  # not called: observes_starts is False

    def iteration_ended(
        self,
        path: str,
        name: str,
        iteration: int,
        trigger: Trigger,
        attempt: int,
        scheduled: float,
        started: float,
        ended: float,
        outcome: Outcome,
        error: BaseException | None,
        token: object,
    ) -> None:
        found = self.loops.get(path)
        if found is None:
            found = self.loop(path)
        # LoopHistory.add, inlined: this runs for every iteration of every loop.
        ring = found._ring
        count = found.count
        slot = 3 * (count % ITERATIONS_KEPT)
        ring[slot] = ended - started
        ring[slot + 1] = started - scheduled
        ring[slot + 2] = _CODES[outcome]
        found.count = count + 1
        if error is not None and outcome != "cancelled":
            found.traceback = _format(error)
            found.traceback_iteration = iteration

    def iteration_skipped(self, path: str, name: str, reason: SkipReason) -> None:
        found = self.loop(path)
        found.skipped += 1

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
            if len(self.actors) >= LOOPS_KEPT:
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
