"""Tests for supervised_loops.schedule: Every, DailyAt, Cron (pure, no event loop)."""

from __future__ import annotations

import itertools
import math
import time as perf
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

import attrs
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from supervised_loops.schedule import Cron, DailyAt, Every, Schedule

NEW_YORK = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
SYDNEY = ZoneInfo("Australia/Sydney")
TOKYO = ZoneInfo("Asia/Tokyo")
PLUS_9 = timezone(timedelta(hours=9))
MINUS_5 = timezone(timedelta(hours=-5))


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


def runs(schedule: Schedule, start: datetime, end: datetime) -> list[datetime]:
    """Iterate next_after from ``start``; every run in (start, end]."""
    found = []
    moment = schedule.next_after(start)
    while moment <= end:
        found.append(moment)
        moment = schedule.next_after(moment)
    return found


def local_walls(instants: list[datetime], zone: tzinfo) -> list[str]:
    return [f"{i.astimezone(zone):%m-%d %H:%M%z}" for i in instants]


# --------------------------------------------------------------------- Schedule


@pytest.mark.parametrize(
    "schedule", [Every(seconds=1), DailyAt(time(9)), Cron("* * * * *")], ids=repr
)
def test_every_schedule_kind_satisfies_the_protocol(schedule: Schedule) -> None:
    assert isinstance(schedule, Schedule)


def test_object_without_next_after_is_not_a_schedule() -> None:
    assert not isinstance(object(), Schedule)


@pytest.mark.parametrize(
    "schedule", [Every(seconds=1), DailyAt(time(9)), Cron("* * * * *")], ids=repr
)
def test_naive_moment_is_refused_by_every_schedule(schedule: Schedule) -> None:
    with pytest.raises(
        ValueError,
        match=r"^'moment' must be an aware datetime \(got datetime.datetime\(2026, 1, 1, 0, 0\)\)$",
    ):
        schedule.next_after(datetime(2026, 1, 1))


@pytest.mark.parametrize(
    "schedule", [Every(seconds=1), DailyAt(time(9)), Cron("* * * * *")], ids=repr
)
def test_non_datetime_moment_is_a_type_error(schedule: Schedule) -> None:
    with pytest.raises(
        TypeError, match=r"^'moment' must be an aware datetime \(got datetime.date\(2026, 1, 1\)\)$"
    ):
        schedule.next_after(date(2026, 1, 1))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "schedule", [Every(seconds=1), DailyAt(time(9)), Cron("* * * * *")], ids=repr
)
def test_result_is_aware_utc_whatever_the_zone_of_the_moment(schedule: Schedule) -> None:
    result = schedule.next_after(datetime(2026, 6, 1, 12, tzinfo=TOKYO))
    assert result.tzinfo is UTC


@pytest.mark.parametrize(
    "schedule", [Every(seconds=1), DailyAt(time(9)), Cron("* * * * *")], ids=repr
)
def test_schedules_are_frozen_and_hashable(schedule: Schedule) -> None:
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        schedule.extra = 1  # type: ignore[attr-defined]
    assert hash(schedule) == hash(schedule)


# ------------------------------------------------------------------------ Every


def test_every_parts_are_kept_as_floats_and_summed_into_interval() -> None:
    every = Every(seconds=5, minutes=2, hours=1)
    assert (every.seconds, every.minutes, every.hours) == (5.0, 2.0, 1.0)
    assert all(isinstance(part, float) for part in (every.seconds, every.minutes, every.hours))
    assert every.interval == 3600 + 120 + 5


def test_every_positional_argument_is_seconds() -> None:
    assert Every(5) == Every(seconds=5.0)


def test_every_negative_part_is_refused_even_when_the_total_is_positive() -> None:
    # discord.ext.tasks reads this as 30 seconds; a negative part is a typo far
    # more often than an intent (docs/migration.md).
    with pytest.raises(ValueError, match=r"^'seconds' must be >= 0 \(got -30\)$"):
        Every(minutes=1, seconds=-30)


def test_every_zero_interval_means_back_to_back() -> None:
    moment = utc(2026, 1, 1)
    assert Every().interval == 0.0
    assert Every().next_after(moment) == moment


def test_every_next_after_adds_the_interval() -> None:
    assert Every(seconds=1.5).next_after(utc(2026, 1, 1)) == utc(2026, 1, 1, 0, 0, 1) + timedelta(
        microseconds=500_000
    )
    assert Every(hours=25).next_after(utc(2026, 12, 31, 12)) == utc(2027, 1, 1, 13)


def test_every_counts_elapsed_time_not_wall_time_across_dst() -> None:
    # 01:30 EST on the spring-forward night, plus one real hour, is 03:30 EDT.
    moment = datetime(2026, 3, 8, 1, 30, tzinfo=NEW_YORK)
    result = Every(hours=1).next_after(moment)
    assert result == utc(2026, 3, 8, 7, 30)
    assert result.astimezone(NEW_YORK).hour == 3


def test_every_grid_has_no_drift_over_many_steps() -> None:
    every = Every(seconds=0.1)
    moment = start = utc(2026, 1, 1)
    for _ in range(10_000):
        moment = every.next_after(moment)
    assert moment == start + timedelta(seconds=1000)


