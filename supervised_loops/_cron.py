"""Cron expressions: parsing and calendar matching, without time zones.

This module knows the five cron fields and which naive wall-clock minutes
they select; `supervised_loops.schedule.Cron` adds the time zone and
the DST rules on top. Keeping the calendar part zone-free makes it easy to
test on its own and keeps every DST decision in ``schedule.py``, next to the
same decisions for `DailyAt`.

The grammar is Vixie cron's (the cron of most Linux systems):

* five fields, ``minute hour day-of-month month day-of-week``, separated by
  whitespace, or one of the macros in `MACROS`;
* each field is a comma-separated list of items; an item is ``*``, a number
  ``a``, a range ``a-b``, or either of those with a step: ``*/n``,
  ``a-b/n``, and ``a/n`` (short for ``a-<field max>/n``, as cronie reads it);
* months may be written ``JAN``..``DEC`` and weekdays ``SUN``..``SAT``, in
  any case, also inside ranges (``MON-FRI``); weekday ``0`` and ``7`` are
  both Sunday;
* the day rule: when the day-of-month *and* the day-of-week fields are both
  restricted, a day matches if *either* matches (``0 0 1 * MON`` runs on the
  1st and on every Monday). As in Vixie cron, a field counts as unrestricted
  when it starts with ``*``, so ``*/2`` is unrestricted for this rule and
  ``0 0 */2 * MON`` runs on odd days that are Mondays.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator, Mapping
from datetime import MAXYEAR, datetime, timedelta
from typing import Final

import attrs

from . import _validate

#: The ``@`` shortcuts and the five fields each one stands for.
MACROS: Final[Mapping[str, str]] = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

_MONTH_NAMES: Final = {
    name: number
    for number, name in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"),
        start=1,
    )
}
_WEEKDAY_NAMES: Final = {
    name: number for number, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))
}
# The longest each month can be, leap years included: a day-of-month that
# fits no selected month here can never match, and is refused up front.
_LONGEST_MONTH: Final = {month: calendar.monthrange(2000, month)[1] for month in range(1, 13)}


@attrs.frozen
class _FieldRule:
    """What one of the five positions accepts."""

    name: str
    low: int
    high: int
    names: Mapping[str, int] = attrs.field(factory=dict)

    def describe(self) -> str:
        """The accepted values, for error messages: ``0..23`` or ``1..12 or JAN..DEC``."""
        span = f"{self.low}..{self.high}"
        if not self.names:
            return span
        ordered = sorted(self.names, key=self.names.__getitem__)
        return f"{span} or {ordered[0]}..{ordered[-1]}"


_MINUTE: Final = _FieldRule("minute", 0, 59)
_HOUR: Final = _FieldRule("hour", 0, 23)
_DAY_OF_MONTH: Final = _FieldRule("day-of-month", 1, 31)
_MONTH: Final = _FieldRule("month", 1, 12, _MONTH_NAMES)
# 7 is accepted as a second Sunday and folded onto 0 after parsing.
_DAY_OF_WEEK: Final = _FieldRule("day-of-week", 0, 7, _WEEKDAY_NAMES)
_RULES: Final = (_MINUTE, _HOUR, _DAY_OF_MONTH, _MONTH, _DAY_OF_WEEK)


@attrs.frozen
class CronFields:
    """The parsed expression: which minutes, hours, days and months match.

    Weekdays use cron numbering (0 = Sunday .. 6 = Saturday). ``day_or`` is
    the Vixie rule: true when both day fields are restricted, so a day
    matches if either field matches; otherwise both must match (one of them
    then selects every day, so this is the plain intersection).
    """

    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: tuple[int, ...]
    weekdays: frozenset[int]
    day_or: bool
    #: True when the day fields select every day, the common case; a shortcut.
    every_day: bool = attrs.field(init=False)

    @every_day.default
    def _every_day(self) -> bool:
        return not self.day_or and len(self.days) == 31 and len(self.weekdays) == 7

    def days_of(self, year: int, month: int) -> list[int]:
        """Return the matching days of ``month`` in ``year``, ascending."""
        # monthrange gives the weekday of the 1st with Monday = 0; the cron
        # weekday (Sunday = 0) of day d is then (first + d) % 7.
        first, length = calendar.monthrange(year, month)
        if self.every_day:
            return list(range(1, length + 1))
        matching = []
        for day in range(1, length + 1):
            by_date = day in self.days
            by_weekday = (first + day) % 7 in self.weekdays
            if (by_date or by_weekday) if self.day_or else (by_date and by_weekday):
                matching.append(day)
        return matching

    def walls_from(self, start: datetime) -> Iterator[datetime]:
        """Yield every matching naive wall-clock minute at or after ``start``.

        The walk skips whole months, days and hours that cannot match, so
        finding ``0 0 29 2 *`` costs a few steps per year, not a scan of every
        minute. It ends after year 9999; construction has already refused
        expressions that match no day at all.

        Args:
            start: a naive datetime; seconds round it up to the next minute.

        Returns:
            An iterator of naive datetimes, ascending, seconds zero.
        """
        if start.second or start.microsecond:
            start = start.replace(second=0, microsecond=0) + timedelta(minutes=1)
        for year in range(start.year, MAXYEAR + 1):
            for month in self.months:
                if (year, month) < (start.year, start.month):
                    continue
                same_month = (year, month) == (start.year, start.month)
                for day in self.days_of(year, month):
                    if same_month and day < start.day:
                        continue
                    same_day = same_month and day == start.day
                    for hour in self.hours:
                        if same_day and hour < start.hour:
                            continue
                        same_hour = same_day and hour == start.hour
                        for minute in self.minutes:
                            if same_hour and minute < start.minute:
                                continue
                            yield datetime(year, month, day, hour, minute)


def parse(expression: str) -> CronFields:
    """Parse a cron expression (see the module docstring for the grammar).

    Args:
        expression: five whitespace-separated fields, or a macro such as
            ``@daily``.

    Returns:
        The matching sets.

    Raises:
        TypeError: ``expression`` is not a ``str``.
        ValueError: a malformed field, a value out of range (the message
            names the field and the value), or an expression that matches no
            day in any year (``0 0 31 2 *``).
    """
    if not isinstance(expression, str):
        _validate.type_error("expression", "a str", expression)
    text = expression.strip()
    if text.startswith("@"):
        if text.lower() not in MACROS:
            known = ", ".join(MACROS)
            _validate.value_error("expression", f"one of {known}", expression)
        text = MACROS[text.lower()]
    parts = text.split()
    if len(parts) != len(_RULES):
        _validate.value_error(
            "expression",
            "5 fields (minute hour day-of-month month day-of-week) or a macro such as @daily",
            expression,
        )
    minutes, hours, days, months, weekdays = (
        _parse_field(rule, part) for rule, part in zip(_RULES, parts, strict=True)
    )
    fields = CronFields(
        minutes=tuple(sorted(minutes)),
        hours=tuple(sorted(hours)),
        days=days,
        months=tuple(sorted(months)),
        weekdays=frozenset(day % 7 for day in weekdays),
        # Vixie cron decides "restricted" by the first character, not by the set.
        day_or=not parts[2].startswith("*") and not parts[4].startswith("*"),
    )
    if not fields.day_or and not any(
        day <= _LONGEST_MONTH[month] for month in fields.months for day in fields.days
    ):
        # Every (month, day) pair that exists falls on every weekday in some
        # year, so this is the only way an expression can never match.
        _validate.value_error("expression", "a schedule that matches at least one day", expression)
    return fields


def _parse_field(rule: _FieldRule, text: str) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        values.update(_parse_item(rule, item))
    return frozenset(values)


def _parse_item(rule: _FieldRule, item: str) -> range:
    base, slash, step_text = item.partition("/")
    step = 1
    if slash:
        if not (step_text.isascii() and step_text.isdigit()) or int(step_text) < 1:
            _validate.value_error(rule.name, "an item whose step is >= 1", item)
        step = int(step_text)
    if base == "*":
        return range(rule.low, rule.high + 1, step)
    first_text, dash, last_text = base.partition("-")
    first = _parse_value(rule, first_text, item)
    # A bare number selects itself; with a step it starts a run to the field's end.
    last = _parse_value(rule, last_text, item) if dash else rule.high if slash else first
    if first > last:
        _validate.value_error(rule.name, "a range whose start is <= its end", item)
    return range(first, last + 1, step)


def _parse_value(rule: _FieldRule, text: str, item: str) -> int:
    if text.isascii() and text.isdigit():
        value = int(text)
        if not rule.low <= value <= rule.high:
            _validate.value_error(rule.name, f"in {rule.low}..{rule.high}", value)
        return value
    named = rule.names.get(text.upper())
    if named is None:
        _validate.value_error(rule.name, f"in {rule.describe()}", item)
    return named
