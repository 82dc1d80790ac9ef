"""Which loops the dashboard records: those a browser shows, and a while after.

Recording a loop's iterations costs little per iteration, but at ten
thousand loops that each iterate twice a second it is a tenth to a fifth of
what the loops themselves cost (``bench/bench_dashboard.py --record-all``),
and the open dashboard's budget is a tenth (``docs/dashboard.md``). So the rings go
where someone looks: a loop gets its ring the first time a browser's view
includes its row, keeps it while it stays in some view, and loses it
`KEEP_UNSEEN` seconds after the last view that included it (its chart starts
again from empty if it is shown later). A loop whose iteration fails while
the dashboard is open gets a ring whether shown or not (`supervised_loops.loops.recent`),
so the traceback of any failure is there when its row is opened.

Everything here runs on the event loop's thread.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ...loops import recent
from ...loops.face import Loop
from ...loops.recent import RecentIterations

__all__ = ["KEEP_UNSEEN", "Watch"]

#: Seconds a loop keeps its ring after the last view that showed it.
KEEP_UNSEEN = 600.0


class Watch:
    """The loops given a ring because a view showed them, least recently seen first.

    Times are the running event loop's (virtual under virtual time).

    Args:
        keep: seconds a loop keeps its ring after it was last seen.
    """

    def __init__(self, keep: float = KEEP_UNSEEN) -> None:
        self._keep = keep
        self._seen: dict[Loop[Any], float] = {}

    def __len__(self) -> int:
        return len(self._seen)

    def see(self, loop: Loop[Any]) -> RecentIterations:
        """``loop`` is in a view now: its ring, made if new."""
        seen = self._seen
        seen.pop(loop, None)  # to the end: the order stays least recently seen first
        seen[loop] = asyncio.get_running_loop().time()
        return recent.attach(loop)

    def sweep(self) -> None:
        """Take the rings of the loops no view has shown for `KEEP_UNSEEN` seconds."""
        seen = self._seen
        limit = asyncio.get_running_loop().time() - self._keep
        while seen:
            loop, last = next(iter(seen.items()))
            if last > limit:
                return
            del seen[loop]
            ring = loop._recent
            if ring is not None and ring.traceback is None:
                recent.detach(loop)  # one with a failure keeps it while the dashboard is open

    def release(self) -> None:
        """Forget every loop (the dashboard closes; it takes the rings itself)."""
        self._seen.clear()