def test_every_negative_part_is_named_as_the_user_wrote_it() -> None:
    with pytest.raises(ValueError, match=r"^'seconds' must be >= 0 \(got -1\)$"):
        Every(seconds=-1)
    with pytest.raises(ValueError, match=r"^'minutes' must be >= 0 \(got -1\)$"):
        Every(minutes=-1, seconds=30)
    with pytest.raises(ValueError, match=r"^'hours' must be >= 0 \(got -0.5\)$"):
        Every(hours=-0.5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"seconds": math.nan}, "'seconds' must be finite (got nan)"),
        ({"minutes": math.inf}, "'minutes' must be finite (got inf)"),
        ({"hours": -math.inf}, "'hours' must be finite (got -inf)"),
        (
            {"hours": 1e305},
            "'seconds + 60 * minutes + 3600 * hours' must be <= 31536000000 (1000 years) (got inf)",
        ),
        (
            {"hours": 1e12},
            "'seconds + 60 * minutes + 3600 * hours' must be <= 31536000000 (1000 years)"
            " (got 3600000000000000.0)",
        ),
    ],
)
def test_every_non_finite_or_huge_values_are_value_errors(
    kwargs: dict[str, float], message: str
) -> None:
    with pytest.raises(ValueError) as info:
        Every(**kwargs)
    assert str(info.value) == message


def test_every_interval_that_rounds_to_zero_microseconds_is_refused() -> None:
    # It would be back to back while claiming an interval; 0 says so honestly.
    with pytest.raises(
        ValueError,
        match=r"^'seconds \+ 60 \* minutes \+ 3600 \* hours' must be 0 or at least 0.000001"
        r" \(got 1e-09\)$",
    ):
        Every(seconds=1e-9)
    moment = utc(2026, 1, 1)
    assert Every(seconds=1e-6).next_after(moment) == moment + timedelta(microseconds=1)


def test_every_int_too_large_for_a_float_is_not_finite() -> None:
    with pytest.raises(ValueError, match=r"^'seconds' must be finite \(got 1000"):
        Every(seconds=10**400)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"seconds": "5"}, "'seconds' must be a number (got '5')"),
        ({"minutes": True}, "'minutes' must be a number (got True)"),
        ({"hours": None}, "'hours' must be a number (got None)"),
        ({"seconds": 1j}, "'seconds' must be a number (got 1j)"),
    ],
)
def test_every_non_numbers_are_type_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(TypeError) as info:
        Every(**kwargs)  # type: ignore[arg-type]
    assert str(info.value) == message


def test_every_accepts_other_real_numbers() -> None:
    from fractions import Fraction

    assert Every(seconds=Fraction(1, 4)).interval == 0.25  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("every", "text"),
    [
        (Every(seconds=5), "Every(seconds=5.0)"),
        (Every(minutes=1, seconds=30), "Every(seconds=30.0, minutes=1.0)"),
        (Every(hours=2), "Every(hours=2.0)"),
        (Every(), "Every(seconds=0.0)"),
    ],
)
def test_every_repr_shows_the_parts_given(every: Every, text: str) -> None:
    assert repr(every) == str(every) == text


# ---------------------------------------------------------------------- DailyAt


def test_daily_at_single_time() -> None:
    daily = DailyAt(time(9))
    assert daily.times == (time(9, tzinfo=UTC),)
    assert daily.next_after(utc(2026, 1, 1, 8)) == utc(2026, 1, 1, 9)


def test_daily_at_is_strictly_after_the_moment() -> None:
    daily = DailyAt(time(9))
    assert daily.next_after(utc(2026, 1, 1, 9)) == utc(2026, 1, 2, 9)
    assert daily.next_after(utc(2026, 1, 1, 8, 59, 59, 999_999)) == utc(2026, 1, 1, 9)


def test_daily_at_list_runs_each_time_in_order() -> None:
    daily = DailyAt([time(9), time(17, 30)])
    assert runs(daily, utc(2026, 1, 1), utc(2026, 1, 3)) == [
        utc(2026, 1, 1, 9),
        utc(2026, 1, 1, 17, 30),
        utc(2026, 1, 2, 9),
        utc(2026, 1, 2, 17, 30),
    ]


def test_daily_at_naive_times_mean_utc() -> None:
    assert DailyAt(time(9)) == DailyAt(time(9, tzinfo=UTC))
    assert DailyAt(time(9)).times[0].tzinfo is UTC


def test_daily_at_drops_duplicates() -> None:
    daily = DailyAt(
        [
            time(9),
            time(9),
            time(9, tzinfo=UTC),
            time(9, tzinfo=timezone(timedelta(0))),
            time(9, tzinfo=TOKYO),
            time(9, tzinfo=ZoneInfo("Asia/Tokyo")),
        ]
    )
    # Sorted by wall time, then by zone name: "Asia/Tokyo" < "UTC".
    assert daily.times == (time(9, tzinfo=TOKYO), time(9, tzinfo=UTC))


def test_daily_at_ignores_fold_so_repeated_times_are_one_entry() -> None:
    daily = DailyAt([time(1, 30, tzinfo=NEW_YORK), time(1, 30, tzinfo=NEW_YORK, fold=1)])
    assert len(daily.times) == 1
    assert daily.times[0].fold == 0


def test_daily_at_order_of_input_does_not_matter() -> None:
    times = [time(17), time(9, tzinfo=TOKYO), time(9, tzinfo=PLUS_9), time(3)]
    assert DailyAt(times) == DailyAt(list(reversed(times)))
    assert DailyAt(times).times == (
        time(3, tzinfo=UTC),
        time(9, tzinfo=PLUS_9),
        time(9, tzinfo=TOKYO),
        time(17, tzinfo=UTC),
    )


def test_daily_at_order_does_not_matter_for_zones_with_the_same_label() -> None:
    times = [time(9, tzinfo=ZoneInfo("UTC")), time(9, tzinfo=UTC)]
    assert DailyAt(times) == DailyAt(list(reversed(times)))


def test_daily_at_times_that_are_one_instant_are_one_slot() -> None:
    # 09:00 Tokyo, 09:00+09:00 and 00:00 UTC are the same instant every day.
    daily = DailyAt([time(9, tzinfo=TOKYO), time(9, tzinfo=PLUS_9), time(0)])
    assert len(daily.times) == 3
    assert runs(daily, utc(2026, 1, 1, 1), utc(2026, 1, 4)) == [
        utc(2026, 1, 2),
        utc(2026, 1, 3),
        utc(2026, 1, 4),
    ]


