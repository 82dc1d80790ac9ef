"""Where a Loop's schedule puts the next iteration: placement, without an event loop.

Small functions of a run's position (`loops.run.LoopRun`: anchor, tick,
due, due_wall), the schedule, ``now`` (the event loop's monotonic seconds) and a
clock read only for wall-clock schedules. They start no task, sleep never
and touch nothing but the position fields, so they are tested with a
plain record and a fake clock:

* an `Every` schedule keeps an absolute
  grid in monotonic time, ``due = anchor + tick × interval``, computed by
  multiplication so it never drifts, and immune to wall-clock steps;
* any other schedule (``DailyAt``, ``Cron``, a user's) is a sequence of
  wall-clock *slots*, each strictly after the previous one, so a slot runs at
  most once; the sleep towards a slot re-reads the wall clock regularly.

May import: the pure top-level modules (``schedule``, ``clock``'s protocol).
"""

from __future__ import annotations

import datetime as dt
import math
from typing import TYPE_CHECKING

from ..clock import Clock
from ..schedule import Every, Schedule

if TYPE_CHECKING:
    from .run import LoopRun as Run

# -- where the next iteration falls ------------------------------------------


def plan_first(run: Run, schedule: Schedule, now: float, clock: Clock, wait_first: bool) -> None:
    """Place the first iteration: at once (or one interval later), or at the first slot."""
    if isinstance(schedule, Every):
        run.anchor = now
        run.tick = 1 if wait_first else 0
        _grid_due(run, schedule)
    else:
        wall = clock.wall()
        _slot_due(run, schedule.next_after(wall), now, wall)


def advance(run: Run, schedule: Schedule, now: float, clock: Clock, skip_missed: bool) -> bool:
    """Move to the grid point after the iteration that just succeeded.

    When that point has already passed (the iteration overran), it is due at
    once either way; with ``skip_missed`` the grid is re-anchored on it, so
    the points missed meanwhile are skipped instead of run back to back.

    Returns:
        True when at least one grid point was skipped (``skip_missed`` only).
    """
    if isinstance(schedule, Every):
        run.tick += 1
        due = run.due = run.anchor + run.tick * schedule.interval
        if skip_missed and due < now:
            run.anchor = run.due = now
            run.tick = 0
            return 0 < schedule.interval <= now - due
        return False
    wall = clock.wall()
    slot = schedule.next_after(run.due_wall if run.due_wall is not None else wall)
    skipped = False
    if skip_missed and slot < wall:
        skipped = schedule.next_after(slot) <= wall
        slot = wall
    _slot_due(run, slot, now, wall)
    return skipped


def replan(run: Run, schedule: Schedule, now: float, clock: Clock) -> None:
    """Recompute the next iteration after a schedule change, from the last iteration."""
    if isinstance(schedule, Every):
        if run.last_start is not None:
            run.anchor = run.last_start
            run.tick = 1
        _grid_due(run, schedule)
        if run.due < now:
            # The new interval has already elapsed since the last iteration:
            # run once at once and anchor the new grid there. Catching up the
            # points of a grid that did not exist until now would be a burst.
            run.anchor, run.tick = now, 0
            _grid_due(run, schedule)
    else:
        wall = clock.wall()
        base = wall
        if run.last_start is not None:
            base = wall - dt.timedelta(seconds=now - run.last_start)
        _slot_due(run, schedule.next_after(base), now, wall)


def resume(run: Run, schedule: Schedule, now: float, clock: Clock) -> bool:
    """Make the next iteration due at the first grid point at or after now.

    Returns:
        True when an iteration fell due while paused (it is skipped).
    """
    if isinstance(schedule, Every):
        interval = schedule.interval
        missed = run.due < now
        if interval <= 0:
            run.anchor, run.tick = now, 0
        elif now > run.anchor:
            run.tick = max(run.tick, math.ceil((now - run.anchor) / interval))
        _grid_due(run, schedule)
        return missed
    wall = clock.wall()
    missed = run.due_wall is not None and run.due_wall < wall
    _slot_due(run, schedule.next_after(wall), now, wall)
    return missed


def next_regular_tick(run: Run, schedule: Schedule, now: float, clock: Clock) -> float:
    """Monotonic time of the regular iteration after the current one."""
    if isinstance(schedule, Every):
        return run.anchor + (run.tick + 1) * schedule.interval
    wall = clock.wall()
    base = run.due_wall if run.due_wall is not None else wall
    return now + (schedule.next_after(base) - wall).total_seconds()


def retry_deadline(run: Run, schedule: Schedule, now: float, clock: Clock) -> float | None:
    """Monotonic time of the first regular tick strictly after ``now``, or None.

    A retry capped by the schedule is never due later than this: the schedule
    would run the body then anyway. It is the first tick after *now*, not the
    tick after the failing iteration: once a retry has reached that tick and
    failed again, the next cap is the tick after it, never a zero delay that
    would retry back to back. A back-to-back loop (interval 0) has no tick to
    wait for, so there is no cap (None) and the backoff applies in full.
    """
    if isinstance(schedule, Every):
        interval = schedule.interval
        if interval <= 0:
            return None
        tick = max(0, math.floor((now - run.anchor) / interval) + 1)
        while run.anchor + tick * interval <= now:  # float rounding of the division
            tick += 1
        return run.anchor + tick * interval
    wall = clock.wall()
    return now + (schedule.next_after(wall) - wall).total_seconds()


def stand_in(run: Run, schedule: Schedule, retry_at: float, now: float, clock: Clock) -> None:
    """Let a retry due at ``retry_at`` run in place of the regular ticks it reaches.

    The retried iteration then counts as the latest of those ticks, and the
    schedule goes on from there: the ticks are not run again, back to back,
    once the retry succeeds (for a ``time=`` loop that would be a second run
    in one slot).
    """
    if isinstance(schedule, Every):
        interval = schedule.interval
        if interval <= 0:
            return
        tick = max(run.tick, math.floor((retry_at - run.anchor) / interval))
        while run.anchor + (tick + 1) * interval <= retry_at:  # float rounding
            tick += 1
        while tick > run.tick and run.anchor + tick * interval > retry_at:
            tick -= 1
        run.tick = tick
        _grid_due(run, schedule)
        return
    wall = clock.wall()
    retry_wall = wall + dt.timedelta(seconds=retry_at - now)
    slot = run.due_wall if run.due_wall is not None else wall
    upcoming = schedule.next_after(slot)
    while upcoming <= retry_wall:
        slot, upcoming = upcoming, schedule.next_after(upcoming)
    _slot_due(run, slot, now, wall)


def refresh_wall_due(run: Run, now: float, clock: Clock) -> None:
    """Re-derive the monotonic due time of a slot from the wall clock."""
    if run.due_wall is not None:
        run.due = now + (run.due_wall - clock.wall()).total_seconds()


def _grid_due(run: Run, schedule: Every) -> None:
    run.due = run.anchor + run.tick * schedule.interval
    run.due_wall = None


def _slot_due(run: Run, slot: dt.datetime, now: float, wall: dt.datetime) -> None:
    run.due_wall = slot
    run.due = now + (slot - wall).total_seconds()


def due_of(run: Run, by_request: bool, started: float) -> float:
    """When the iteration that began at ``started`` was due (its lateness counts from it).

    A retry was due at its retry time, a RunNow's iteration when it began
    (``by_request``), any other at its slot of the schedule.
    """
    if run.retry_at is not None:
        return run.retry_at
    return started if by_request else run.due
