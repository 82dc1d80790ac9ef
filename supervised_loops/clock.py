"""Where time comes from.

Every timer in the library is an event-loop timer (``loop.call_at``), so
*elapsed* time is always ``loop.time()``. Only one other reading is needed: the
wall clock, for time-of-day schedules and for reporting ``next_iteration``.
Both come from the `Clock` attached to the running event loop, which is
what lets `supervised_loops.testing` replace them with virtual time: a
virtual event loop carries a virtual clock, and nothing here reads
``time.time()`` or ``datetime.now()`` behind its back.

This module is internal: `Clock` and `SystemClock` are not exported from the
package, because no public API takes a clock. The one supported way to
replace wall time is `supervised_loops.testing` (docs/testing.md, "How it
works"); exporting a protocol nothing accepts would promise a hook that does
not exist.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Protocol, runtime_checkable

__all__ = ["WALL_RECHECK_SECONDS", "Clock", "SystemClock", "get_clock"]

#: A sleep until a wall-clock instant never trusts the monotonic clock for
#: longer than this many seconds: it wakes, re-reads the wall clock and sleeps
#: again. An NTP step or a suspend/resume therefore makes a time-of-day loop at
#: most this late, never early.
WALL_RECHECK_SECONDS = 60.0

_CLOCK_ATTRIBUTE = "_supervised_loops_clock"


@runtime_checkable
class Clock(Protocol):
    """The wall clock of an event loop."""

    def wall(self) -> dt.datetime:
        """Return the current wall-clock time as an aware UTC datetime."""
        ...


class SystemClock:
    """The real wall clock of the machine."""

    __slots__ = ()

    def wall(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def __repr__(self) -> str:
        return "SystemClock()"


_SYSTEM_CLOCK = SystemClock()


def get_clock(loop: asyncio.AbstractEventLoop | None = None) -> Clock:
    """Return the clock attached to ``loop`` (default: the running loop).

    An event loop without a clock of its own uses the system clock.

    Raises:
        RuntimeError: no ``loop`` was given and no event loop is running.
    """
    if loop is None:
        loop = asyncio.get_running_loop()
    clock: Clock = getattr(loop, _CLOCK_ATTRIBUTE, _SYSTEM_CLOCK)
    return clock


def attach_clock(loop: asyncio.AbstractEventLoop, clock: Clock) -> None:
    """Make ``clock`` the wall clock of ``loop`` (used by virtual time)."""
    setattr(loop, _CLOCK_ATTRIBUTE, clock)