def test_daily_at_list_spanning_midnight_in_tokyo() -> None:
    daily = DailyAt([time(0, 30, tzinfo=TOKYO), time(23, 30, tzinfo=TOKYO)])
    found = runs(daily, utc(2026, 5, 1, 14), utc(2026, 5, 2, 16))
    assert found == [
        utc(2026, 5, 1, 14, 30),  # 23:30 on May 1st in Tokyo
        utc(2026, 5, 1, 15, 30),  # 00:30 on May 2nd
        utc(2026, 5, 2, 14, 30),
        utc(2026, 5, 2, 15, 30),
    ]


def test_daily_at_mixed_zoneinfo_and_fixed_offsets_skips_no_slot() -> None:
    # discord.ext.tasks sorts such a list by wall time and can skip a slot.
    daily = DailyAt([time(9, tzinfo=TOKYO), time(1, tzinfo=MINUS_5), time(12), time(23, 59)])
    assert runs(daily, utc(2025, 12, 31, 23, 59, 30), utc(2026, 1, 3)) == [
        utc(2026, 1, 1, 0),
        utc(2026, 1, 1, 6),
        utc(2026, 1, 1, 12),
        utc(2026, 1, 1, 23, 59),
        utc(2026, 1, 2, 0),
        utc(2026, 1, 2, 6),
        utc(2026, 1, 2, 12),
        utc(2026, 1, 2, 23, 59),
        utc(2026, 1, 3, 0),
    ]


def test_daily_at_moment_in_any_zone_gives_the_same_answer() -> None:
    daily = DailyAt([time(9, tzinfo=TOKYO), time(18, tzinfo=BERLIN)])
    instant = utc(2026, 7, 1, 3)
    for zone in (UTC, TOKYO, BERLIN, NEW_YORK, PLUS_9):
        assert daily.next_after(instant.astimezone(zone)) == utc(2026, 7, 1, 16)


@pytest.mark.parametrize(
    ("zone", "wall", "day", "expected"),
    [
        # spring forward: the missing 02:30 runs at 03:30 local, shifted by the gap
        (NEW_YORK, time(2, 30), date(2026, 3, 8), utc(2026, 3, 8, 7, 30)),
        (BERLIN, time(2, 30), date(2026, 3, 29), utc(2026, 3, 29, 1, 30)),
        (SYDNEY, time(2, 30), date(2026, 10, 4), utc(2026, 10, 3, 16, 30)),
        # fall back: the repeated time runs at its first occurrence only
        (NEW_YORK, time(1, 30), date(2026, 11, 1), utc(2026, 11, 1, 5, 30)),
        (BERLIN, time(2, 30), date(2026, 10, 25), utc(2026, 10, 25, 0, 30)),
        (SYDNEY, time(2, 30), date(2026, 4, 5), utc(2026, 4, 4, 15, 30)),
    ],
)
def test_daily_at_dst_transition_day_runs_once(
    zone: ZoneInfo, wall: time, day: date, expected: datetime
) -> None:
    daily = DailyAt(wall.replace(tzinfo=zone))
    start = datetime.combine(day, time(0), tzinfo=zone)
    end = datetime.combine(day, time(23, 59), tzinfo=zone)
    assert runs(daily, start, end) == [expected]


def test_daily_at_spring_forward_shifts_the_gap_time_only_that_day() -> None:
    daily = DailyAt(time(2, 30, tzinfo=NEW_YORK))
    found = runs(daily, utc(2026, 3, 6, 12), utc(2026, 3, 10, 12))
    assert local_walls(found, NEW_YORK) == [
        "03-07 02:30-0500",
        "03-08 03:30-0400",
        "03-09 02:30-0400",
        "03-10 02:30-0400",
    ]


def test_daily_at_second_pass_of_a_repeated_hour_belongs_to_other_zones_only() -> None:
    # 06:30 UTC is 01:30 EST on 2026-11-01, the second 01:30 in New York: it
    # runs for the UTC entry, not a second time for the New York one.
    daily = DailyAt([time(1, 30, tzinfo=NEW_YORK), time(6, 30)])
    found = runs(daily, utc(2026, 11, 1), utc(2026, 11, 2))
    assert found == [utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 6, 30)]


def test_daily_at_fall_back_runs_the_repeated_time_once() -> None:
    daily = DailyAt(time(1, 30, tzinfo=NEW_YORK))
    # Ask from inside the second 01:30 pass: it must not run again that day.
    second_pass = utc(2026, 11, 1, 6, 15)
    assert daily.next_after(second_pass) == utc(2026, 11, 2, 6, 30)
    found = runs(daily, utc(2026, 10, 31, 0), utc(2026, 11, 3, 0))
    assert local_walls(found, NEW_YORK) == [
        "10-31 01:30-0400",
        "11-01 01:30-0400",
        "11-02 01:30-0500",
    ]


