"""Restart intensity: how many restarts a sliding window of time allows.

OTP's rule, in seconds of the event loop's monotonic clock: a supervisor may
restart children at most ``max_restarts`` times within any ``max_seconds``;
the restart that makes it one more than that is refused, and the supervisor
gives up. The same window counts a quarantined child's own budget.

A restart *counts* for ``max_seconds`` after it happened and is forgotten at
exactly ``max_seconds`` (a restart at t=0 no longer counts at t=5.0 with
``max_seconds=5``). Pure: ``now`` is a parameter, nothing here reads a clock.

May import: the standard library only.
"""

from __future__ import annotations

import collections
import sys

__all__ = ["RestartWindow"]


class RestartWindow:
    """The restarts of the last ``max_seconds`` seconds (internal).

    Args:
        max_restarts: restarts allowed within the window (0: none).
        max_seconds: the window's length in seconds (> 0).
    """

    __slots__ = ("_times", "max_restarts", "max_seconds")

    def __init__(self, max_restarts: int, max_seconds: float) -> None:
        self.max_restarts = max_restarts
        self.max_seconds = max_seconds
        # Never more than max_restarts + 1 entries: the oldest beyond that can
        # no longer decide anything, so memory stays bounded however busy. A
        # deque cannot be longer than sys.maxsize; a limit past that is never
        # reached, so capping it changes no decision (and is no OverflowError).
        self._times: collections.deque[float] = collections.deque(
            maxlen=min(max_restarts + 1, sys.maxsize)
        )

    def _forget(self, now: float) -> None:
        times = self._times
        horizon = now - self.max_seconds
        while times and times[0] <= horizon:
            times.popleft()

    def add(self, now: float) -> bool:
        """Record a restart at ``now``; return True if it exceeds the intensity.

        Exceeding means this restart is the ``max_restarts + 1``-th within the
        window: the caller must not perform it.
        """
        self._forget(now)
        self._times.append(now)
        return len(self._times) > self.max_restarts

    def count(self, now: float) -> int:
        """Restarts that still count at ``now``."""
        self._forget(now)
        return len(self._times)

    def clear(self) -> None:
        """Forget every restart."""
        self._times.clear()
