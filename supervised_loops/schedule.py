"""Schedules: pure objects that say when a loop is due next.

A schedule answers one question, `Schedule.next_after`: given an
instant, when is the next run due? Time is a parameter, never read from a
clock, so schedules are deterministic, need no event loop, and are tested
exhaustively. Three kinds ship:

* `Every` -- a relative interval (``loop(seconds=..., minutes=...,
  hours=...)``);
* `DailyAt` -- times of day (``loop(time=...)``);
* `Cron` -- a five-field cron expression in a time zone.

Users may write their own: anything with a ``next_after(moment)`` method
satisfies the `Schedule` protocol.

Daylight saving time
--------------------
`DailyAt` and `Cron` pick wall-clock times in a zone, and twice
a year some wall-clock times do not exist or exist twice. Both classes turn a
local date and time into an instant the way Python does for ``fold=0``
(:pep:`495`), which gives exactly the rules users expect:

* a time that does not exist that day (spring forward) runs at the same
  instant shifted by the gap: 02:30 in America/New_York on 2026-03-08 runs at
  03:30 EDT (07:30 UTC);
* a time that happens twice (fall back) runs once, at its first occurrence;
* so each listed time runs exactly once per local day, never twice and never
  skipped, and two listed times that land on the same instant are one run.

Zones must follow :pep:`495`: ``zoneinfo.ZoneInfo``, ``datetime.timezone``,
``dateutil.tz``; ``pytz`` zones give wrong offsets without ``localize`` and
are not supported.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from typing import Final, Protocol, runtime_checkable

import attrs

from . import _validate
from ._cron import CronFields, parse

__all__ = ["Cron", "DailyAt", "Every", "Schedule"]

_DAY: Final = timedelta(days=1)


@runtime_checkable
class Schedule(Protocol):
    """Anything that can say when a loop is due next.

    Implement this to drive a loop by your own rule (``loop(schedule=...)``).
    Implementations must be pure: the answer depends on ``moment`` alone, so
    the loop can ask again after a clock jump, a pause or a restart and get a
    consistent answer.
    """

    def next_after(self, moment: datetime) -> datetime:
        """Return the earliest due instant strictly after ``moment``.

        The one exception is a zero interval (``Every()``, back to back),
        which is due at ``moment`` itself.

        Args:
            moment: an aware datetime, in any zone.

        Returns:
            An aware datetime in UTC.

        Raises:
            TypeError: ``moment`` is not a datetime.
            ValueError: ``moment`` is naive.
        """
        ...


def _part(name: str, value: float) -> float:
    # Each part is checked alone, under the name the user passed, so the
    # message points at the argument to fix.
    # The total is bounded below, in seconds; a part alone only needs a float.
    return _validate.seconds(name, value, limit=None)


def _seconds_part(value: float) -> float:
    return _part("seconds", value)


def _minutes_part(value: float) -> float:
    return _part("minutes", value)


def _hours_part(value: float) -> float:
    return _part("hours", value)


@attrs.frozen
class Every:
    """Run every ``seconds + 60 * minutes + 3600 * hours`` seconds.

    The interval is start-to-start and absolute: ``next_after(m)`` is
    ``m + interval`` in real elapsed time, whatever the zone of ``m`` (an hour
    after 01:30 on a spring-forward night is 03:30 local time). A loop keeps
    a drift-free grid by passing the previous *due* instant as ``moment``,
    not the time the iteration ended; what happens on overrun is the loop's
    missed-tick policy, not the schedule's.

    Every part must be >= 0: ``Every(minutes=1, seconds=-30)`` is refused,
    although discord.ext.tasks reads it as 30 seconds, since a negative part
    is far more often a typo than an intent (see docs/migration.md). A total
    of 0 means back to back: then, and only then, ``next_after(m)`` returns ``m``
    itself instead of an instant strictly after it. The interval has
    microsecond resolution, like ``datetime``.

    Equality compares the parts as given, so ``Every(minutes=1)`` and
    ``Every(seconds=60)`` run alike but are not equal; compare ``interval``
    to compare durations.

    Args:
        seconds: seconds in the interval.
        minutes: minutes in the interval.
        hours: hours in the interval.

    Raises:
        TypeError: a part is not a real number (``bool`` is refused).
        ValueError: a part is negative, NaN, infinite or too large for a
            float; the total is over 1000 years (it could not be scheduled
            within the range of ``datetime``), or not 0 but under half a
            microsecond (it would round to 0, back to back).
    """

    seconds: float = attrs.field(default=0.0, converter=_seconds_part)
    minutes: float = attrs.field(default=0.0, converter=_minutes_part)
    hours: float = attrs.field(default=0.0, converter=_hours_part)
    #: The total, in seconds.
    interval: float = attrs.field(init=False, eq=False, repr=False)
    _delta: timedelta = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        total = self.seconds + 60 * self.minutes + 3600 * self.hours
        if total > _validate.MAX_SECONDS:  # also catches a sum that overflowed to inf
            _validate.value_error(
                "seconds + 60 * minutes + 3600 * hours",
                f"<= {_validate.MAX_SECONDS:.0f} (1000 years)",
                total,
            )
        delta = timedelta(seconds=total)
        if total and not delta:
            # Rounds to 0 microseconds: it would silently run back to back.
            _validate.value_error(
                "seconds + 60 * minutes + 3600 * hours", "0 or at least 0.000001", total
            )
        object.__setattr__(self, "interval", total)
        object.__setattr__(self, "_delta", delta)

    def next_after(self, moment: datetime) -> datetime:
        """Return ``moment + interval``, in UTC.

        Args:
            moment: an aware datetime, in any zone.

        Returns:
            An aware datetime in UTC.

        Raises:
            TypeError: ``moment`` is not a datetime.
            ValueError: ``moment`` is naive.
            OverflowError: the result is past ``datetime.max``.
        """
        # Adding to a UTC datetime is elapsed time; adding to a zone-aware
        # one would be wall-clock arithmetic, off by an hour across DST.
        return _utc(moment) + self._delta

    def __repr__(self) -> str:
        given = [
            f"{name}={value!r}"
            for name, value in (
                ("seconds", self.seconds),
                ("minutes", self.minutes),
                ("hours", self.hours),
            )
            if value
        ]
        return f"Every({', '.join(given) or 'seconds=0.0'})"


def _normalize_times(value: time | Sequence[time]) -> tuple[time, ...]:
    """Validate ``time=`` input and return the canonical, sorted tuple."""
    if isinstance(value, time):
        items: Sequence[object] = (value,)
    elif isinstance(value, Sequence) and not isinstance(value, str | bytes | bytearray):
        items = value
    else:
        _validate.type_error("time", "a datetime.time or a sequence of datetime.time", value)
    if not items:
        _validate.value_error("time", "a non-empty sequence", value)
    unique: dict[tuple[time, tzinfo], time] = {}
    for index, item in enumerate(items):
        name = "time" if isinstance(value, time) else f"time[{index}]"
        if not isinstance(item, time):
            _validate.type_error(name, "a datetime.time", item)
        zone = UTC if item.tzinfo is None else item.tzinfo
        if not _gives_offset(zone):
            _validate.value_error(name, "a time whose tzinfo gives a UTC offset", item)
        # fold is dropped: a repeated local time always runs at its first
        # occurrence, so fold=1 would only name the same slot differently.
        wall = item.replace(tzinfo=None, fold=0)
        unique.setdefault((wall, zone), wall.replace(tzinfo=zone))
    # repr breaks ties between zones with one label (ZoneInfo("UTC") and UTC).
    return tuple(
        sorted(
            unique.values(),
            key=lambda t: (t.replace(tzinfo=None), _label(t.tzinfo), repr(t.tzinfo)),
        )
    )


@attrs.frozen
class DailyAt:
    """Run at each listed time of day (discord.ext.tasks ``time=``).

    Naive times mean UTC; aware times are read in their own zone, and fixed
    offsets (``datetime.timezone``) and ``zoneinfo.ZoneInfo`` zones mix freely
    in one list. ``next_after(m)`` is the earliest instant strictly after
    ``m`` over *all* listed times, each evaluated on the local dates around
    ``m`` in its own zone -- taking the minimum over every time, rather than
    walking a sorted list, is what keeps a list that mixes zones from
    skipping a slot. Across DST a missing local time runs shifted by the gap
    and a repeated one runs once, at its first occurrence (see the module
    docstring); listed times that fall on the same instant are one slot.

    ``times`` is canonical, so the order and duplicates of the input do not
    matter and equal schedules compare equal: naive times get
    ``datetime.UTC``, ``fold`` is set to 0, times with the same wall-clock
    value and an equal ``tzinfo`` are one entry, and the tuple is sorted by
    wall-clock time of day, then by the zone's label as shown in the repr
    (``+09:00`` < ``Asia/Tokyo`` < ``UTC``). Times in different zones that
    are the same instant stay separate entries (their zones may disagree on
    other days) but run as one slot.

    Args:
        times: one ``datetime.time`` or a sequence of them (a ``str`` is not
            a sequence here).

    Raises:
        TypeError: ``times`` is neither a time nor a sequence; an element is
            not a time (the message names its index, ``'time[2]'``).
        ValueError: the sequence is empty; a ``tzinfo`` gives no UTC offset.

    Messages name the value ``time``, the ``loop(time=...)`` argument that
    users pass, rather than this attribute.
    """

    times: tuple[time, ...] = attrs.field(converter=_normalize_times)
    # The times grouped by zone, so next_after converts each moment once per zone.
    _by_zone: tuple[tuple[tzinfo, tuple[time, ...]], ...] = attrs.field(
        init=False, eq=False, repr=False
    )

    def __attrs_post_init__(self) -> None:
        groups: dict[tzinfo, list[time]] = {}
        for item in self.times:
            assert item.tzinfo is not None  # _normalize_times made every time aware
            groups.setdefault(item.tzinfo, []).append(item.replace(tzinfo=None))
        object.__setattr__(
            self, "_by_zone", tuple((zone, tuple(walls)) for zone, walls in groups.items())
        )

    def next_after(self, moment: datetime) -> datetime:
        """Return the earliest listed time of day strictly after ``moment``.

        Args:
            moment: an aware datetime, in any zone.

        Returns:
            An aware datetime in UTC.

        Raises:
            TypeError: ``moment`` is not a datetime.
            ValueError: ``moment`` is naive.
        """
        after = _utc(moment)
        candidates = []
        for zone, walls in self._by_zone:
            today = after.astimezone(zone).date()
            for wall in walls:
                # A slot of yesterday's date may still be ahead (shifted past
                # midnight by a gap); tomorrow's is always ahead. Slots only
                # grow with the date, so the first one after moment is it.
                for days in (-1, 0, 1, 2):
                    slot = _instant(today + timedelta(days=days), wall, zone)
                    if slot > after:
                        candidates.append(slot)
                        break
        return min(candidates)

    def __repr__(self) -> str:
        return f"DailyAt({', '.join(_format_time(item) for item in self.times)})"


@attrs.frozen
class Cron:
    """Run when a five-field cron expression matches, in a time zone.

    ``minute hour day-of-month month day-of-week``, with ``*``, lists,
    ranges, steps (``*/15``, ``8-18/2``), month and weekday names, and the
    macros ``@hourly @daily @midnight @weekly @monthly @yearly @annually``.
    When both day fields are restricted a day matches if *either* does
    (Vixie cron; ``*/2`` counts as unrestricted for this rule, as there).
    The expression is read in ``tz``, whole minutes, start-to-start.

    DST follows the same rule as `DailyAt`, applied to every minute
    the expression selects: a wall time that does not exist runs shifted by
    the gap (runs that land on the same instant are one run), and in the
    repeated hour of a fall-back night only the first pass runs (``fold=0``).
    That keeps "at 01:30" to one run, but it also means an interval-like
    expression such as ``*/15 * * * *`` in a DST zone pauses for an hour on
    a fall-back night (the clock's second pass through 01:xx has no runs);
    on a spring-forward night the missing 02:xx runs land on the 03:xx
    instants and run once there. Use ``tz=UTC`` (the default) or
    `Every` for work that must keep an even pace.

    Equality compares the expression text and the zone: ``Cron('@daily')``
    and ``Cron('0 0 * * *')`` run alike but are not equal.

    ``next_after`` walks months, days and hours that can match and skips the
    rest, so a rare expression (``0 0 29 2 *``, the 29th of February) costs a
    few steps per year, not a scan of every minute.

    Args:
        expression: the cron expression.
        tz: the zone the expression is read in; default UTC.

    Raises:
        TypeError: ``expression`` is not a str; ``tz`` is not a tzinfo.
        ValueError: a malformed expression, naming the field and the value
            (``'hour' must be in 0..23 (got 24)``); an expression
            that matches no day in any year (``0 0 31 2 *``); a ``tz`` that
            gives no UTC offset.
    """

    expression: str
    tz: tzinfo = attrs.field(default=UTC)
    _fields: CronFields = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.tz, tzinfo):
            _validate.type_error(
                "tz", "a datetime.tzinfo such as zoneinfo.ZoneInfo('Europe/Berlin')", self.tz
            )
        if not _gives_offset(self.tz):
            _validate.value_error("tz", "a tzinfo that gives a UTC offset", self.tz)
        object.__setattr__(self, "_fields", parse(self.expression))

    def next_after(self, moment: datetime) -> datetime:
        """Return the earliest matching minute strictly after ``moment``.

        Args:
            moment: an aware datetime, in any zone.

        Returns:
            An aware datetime in UTC.

        Raises:
            TypeError: ``moment`` is not a datetime.
            ValueError: ``moment`` is naive.
            OverflowError: nothing matches before the end of year 9999.
        """
        after = _utc(moment)
        zone = self.tz
        local = after.astimezone(zone)
        # Wall times before moment's own can still be ahead if a spring-forward
        # gap just passed: they run shifted by the gap. Start that much earlier
        # (zones change offset at most once a day, and gaps are under a day).
        gap = _offset(local) - _offset((after - _DAY).astimezone(zone))
        start = local.replace(tzinfo=None) - max(gap, timedelta(0))
        best: datetime | None = None
        best_wall: datetime | None = None
        for wall in self._fields.walls_from(start):
            # Once past the real wall time of the best slot, no later wall time
            # can map to an earlier instant (fold=0 is the first occurrence);
            # only gap-shifted slots make it worth looking that far.
            if best_wall is not None and wall > best_wall:
                break
            slot = wall.replace(tzinfo=zone).astimezone(UTC)
            if slot > after and (best is None or slot < best):
                best = slot
                best_wall = slot.astimezone(zone).replace(tzinfo=None)
        if best is None:
            raise OverflowError(f"{self!r} has no run after {moment!r} before year 10000")
        return best

    def __repr__(self) -> str:
        return f"Cron({self.expression!r}, tz={_label(self.tz)})"


def _utc(moment: datetime) -> datetime:
    """Check that ``moment`` is an aware datetime and return it in UTC."""
    if not isinstance(moment, datetime):
        _validate.type_error("moment", "an aware datetime", moment)
    if moment.tzinfo is None or moment.utcoffset() is None:
        _validate.value_error("moment", "an aware datetime", moment)
    return moment.astimezone(UTC)


def _instant(day: date, wall: time, zone: tzinfo) -> datetime:
    """The UTC instant of local ``day`` at ``wall`` in ``zone``, by the fold=0 rule."""
    return datetime.combine(day, wall, tzinfo=zone).astimezone(UTC)


def _offset(moment: datetime) -> timedelta:
    offset = moment.utcoffset()
    if offset is None:
        raise ValueError(f"'tz' must give a UTC offset (got {moment.tzinfo!r} at {moment})")
    return offset


def _gives_offset(zone: tzinfo) -> bool:
    # A tzinfo whose utcoffset() is None makes datetimes naive, and
    # astimezone() would then silently read them in the host's local zone.
    return datetime(2000, 1, 1, tzinfo=zone).utcoffset() is not None


def _label(zone: tzinfo | None) -> str:
    """A short, stable name for a zone: ``UTC``, ``+09:00``, ``Asia/Tokyo``."""
    if zone is None:
        return "UTC"
    if isinstance(zone, timezone):
        offset = zone.utcoffset(None)
        if not offset:
            return "UTC"
        sign = "-" if offset < timedelta(0) else "+"
        minutes, seconds = divmod(int(abs(offset).total_seconds()), 60)
        hours, minutes = divmod(minutes, 60)
        return f"{sign}{hours:02d}:{minutes:02d}" + (f":{seconds:02d}" if seconds else "")
    return str(zone)


def _format_time(item: time) -> str:
    """``09:00+09:00``, ``21:00:30 UTC``, ``07:15 Europe/Berlin``."""
    wall = item.replace(tzinfo=None)
    text = wall.isoformat(timespec="auto" if wall.second or wall.microsecond else "minutes")
    label = _label(item.tzinfo)
    return text + (label if label[0] in "+-" else f" {label}")