@pytest.mark.parametrize(
    ("zone", "days", "expected"),
    [
        (
            NEW_YORK,
            (date(2026, 3, 7), date(2026, 3, 9)),
            [
                "03-07 01:30-0500",
                "03-07 02:30-0500",
                "03-07 03:30-0500",
                "03-08 01:30-0500",
                "03-08 03:30-0400",  # 02:30 (shifted) and 03:30 are one instant: one run
                "03-09 01:30-0400",
                "03-09 02:30-0400",
                "03-09 03:30-0400",
            ],
        ),
        (
            NEW_YORK,
            (date(2026, 10, 31), date(2026, 11, 2)),
            [
                "10-31 01:30-0400",
                "10-31 02:30-0400",
                "10-31 03:30-0400",
                "11-01 01:30-0400",
                "11-01 02:30-0500",
                "11-01 03:30-0500",
                "11-02 01:30-0500",
                "11-02 02:30-0500",
                "11-02 03:30-0500",
            ],
        ),
        (
            BERLIN,
            (date(2026, 3, 28), date(2026, 3, 30)),
            [
                "03-28 01:30+0100",
                "03-28 02:30+0100",
                "03-28 03:30+0100",
                "03-29 01:30+0100",
                "03-29 03:30+0200",
                "03-30 01:30+0200",
                "03-30 02:30+0200",
                "03-30 03:30+0200",
            ],
        ),
        (
            BERLIN,
            (date(2026, 10, 24), date(2026, 10, 26)),
            [
                "10-24 01:30+0200",
                "10-24 02:30+0200",
                "10-24 03:30+0200",
                "10-25 01:30+0200",
                "10-25 02:30+0200",
                "10-25 03:30+0100",
                "10-26 01:30+0100",
                "10-26 02:30+0100",
                "10-26 03:30+0100",
            ],
        ),
        (
            SYDNEY,
            (date(2026, 10, 3), date(2026, 10, 5)),
            [
                "10-03 01:30+1000",
                "10-03 02:30+1000",
                "10-03 03:30+1000",
                "10-04 01:30+1000",
                "10-04 03:30+1100",
                "10-05 01:30+1100",
                "10-05 02:30+1100",
                "10-05 03:30+1100",
            ],
        ),
    ],
)
def test_daily_at_iterating_over_dst_days_runs_each_time_once_per_day(
    zone: ZoneInfo, days: tuple[date, date], expected: list[str]
) -> None:
    daily = DailyAt([time(3, 30, tzinfo=zone), time(1, 30, tzinfo=zone), time(2, 30, tzinfo=zone)])
    start = datetime.combine(days[0], time(0), tzinfo=zone)
    end = datetime.combine(days[1], time(23, 59), tzinfo=zone)
    assert local_walls(runs(daily, start, end), zone) == expected


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (
            "noon",
            TypeError,
            "'time' must be a datetime.time or a sequence of datetime.time (got 'noon')",
        ),
        (9, TypeError, "'time' must be a datetime.time or a sequence of datetime.time (got 9)"),
        (
            {time(9)},
            TypeError,
            "'time' must be a datetime.time or a sequence of datetime.time"
            " (got {datetime.time(9, 0)})",
        ),
        (
            b"09",
            TypeError,
            "'time' must be a datetime.time or a sequence of datetime.time (got b'09')",
        ),
        ([time(1), time(2), "noon"], TypeError, "'time[2]' must be a datetime.time (got 'noon')"),
        (
            (time(1), datetime(2026, 1, 1)),
            TypeError,
            "'time[1]' must be a datetime.time (got datetime.datetime(2026, 1, 1, 0, 0))",
        ),
        ([], ValueError, "'time' must be a non-empty sequence (got [])"),
        ((), ValueError, "'time' must be a non-empty sequence (got ())"),
    ],
)
def test_daily_at_validation(value: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error) as info:
        DailyAt(value)  # type: ignore[arg-type]
    assert str(info.value) == message


class _NoOffset(tzinfo):
    def utcoffset(self, dt: datetime | None) -> timedelta | None:
        return None

    def dst(self, dt: datetime | None) -> timedelta | None:
        return None

    def tzname(self, dt: datetime | None) -> str | None:
        return None

    def __repr__(self) -> str:
        return "_NoOffset()"


def test_daily_at_refuses_a_tzinfo_without_offset() -> None:
    with pytest.raises(ValueError) as info:
        DailyAt([time(9), time(10, tzinfo=_NoOffset())])
    assert (
        str(info.value) == "'time[1]' must be a time whose tzinfo gives a UTC offset"
        " (got datetime.time(10, 0, tzinfo=_NoOffset()))"
    )


@pytest.mark.parametrize(
    ("daily", "text"),
    [
        (DailyAt([time(21), time(9, tzinfo=PLUS_9)]), "DailyAt(09:00+09:00, 21:00 UTC)"),
        (
            DailyAt(
                [time(7, 15, 30, tzinfo=BERLIN), time(6, tzinfo=timezone(-timedelta(hours=3.5)))]
            ),
            "DailyAt(06:00-03:30, 07:15:30 Europe/Berlin)",
        ),
        (DailyAt(time(0, 0, 0, 250)), "DailyAt(00:00:00.000250 UTC)"),
    ],
)
def test_daily_at_repr_lists_times_with_zones(daily: DailyAt, text: str) -> None:
    assert repr(daily) == str(daily) == text


# ------------------------------------------------------------------------- Cron


@pytest.mark.parametrize(
    ("expression", "moment", "expected"),
    [
        ("* * * * *", utc(2026, 1, 1, 10, 7, 30), utc(2026, 1, 1, 10, 8)),
        ("* * * * *", utc(2026, 1, 1, 10, 7), utc(2026, 1, 1, 10, 8)),
        ("*/15 * * * *", utc(2026, 1, 1, 10, 7), utc(2026, 1, 1, 10, 15)),
        ("*/15 * * * *", utc(2026, 1, 1, 10, 45), utc(2026, 1, 1, 11, 0)),
        ("5 4 * * *", utc(2026, 1, 1, 4, 5), utc(2026, 1, 2, 4, 5)),
        ("0,30 9-17 * * *", utc(2026, 1, 1, 17, 30), utc(2026, 1, 2, 9, 0)),
        ("0 8-18/4 * * *", utc(2026, 1, 1, 12, 1), utc(2026, 1, 1, 16, 0)),
        ("5/20 * * * *", utc(2026, 1, 1, 10, 26), utc(2026, 1, 1, 10, 45)),
        ("0 0 1 * *", utc(2026, 1, 15), utc(2026, 2, 1)),
        ("0 12 * 6 *", utc(2026, 7, 1), utc(2027, 6, 1, 12)),
        ("59 23 31 12 *", utc(2026, 1, 1), utc(2026, 12, 31, 23, 59)),
        ("0 0 * * 1-5", utc(2026, 1, 2, 12), utc(2026, 1, 5)),  # Friday -> Monday
        ("  0   0  *  *  *  ", utc(2026, 1, 1, 12), utc(2026, 1, 2)),
    ],
)
def test_cron_fields(expression: str, moment: datetime, expected: datetime) -> None:
    assert Cron(expression).next_after(moment) == expected


