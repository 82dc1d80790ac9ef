"""Turn discord.ext.tasks-style interval arguments into a schedule.

``loop(seconds=..., minutes=..., hours=..., time=...)`` and
``change_interval(...)`` take the same arguments and must reject the same
mistakes with the same messages, so both go through `schedule_from`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from . import _validate
from .schedule import DailyAt, Every, Schedule


def schedule_from(
    *,
    seconds: float | None = 0,
    minutes: float | None = 0,
    hours: float | None = 0,
    time: dt.time | Sequence[dt.time] | None = None,
    schedule: Schedule | None = None,
) -> Schedule:
    """Build the schedule that the arguments describe.

    Exactly one way of saying when to run may be used: relative parts
    (``seconds``/``minutes``/``hours``), ``time`` (times of day), or a ready
    ``schedule`` object.

    Raises:
        TypeError: ``time`` or ``schedule`` mixed with relative parts or with
            each other; ``time`` of the wrong type (see `DailyAt`);
            ``schedule`` without a ``next_after`` method.
        ValueError: a negative or non-finite part, an empty ``time`` sequence.
    """
    # discord.ext.tasks reads a relative part of None as 0 (``seconds or 0``),
    # and its ports document None as the default: accept it the same way.
    seconds = 0 if seconds is None else seconds
    minutes = 0 if minutes is None else minutes
    hours = 0 if hours is None else hours
    relative = any(_given(part) for part in (seconds, minutes, hours))
    if schedule is not None:
        if relative or time is not None:
            raise TypeError(
                "'schedule' cannot be mixed with seconds/minutes/hours or time; pass one of them"
            )
        if not callable(getattr(schedule, "next_after", None)):
            _validate.type_error("schedule", "an object with a next_after(moment) method", schedule)
        return schedule
    if time is not None:
        if relative:
            raise TypeError(
                "'time' cannot be mixed with seconds/minutes/hours; "
                "use either a relative interval or times of day"
            )
        return DailyAt(time)
    return _every(seconds, minutes, hours)


#: One `Every` per distinct interval: a service of thousands of loops written
#: with the same few intervals shares them (a schedule is immutable).
_EVERY: dict[tuple[str, str, str], Every] = {}
_EVERY_MAX = 1024


def _every(seconds: Any, minutes: Any, hours: Any) -> Every:
    parts = (seconds, minutes, hours)
    if not all(type(part) is int or type(part) is float for part in parts):
        # Anything else is built (and checked) as given, never cached.
        return Every(seconds=seconds, minutes=minutes, hours=hours)
    key = (repr(seconds), repr(minutes), repr(hours))  # 1 and 1.0, 0.0 and -0.0 apart
    every = _EVERY.get(key)
    if every is None:
        every = Every(seconds=seconds, minutes=minutes, hours=hours)  # may raise: not kept
        if len(_EVERY) >= _EVERY_MAX:
            _EVERY.clear()
        _EVERY[key] = every
    return every


def _given(part: Any) -> bool:
    # A relative part counts as given when it is anything but a plain zero:
    # bad values (NaN, strings) must reach Every's validation, not be ignored.
    return not (isinstance(part, int | float) and not isinstance(part, bool) and part == 0)


def required_schedule(schedule: Any) -> Schedule:
    """Return ``schedule`` if it has a ``next_after`` method (None included: refused).

    For ``Loop(..., schedule=...)``, where the schedule is required: ``None``
    there is a mistake, not "back to back" as an absent interval is in ``loop()``.

    Raises:
        TypeError: ``schedule`` is None or has no ``next_after`` method.
    """
    if schedule is None:
        _validate.type_error("schedule", "an object with a next_after(moment) method", schedule)
    return schedule_from(schedule=schedule)
