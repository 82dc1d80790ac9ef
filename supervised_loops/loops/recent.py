"""Each loop's recent iterations, kept while something shows them (the dashboard).

Why not through the instrumentation hook (`supervised_loops.instrument`):
the hook streams every iteration out, eleven values through two calls, and
a consumer that keeps a chart per loop must then find that loop's record by
its path. Here the loop holds its own ring and the engine writes three
numbers into it at the end of each iteration: one call, no lookup, no
allocation. Still, at ten thousand loops the memory a ring adds to each
iteration shows, so rings are given to the loops that need one, not to all:

* `attach` gives a loop its ring, `detach` takes it (the dashboard attaches
  the loops a browser shows, ``service.dashboard.watch``, and detaches every
  loop of its tree when it closes); a loop keeps its ring across its runs;
* while recording is on (`start_recording`, counted: two dashboards may
  record at once), a loop whose iteration fails (retried or not; a
  cancellation does not count) gets a ring if it has none, so the failure
  and its traceback are kept.

What a ring holds, per loop: the last `ITERATIONS_KEPT` iterations (duration,
lateness, outcome), how many due iterations were skipped, and the traceback
of the last failed iteration (its end, at most `TRACEBACK_CHARS`). Memory per
loop: about 2.1 KiB with a short traceback (``bench/bench_dashboard.py``
measures it), whatever the loop does and for however long; nothing for a
loop without a ring.

Everything here runs on the event loop's thread, called by the loop engine.

May import: ``instrument`` (for the outcome names) and the standard library.
"""

from __future__ import annotations

import traceback as tracebacks
from typing import Any, Final, Protocol

from ..instrument import Outcome

__all__ = [
    "ITERATIONS_KEPT",
    "TRACEBACK_CHARS",
    "RecentIterations",
    "attach",
    "detach",
    "of",
    "recording",
    "start_recording",
    "stop_recording",
]

#: Iterations remembered per loop (the dashboard's chart and outcome strip).
ITERATIONS_KEPT: Final = 60

#: Longest traceback kept per loop (its end, where the error is, is kept).
TRACEBACK_CHARS: Final = 16_000

#: Outcome codes as stored in a ring (a double per iteration), and back.
CODES: Final[dict[str, float]] = {"ok": 0.0, "retried": 1.0, "failed": 2.0, "cancelled": 3.0}
_LETTERS = "orfc"

_WIDTH = 3  # doubles per iteration: duration, lateness, outcome code
_END = _WIDTH * ITERATIONS_KEPT

_recorders = 0


class RecentIterations:
    """The recent iterations of one loop, in one ring of fixed size.

    Each iteration takes three consecutive doubles of one buffer (duration,
    lateness, outcome code); the write position is a small integer, so
    recording allocates nothing.
    """

    __slots__ = ("_at", "_ring", "laps", "skipped", "traceback", "traceback_iteration")

    def __init__(self) -> None:
        # A memoryview of doubles: its item assignment is about twice as
        # fast as an array's.
        self._ring = memoryview(bytearray(8 * _END)).cast("d")
        self._at = 0  # the next iteration's first slot
        #: Times the ring has been filled (count = laps * ITERATIONS_KEPT + position).
        self.laps = 0
        #: Due iterations that did not run (overlap, missed, paused).
        self.skipped = 0
        #: The formatted traceback of the last failed iteration, or None.
        self.traceback: str | None = None
        #: The loop's iteration counter when that failure happened.
        self.traceback_iteration = 0

    @property
    def count(self) -> int:
        """Iterations recorded in total (the ring holds the last `ITERATIONS_KEPT`)."""
        return self.laps * ITERATIONS_KEPT + self._at // _WIDTH

    @property
    def version(self) -> int:
        """Changes whenever anything `recent` shows does (readers skip unchanged loops).

        Both counts only grow, and a traceback comes with a counted iteration.
        """
        return self.count + self.skipped

    def add(self, started: float, ended: float, scheduled: float, code: float) -> None:
        """Record an iteration that ran from ``started`` to ``ended``, due at ``scheduled``.

        ``code`` is the outcome's `CODES` value. The hot path of a recorded
        loop: keep it free of calls and allocations.
        """
        ring = self._ring
        at = self._at
        ring[at] = ended - started
        ring[at + 1] = started - scheduled
        ring[at + 2] = code
        at += _WIDTH
        if at == _END:
            at = 0
            self.laps += 1
        self._at = at

    def add_outcome(
        self,
        started: float,
        ended: float,
        scheduled: float,
        outcome: Outcome,
        error: BaseException | None,
        iteration: int,
    ) -> None:
        """Record an iteration that did not simply succeed; keep its traceback if it failed."""
        self.add(started, ended, scheduled, CODES[outcome])
        if error is not None and outcome != "cancelled":
            self.traceback = _format(error)
            self.traceback_iteration = iteration

    def recent(self, since: int = 0) -> dict[str, Any]:
        """The remembered iterations after the first ``since``, oldest first, JSON-ready.

        ``first`` is the count of iterations before the first one listed
        (so a reader that holds the iterations up to ``since`` appends these
        when ``first == since``); ``durations`` and ``lateness`` in
        milliseconds (rounded to 0.01 ms), ``outcomes`` a string of ``o``
        (ok), ``r`` (retried), ``f`` (failed) and ``c`` (cancelled).
        """
        count = self.count
        first = max(since, count - ITERATIONS_KEPT, 0)
        ring = self._ring
        order = [_WIDTH * (i % ITERATIONS_KEPT) for i in range(first, count)]
        return {
            "count": count,
            "first": first,
            "skipped": self.skipped,
            "durations": [round(ring[i] * 1000, 2) for i in order],
            "lateness": [round(ring[i + 1] * 1000, 2) for i in order],
            "outcomes": "".join(_LETTERS[int(ring[i + 2])] for i in order),
            "traceback": self.traceback is not None,
        }


def _format(error: BaseException) -> str:
    text = "".join(tracebacks.format_exception(error))
    if len(text) > TRACEBACK_CHARS:
        text = "…" + text[-(TRACEBACK_CHARS - 1) :]
    return text


def recording() -> bool:
    """Whether some recorder is on: a loop whose iteration fails now gets a ring."""
    return _recorders > 0


def start_recording() -> None:
    """Turn recording on (counted: each call needs its `stop_recording`)."""
    global _recorders
    _recorders += 1


def stop_recording() -> None:
    """Undo one `start_recording`.

    Raises:
        RuntimeError: recording is not on.
    """
    global _recorders
    if _recorders == 0:
        raise RuntimeError("stop_recording() without start_recording()")
    _recorders -= 1


class _Recorded(Protocol):
    """What this module needs of a Loop: the slot holding its ring."""

    _recent: RecentIterations | None


def attach(loop: _Recorded) -> RecentIterations:
    """The ring of ``loop``, given one now if it has none."""
    found = loop._recent
    if found is None:
        found = loop._recent = RecentIterations()
    return found


def detach(loop: _Recorded) -> None:
    """Drop the ring of ``loop`` (its history is forgotten)."""
    loop._recent = None


def of(actor: object) -> RecentIterations | None:
    """The ring of ``actor`` if it is a loop that has one, else None (any other actor)."""
    found = getattr(actor, "_recent", None)
    return found if isinstance(found, RecentIterations) else None