@pytest.mark.parametrize(
    ("expression", "same_as"),
    [
        ("0 9 * jan,Jul MON-fri", "0 9 * 1,7 1-5"),
        ("0 0 * * SUN", "0 0 * * 0"),
        ("0 0 * * 7", "0 0 * * 0"),
        ("0 0 * * 5-7", "0 0 * * 0,5,6"),
        ("0 0 * DEC *", "0 0 * 12 *"),
        ("0 0 * * sat", "0 0 * * 6"),
    ],
)
def test_cron_names_and_sunday_aliases(expression: str, same_as: str) -> None:
    a, b = Cron(expression), Cron(same_as)
    assert runs(a, utc(2026, 1, 1), utc(2027, 1, 1)) == runs(b, utc(2026, 1, 1), utc(2027, 1, 1))


@pytest.mark.parametrize(
    ("macro", "expansion"),
    [
        ("@hourly", "0 * * * *"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@weekly", "0 0 * * 0"),
        ("@monthly", "0 0 1 * *"),
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@DAILY", "0 0 * * *"),
    ],
)
def test_cron_macros(macro: str, expansion: str) -> None:
    for moment in (utc(2026, 1, 1), utc(2026, 3, 14, 15, 9), utc(2027, 12, 31, 23, 59)):
        assert Cron(macro).next_after(moment) == Cron(expansion).next_after(moment)


def test_cron_weekly_is_sunday_midnight() -> None:
    assert Cron("@weekly").next_after(utc(2026, 1, 1)) == utc(2026, 1, 4)


def test_cron_both_day_fields_restricted_match_either() -> None:
    # The 13th or any Friday (Vixie cron), not only Friday the 13th.
    found = runs(Cron("0 0 13 * FRI"), utc(2026, 1, 1), utc(2026, 1, 31))
    assert [moment.day for moment in found] == [2, 9, 13, 16, 23, 30]


def test_cron_one_day_field_restricted_uses_only_that_field() -> None:
    assert [m.day for m in runs(Cron("0 0 13 * *"), utc(2026, 1, 1), utc(2026, 3, 1))] == [13, 13]
    mondays = runs(Cron("0 0 * * MON"), utc(2026, 1, 1), utc(2026, 1, 31))
    assert [m.day for m in mondays] == [5, 12, 19, 26]


def test_cron_day_field_starting_with_star_counts_as_unrestricted() -> None:
    # Vixie cron: '*/2' is "star", so the day fields are ANDed: odd days that are Mondays.
    found = runs(Cron("0 0 */2 * MON"), utc(2026, 1, 1), utc(2026, 3, 1))
    assert [(m.month, m.day) for m in found] == [(1, 5), (1, 19), (2, 9), (2, 23)]


def test_cron_february_29th() -> None:
    leap = Cron("0 0 29 2 *")
    assert leap.next_after(utc(2026, 3, 1)) == utc(2028, 2, 29)
    assert leap.next_after(utc(2028, 2, 29)) == utc(2032, 2, 29)
    # 2100 is not a leap year: the next 29th of February after 2096 is in 2104.
    assert leap.next_after(utc(2097, 3, 1)) == utc(2104, 2, 29)


def test_cron_rare_expressions_are_found_without_scanning_every_minute() -> None:
    leap_monday = Cron("0 0 29 2 *")
    odd_monday_29th = Cron("30 23 */29 2 MON")  # Feb 29th or 1st that is a Monday
    began = perf.perf_counter()
    moment = utc(2000, 1, 1)
    for _ in range(25):
        moment = leap_monday.next_after(moment)
    assert moment == utc(2096, 2, 29)
    assert odd_monday_29th.next_after(utc(2026, 1, 1)) == utc(2027, 2, 1, 23, 30)
    # A minute-by-minute scan of a century would take many seconds.
    assert perf.perf_counter() - began < 1.0


@pytest.mark.parametrize(
    ("expression", "zone", "expected_local"),
    [
        (
            "*/30 * * * *",
            NEW_YORK,
            # 2026-03-08 spring forward: the 02:xx slots run shifted, merged with 03:xx.
            ["01:00-0500", "01:30-0500", "03:00-0400", "03:30-0400", "04:00-0400"],
        ),
        ("30 2 * * *", NEW_YORK, ["03:30-0400"]),
        ("0 2,3 * * *", NEW_YORK, ["03:00-0400"]),
    ],
)
def test_cron_spring_forward_in_a_zone(
    expression: str, zone: ZoneInfo, expected_local: list[str]
) -> None:
    found = runs(Cron(expression, tz=zone), utc(2026, 3, 8, 5, 30), utc(2026, 3, 8, 8))
    assert [f"{m.astimezone(zone):%H:%M%z}" for m in found] == expected_local


def test_cron_spring_forward_runs_gap_time_once_in_berlin() -> None:
    cron = Cron("30 2 * * *", tz=BERLIN)
    found = runs(cron, utc(2026, 3, 27), utc(2026, 3, 31))
    assert local_walls(found, BERLIN) == [
        "03-27 02:30+0100",
        "03-28 02:30+0100",
        "03-29 03:30+0200",
        "03-30 02:30+0200",
    ]


def test_cron_fall_back_runs_only_the_first_pass_of_the_repeated_hour() -> None:
    cron = Cron("*/30 * * * *", tz=NEW_YORK)
    found = runs(cron, utc(2026, 11, 1, 4, 45), utc(2026, 11, 1, 8))
    assert local_walls(found, NEW_YORK) == [
        "11-01 01:00-0400",
        "11-01 01:30-0400",
        # second pass of 01:xx (06:00-06:59 UTC) has no runs
        "11-01 02:00-0500",
        "11-01 02:30-0500",
        "11-01 03:00-0500",
    ]
    daily = Cron("30 1 * * *", tz=NEW_YORK)
    assert daily.next_after(utc(2026, 11, 1, 6)) == utc(2026, 11, 2, 6, 30)


def test_cron_in_a_fixed_offset_zone() -> None:
    assert Cron("0 9 * * *", tz=PLUS_9).next_after(utc(2026, 1, 1, 1)) == utc(2026, 1, 2, 0)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("0 24 * * *", "'hour' must be in 0..23 (got 24)"),
        ("60 * * * *", "'minute' must be in 0..59 (got 60)"),
        ("* * 0 * *", "'day-of-month' must be in 1..31 (got 0)"),
        ("* * 32 * *", "'day-of-month' must be in 1..31 (got 32)"),
        ("* * * 13 *", "'month' must be in 1..12 (got 13)"),
        ("* * * * 8", "'day-of-week' must be in 0..7 (got 8)"),
        ("* * * FOO *", "'month' must be in 1..12 or JAN..DEC (got 'FOO')"),
        ("* * * * MONDAY", "'day-of-week' must be in 0..7 or SUN..SAT (got 'MONDAY')"),
        ("MON * * * *", "'minute' must be in 0..59 (got 'MON')"),
        ("x * * * *", "'minute' must be in 0..59 (got 'x')"),
        ("1,,2 * * * *", "'minute' must be in 0..59 (got '')"),
        ("1- * * * *", "'minute' must be in 0..59 (got '1-')"),
        ("-1 * * * *", "'minute' must be in 0..59 (got '-1')"),
        ("? * * * *", "'minute' must be in 0..59 (got '?')"),
        ("*/0 * * * *", "'minute' must be an item whose step is >= 1 (got '*/0')"),
        ("*/x * * * *", "'minute' must be an item whose step is >= 1 (got '*/x')"),
        ("* 1-5/ * * *", "'hour' must be an item whose step is >= 1 (got '1-5/')"),
        ("* 22-2 * * *", "'hour' must be a range whose start is <= its end (got '22-2')"),
        (
            "* * * * SAT-SUN",
            "'day-of-week' must be a range whose start is <= its end (got 'SAT-SUN')",
        ),
        (
            "* * * *",
            "'expression' must be 5 fields (minute hour day-of-month month day-of-week)"
            " or a macro such as @daily (got '* * * *')",
        ),
        (
            "0 * * * * *",
            "'expression' must be 5 fields (minute hour day-of-month month day-of-week)"
            " or a macro such as @daily (got '0 * * * * *')",
        ),
        (
            "",
            "'expression' must be 5 fields (minute hour day-of-month month day-of-week)"
            " or a macro such as @daily (got '')",
        ),
        (
            "@reboot",
            "'expression' must be one of @yearly, @annually, @monthly, @weekly, @daily,"
            " @midnight, @hourly (got '@reboot')",
        ),
        (
            "0 0 31 2 *",
            "'expression' must be a schedule that matches at least one day (got '0 0 31 2 *')",
        ),
        (
            "0 0 30 2 *",
            "'expression' must be a schedule that matches at least one day (got '0 0 30 2 *')",
        ),
        (
            "0 0 31 4,6,9,11 *",
            "'expression' must be a schedule that matches at least one day"
            " (got '0 0 31 4,6,9,11 *')",
        ),
        (
            "0 0 31 2 */2",
            "'expression' must be a schedule that matches at least one day (got '0 0 31 2 */2')",
        ),
    ],
)
def test_cron_bad_expressions(expression: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        Cron(expression)
    assert str(info.value) == message


def test_cron_day_31_in_february_with_a_weekday_matches_by_weekday() -> None:
    # Both day fields restricted: either matches, so Mondays in February run.
    assert Cron("0 0 31 2 MON").next_after(utc(2026, 1, 1)) == utc(2026, 2, 2)


def test_cron_type_errors() -> None:
    with pytest.raises(TypeError) as info:
        Cron(5)  # type: ignore[arg-type]
    assert str(info.value) == "'expression' must be a str (got 5)"
    with pytest.raises(TypeError) as info:
        Cron("* * * * *", tz="Europe/Berlin")  # type: ignore[arg-type]
    assert str(info.value) == (
        "'tz' must be a datetime.tzinfo such as zoneinfo.ZoneInfo('Europe/Berlin')"
        " (got 'Europe/Berlin')"
    )


def test_cron_refuses_a_tzinfo_without_offset() -> None:
    with pytest.raises(ValueError) as info:
        Cron("* * * * *", tz=_NoOffset())
    assert str(info.value) == "'tz' must be a tzinfo that gives a UTC offset (got _NoOffset())"


@pytest.mark.parametrize(
    ("cron", "text"),
    [
        (Cron("*/5 * * * *"), "Cron('*/5 * * * *', tz=UTC)"),
        (Cron("0 9 * * MON-FRI", tz=BERLIN), "Cron('0 9 * * MON-FRI', tz=Europe/Berlin)"),
        (Cron("@daily", tz=PLUS_9), "Cron('@daily', tz=+09:00)"),
    ],
)
def test_cron_repr(cron: Cron, text: str) -> None:
    assert repr(cron) == str(cron) == text


def test_cron_equality_is_by_expression_and_zone() -> None:
    assert Cron("0 0 * * *") == Cron("0 0 * * *", tz=UTC)
    assert Cron("0 0 * * *") != Cron("0 0 * * *", tz=BERLIN)
    assert len({Cron("@daily"), Cron("@daily")}) == 1


# ----------------------------------------------------------- property tests

# Zones with DST in both hemispheres, 30-minute DST (Lord Howe), transitions
# at midnight (Havana, Santiago), a skipped calendar day (Apia, 2011-12-30),
# odd fixed offsets, and naive (= UTC).
ZONES: list[tzinfo | None] = [
    None,
    UTC,
    PLUS_9,
    timezone(timedelta(hours=-3, minutes=-30)),
    timezone(timedelta(hours=5, minutes=45)),
    NEW_YORK,
    BERLIN,
    SYDNEY,
    TOKYO,
    ZoneInfo("Australia/Lord_Howe"),
    ZoneInfo("America/Havana"),
    ZoneInfo("America/Santiago"),
    ZoneInfo("Pacific/Apia"),
]
DST_ZONES = [zone for zone in ZONES if isinstance(zone, ZoneInfo) and zone is not TOKYO]


def _transitions(zone: tzinfo, year: int) -> Iterator[datetime]:
    """UTC midnights of the days on which ``zone`` changes its offset in ``year``."""
    day = utc(year, 1, 1)
    while day.year == year:
        following = day + timedelta(days=1)
        if day.astimezone(zone).utcoffset() != following.astimezone(zone).utcoffset():
            yield day
        day = following


TRANSITIONS = sorted(
    {
        moment
        for zone in DST_ZONES
        for year in (2011, 2024, 2026, 2041)  # 2041: past tzdata's explicit rules
        for moment in _transitions(zone, year)
    }
)

near_transitions = st.builds(
    lambda base, delta: base + delta,
    st.sampled_from(TRANSITIONS),
    st.timedeltas(min_value=timedelta(days=-2), max_value=timedelta(days=2)),
)
anywhere = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2060, 1, 1), timezones=st.just(UTC)
)
moments = st.one_of(near_transitions, anywhere).flatmap(
    lambda moment: st.sampled_from([z or UTC for z in ZONES]).map(moment.astimezone)
)
# Times of day, biased towards the small hours where DST transitions happen.
walls = st.one_of(
    st.times(),
    st.builds(time, st.sampled_from([0, 1, 2, 3, 23]), st.sampled_from([0, 15, 30, 59])),
)
listed_times = st.lists(
    st.builds(lambda wall, zone: wall.replace(tzinfo=zone), walls, st.sampled_from(ZONES)),
    min_size=1,
    max_size=5,
)


