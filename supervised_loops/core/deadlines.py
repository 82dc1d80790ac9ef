"""The deadlines of pending asks: one heap and one timer per event loop.

``Actor.ask`` with a timeout used to arm a timer per call (a
``TimerHandle``, pushed on the event loop's heap and cancelled once the reply
came): about a third of the cost of an ask. Here every pending ask of an
event loop shares one heap of deadlines and one timer, armed for the
earliest one. An ask costs a tuple pushed on the heap; a reply that comes in
time needs nothing removed: entries whose reply is done are skipped when
their deadline comes, and the heap is compacted whenever it has doubled since
the last compaction, so it never holds more than about twice the asks still
pending (plus 1 024).

When a deadline passes with the reply still pending, the reply fails with
`AskTimeout`; whichever comes first, the answer or the deadline, settles it
(answerers skip a reply that is done).

May import: the pure top-level modules.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import weakref
from typing import Any

from ..errors import AskTimeout

__all__ = ["expire_after"]

#: Entries: (deadline, tie-breaker, reply, actor, message, timeout).
_Entry = tuple[float, int, "asyncio.Future[Any]", Any, Any, float]

_COMPACT_AT_LEAST = 1024


class _Deadlines:
    """The pending asks' deadlines of one event loop."""

    __slots__ = ("__weakref__", "_armed_at", "_event_loop", "_heap", "_limit", "_timer")

    def __init__(self, event_loop: asyncio.AbstractEventLoop) -> None:
        # Weakly: this object is the value of a WeakKeyDictionary keyed by the loop.
        self._event_loop = weakref.ref(event_loop)
        self._heap: list[_Entry] = []
        self._timer: asyncio.TimerHandle | None = None
        self._armed_at = 0.0
        self._limit = _COMPACT_AT_LEAST

    def add(self, entry: _Entry) -> None:
        heap = self._heap
        heapq.heappush(heap, entry)
        if len(heap) > self._limit:
            self._compact()
        deadline = entry[0]
        if self._timer is None or deadline < self._armed_at:
            self._arm(deadline)

    def _arm(self, deadline: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        event_loop = self._event_loop()
        if event_loop is None:
            return
        self._armed_at = deadline
        self._timer = event_loop.call_at(deadline, self._fire)

    def _compact(self) -> None:
        heap = [entry for entry in self._heap if not entry[2].done()]
        heapq.heapify(heap)
        self._heap = heap
        self._limit = max(_COMPACT_AT_LEAST, 2 * len(heap))

    def _fire(self) -> None:
        self._timer = None
        event_loop = self._event_loop()
        if event_loop is None:
            return
        heap = self._heap
        now = event_loop.time()
        while heap and (heap[0][0] <= now or heap[0][2].done()):
            _, _, reply, actor, message, timeout = heapq.heappop(heap)
            if not reply.done():
                reply.set_exception(AskTimeout(actor.path, message, timeout))
        if heap:
            self._arm(heap[0][0])


_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Deadlines] = (
    weakref.WeakKeyDictionary()
)
_order = itertools.count()


#: The deadlines of the event loop asked last (most processes have one),
#: weakly: they live as long as their event loop, in ``_by_loop``.
_last: weakref.ref[_Deadlines] | None = None


def expire_after(reply: asyncio.Future[Any], timeout: float, actor: Any, message: Any) -> None:
    """Fail ``reply`` with `AskTimeout` unless it is done within ``timeout`` seconds.

    Must be called in the event loop that owns ``reply``.
    """
    global _last
    event_loop = reply.get_loop()
    deadlines = None if _last is None else _last()
    if deadlines is None or deadlines._event_loop() is not event_loop:
        deadlines = _by_loop.get(event_loop)
        if deadlines is None:
            deadlines = _by_loop[event_loop] = _Deadlines(event_loop)
        _last = weakref.ref(deadlines)
    deadlines.add((event_loop.time() + timeout, next(_order), reply, actor, message, timeout))