def reference_slots(times: list[time], start: datetime, end: datetime) -> list[datetime]:
    """Every slot in (start, end], by the definition: each listed time on each local date."""
    slots = set()
    for item in times:
        zone = item.tzinfo or UTC
        wall = item.replace(tzinfo=None, fold=0)
        day = start.astimezone(zone).date() - timedelta(days=3)
        while day <= end.astimezone(zone).date() + timedelta(days=3):
            slot = datetime.combine(day, wall, tzinfo=zone).astimezone(UTC)
            if start < slot <= end:
                slots.add(slot)
            day += timedelta(days=1)
    return sorted(slots)


def is_listed_or_gap_shifted(result: datetime, item: time) -> bool:
    """True if ``result`` is ``item`` in its zone, or ``item`` moved forward by a DST gap."""
    zone = item.tzinfo or UTC
    wall = item.replace(tzinfo=None, fold=0)
    local = result.astimezone(zone)
    if local.time() == wall:
        # The second pass of a repeated hour (fold=1) is never a slot.
        return local.fold == 0
    for day in (local.date(), local.date() - timedelta(days=1)):
        missing = datetime.combine(day, wall)
        shift = local.replace(tzinfo=None) - missing
        if not timedelta(0) < shift <= timedelta(days=1):
            continue
        exists = (
            missing.replace(tzinfo=zone).astimezone(UTC).astimezone(zone).replace(tzinfo=None)
            == missing
        )
        offset_before = (result - shift - timedelta(seconds=1)).astimezone(zone).utcoffset()
        if not exists and offset_before is not None and offset_before + shift == local.utcoffset():
            return True
    return False


@settings(max_examples=300, deadline=None)
@given(times=listed_times, moment=moments)
def test_daily_at_next_after_is_the_earliest_listed_slot(
    times: list[time], moment: datetime
) -> None:
    daily = DailyAt(times)
    result = daily.next_after(moment)
    assert result.tzinfo is UTC
    assert result > moment
    assert any(is_listed_or_gap_shifted(result, item) for item in times)
    # No listed slot lies strictly between moment and result.
    assert reference_slots(times, moment, result) == [result]


@settings(max_examples=150, deadline=None)
@given(times=listed_times, moment=moments, days=st.integers(min_value=1, max_value=4))
def test_daily_at_iteration_runs_every_slot_once(
    times: list[time], moment: datetime, days: int
) -> None:
    end = moment + timedelta(days=days)
    found = runs(DailyAt(times), moment, end)
    # Exactly the definition's slots: none skipped, none twice, in order.
    assert found == reference_slots(times, moment, end)
    assert all(a < b for a, b in itertools.pairwise(found))
    # At most one run per listed time per day: a time's runs are about a day apart.
    for item in times:
        own = [r for r in found if is_listed_or_gap_shifted(r, item)]
        for a, b in itertools.pairwise(own):
            assert b - a >= timedelta(hours=22)


def _render(items: list[tuple[str, range]]) -> tuple[str, set[int]]:
    return ",".join(text for text, _ in items), {v for _, values in items for v in values}


@st.composite
def cron_items(draw: st.DrawFn, low: int, high: int) -> tuple[str, range]:
    """One list item of a cron field and the values it selects, computed independently."""
    kind = draw(st.sampled_from(["*", "*/n", "a", "a-b", "a-b/n", "a/n"]))
    step = draw(st.integers(min_value=1, max_value=max(1, (high - low) // 2 + 1)))
    a = draw(st.integers(min_value=low, max_value=high))
    b = draw(st.integers(min_value=a, max_value=high))
    return {
        "*": ("*", range(low, high + 1)),
        "*/n": (f"*/{step}", range(low, high + 1, step)),
        "a": (f"{a}", range(a, a + 1)),
        "a-b": (f"{a}-{b}", range(a, b + 1)),
        "a-b/n": (f"{a}-{b}/{step}", range(a, b + 1, step)),
        "a/n": (f"{a}/{step}", range(a, high + 1, step)),
    }[kind]


def cron_fields(low: int, high: int) -> st.SearchStrategy[tuple[str, set[int]]]:
    return st.one_of(
        st.just(("*", set(range(low, high + 1)))),
        st.lists(cron_items(low, high), min_size=1, max_size=3).map(_render),
    )


@st.composite
def cron_specs(draw: st.DrawFn) -> tuple[str, dict[str, set[int]], bool]:
    minute = draw(cron_fields(0, 59))
    hour = draw(cron_fields(0, 23))
    dom = draw(cron_fields(1, 31))
    month = draw(cron_fields(1, 12))
    dow = draw(cron_fields(0, 7))
    expression = " ".join(text for text, _ in (minute, hour, dom, month, dow))
    sets = {
        "minute": minute[1],
        "hour": hour[1],
        "dom": dom[1],
        "month": month[1],
        "dow": {d % 7 for d in dow[1]},
    }
    either = not dom[0].startswith("*") and not dow[0].startswith("*")
    return expression, sets, either


def matches(sets: dict[str, set[int]], either: bool, wall: datetime) -> bool:
    by_date = wall.day in sets["dom"]
    by_weekday = wall.isoweekday() % 7 in sets["dow"]
    return (
        wall.minute in sets["minute"]
        and wall.hour in sets["hour"]
        and wall.month in sets["month"]
        and ((by_date or by_weekday) if either else (by_date and by_weekday))
    )


def brute_force_next(
    sets: dict[str, set[int]], either: bool, moment: datetime, window: timedelta
) -> datetime | None:
    """The first matching minute after ``moment`` in UTC, trying every minute."""
    candidate = moment.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while candidate <= moment + window:
        if matches(sets, either, candidate):
            return candidate
        candidate += timedelta(minutes=1)
    return None


def brute_force_next_in_zone(
    sets: dict[str, set[int]], either: bool, moment: datetime, zone: tzinfo, window: timedelta
) -> datetime | None:
    """The earliest slot after ``moment``: every local wall minute around it, fold=0."""
    wall = datetime.combine(moment.astimezone(zone).date() - timedelta(days=1), time(0))
    last = wall + window + timedelta(days=3)
    best = None
    while wall <= last:
        if matches(sets, either, wall):
            slot = wall.replace(tzinfo=zone).astimezone(UTC)
            if slot > moment and (best is None or slot < best):
                best = slot
        wall += timedelta(minutes=1)
    return best if best is not None and best <= moment + window else None


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=cron_specs(), moment=anywhere)
def test_cron_matches_brute_force_minute_scan_in_utc(
    spec: tuple[str, dict[str, set[int]], bool], moment: datetime
) -> None:
    expression, sets, either = spec
    try:
        cron = Cron(expression)
    except ValueError as error:
        assume("must match at least one day" not in str(error))
        raise
    window = timedelta(days=3)
    expected = brute_force_next(sets, either, moment, window)
    result = cron.next_after(moment)
    if expected is None:
        assert result > moment + window
    else:
        assert result == expected


@settings(max_examples=200, deadline=None)
@given(
    zone=st.sampled_from(DST_ZONES),
    hours=st.sets(st.sampled_from([0, 1, 2, 3, 4, 12, 23]), min_size=1, max_size=3),
    minutes=st.sets(st.sampled_from([0, 15, 30, 45, 59]), min_size=1, max_size=3),
    moment=near_transitions,
    steps=st.integers(min_value=1, max_value=12),
)
def test_cron_daily_expression_agrees_with_daily_at_across_dst(
    zone: ZoneInfo, hours: set[int], minutes: set[int], moment: datetime, steps: int
) -> None:
    expression = f"{','.join(map(str, sorted(minutes)))} {','.join(map(str, sorted(hours)))} * * *"
    cron = Cron(expression, tz=zone)
    daily = DailyAt([time(h, m, tzinfo=zone) for h in hours for m in minutes])
    cron_moment = daily_moment = moment
    for _ in range(steps):
        cron_moment = cron.next_after(cron_moment)
        daily_moment = daily.next_after(daily_moment)
        assert cron_moment == daily_moment


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=cron_specs(), zone=st.sampled_from(DST_ZONES), moment=near_transitions)
def test_cron_matches_brute_force_wall_scan_across_dst(
    spec: tuple[str, dict[str, set[int]], bool], zone: ZoneInfo, moment: datetime
) -> None:
    expression, sets, either = spec
    try:
        cron = Cron(expression, tz=zone)
    except ValueError as error:
        assume("must match at least one day" not in str(error))
        raise
    window = timedelta(days=2)
    expected = brute_force_next_in_zone(sets, either, moment, zone, window)
    result = cron.next_after(moment)
    if expected is None:
        assert result > moment + window
    else:
        assert result == expected
