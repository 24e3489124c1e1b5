"""The school-day and working-hours calendar: bank holidays, term holidays, per-school terms, clock changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.domain.calendar import (
    Calendar,
    CalendarConfig,
    DateRange,
    Duration,
    SchoolDays,
    WorkingDays,
    WorkingHours,
    parse_clock,
    parse_timescale,
)
from pipeline.domain.policy import Policy
from pipeline.settings import Settings

pytestmark = pytest.mark.unit

CAL = Policy.from_mapping(Settings().rules).calendar  # the demo council's terms (config/calendar.yaml)
NOON = time(12, 0)
ACADEMY = "100009"
ACADEMY_CAL = Calendar(CalendarConfig(
    term_holidays=CAL.config.term_holidays,
    school_term_holidays={ACADEMY: (DateRange(date(2026, 10, 19), date(2026, 10, 30)),)},
))


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def test_england_and_wales_bank_holidays_are_not_working_days() -> None:
    for holiday in (date(2026, 4, 3), date(2026, 4, 6), date(2026, 5, 4), date(2026, 5, 25), date(2026, 8, 31),
                    date(2026, 12, 25), date(2026, 12, 28)):  # 28 Dec: Boxing Day's substitute
        assert not CAL.is_working_day(holiday)
    assert CAL.is_working_day(date(2026, 11, 24))
    assert not CAL.is_working_day(date(2026, 11, 28))  # Saturday


def test_across_the_august_bank_holiday_weekend() -> None:
    friday_evening = utc(2026, 8, 28, 18, 0)
    assert CAL.next_working_day(date(2026, 8, 28)) == date(2026, 9, 1)
    assert CAL.add_working_hours(friday_evening, 2) == utc(2026, 9, 1, 10, 0)  # 11:00 BST


def test_easter_and_the_spring_term() -> None:
    # Thursday before Good Friday 2027, evening: Easter holidays then Easter Monday.
    assert CAL.resolve(SchoolDays(1, NOON), utc(2027, 3, 25, 19, 0)) == utc(2027, 4, 12, 11, 0)


def test_half_term_skips_to_the_monday_after() -> None:
    assert not CAL.is_school_day(date(2026, 10, 28))
    assert CAL.is_working_day(date(2026, 10, 28))
    assert CAL.resolve(SchoolDays(1, NOON), utc(2026, 10, 23, 20, 0)) == utc(2026, 11, 2, 12, 0)


def test_the_summer_holiday() -> None:
    assert CAL.next_school_day_start(utc(2026, 7, 21, 16, 0)) == utc(2026, 9, 3, 7, 30)  # 08:30 BST


def test_christmas() -> None:
    assert CAL.resolve(SchoolDays(1, NOON), utc(2026, 12, 18, 16, 0)) == utc(2027, 1, 4, 12, 0)


def test_a_school_may_keep_its_own_holidays() -> None:
    monday = utc(2026, 10, 19, 7, 0)  # the academy's half term starts a week earlier
    assert ACADEMY_CAL.is_school_day(date(2026, 10, 19))
    assert not ACADEMY_CAL.is_school_day(date(2026, 10, 19), ACADEMY)
    assert ACADEMY_CAL.resolve(SchoolDays(1, NOON), monday, ACADEMY) == utc(2026, 11, 2, 12, 0)
    assert ACADEMY_CAL.resolve(SchoolDays(1, NOON), monday) == utc(2026, 10, 19, 11, 0)


def test_next_school_day_is_the_first_whose_start_is_after_the_arrival() -> None:
    assert CAL.next_school_day_start(utc(2026, 11, 24, 8, 29)) == utc(2026, 11, 24, 8, 30)
    assert CAL.next_school_day_start(utc(2026, 11, 24, 8, 30)) == utc(2026, 11, 25, 8, 30)
    assert CAL.next_school_day_start(utc(2026, 11, 27, 20, 0)) == utc(2026, 11, 30, 8, 30)


def test_working_hours_skip_evenings_and_weekends() -> None:
    assert CAL.add_working_hours(utc(2026, 11, 24, 16, 0), 2) == utc(2026, 11, 25, 10, 0)
    assert CAL.add_working_hours(utc(2026, 11, 27, 16, 30), 1) == utc(2026, 11, 30, 9, 30)
    assert CAL.add_working_hours(utc(2026, 11, 28, 3, 0), 0.5) == utc(2026, 11, 30, 9, 30)


def test_same_working_day_rolls_to_the_next_after_hours() -> None:
    assert CAL.resolve(WorkingDays(0, time(17, 0)), utc(2026, 11, 24, 10, 0)) == utc(2026, 11, 24, 17, 0)
    assert CAL.resolve(WorkingDays(0, time(17, 0)), utc(2026, 11, 24, 18, 0)) == utc(2026, 11, 25, 17, 0)
    assert CAL.resolve(WorkingDays(3, time(17, 0)), utc(2026, 11, 26, 10, 0)) == utc(2026, 12, 1, 17, 0)


def test_clock_changes() -> None:
    # Last Sunday of March 2026 (29th, in the Easter holidays): noon on the Monday is 11:00 UTC, and the
    # first school day after Easter starts 08:30 BST; a plain duration is absolute time.
    assert CAL.resolve(WorkingDays(1, NOON), utc(2026, 3, 27, 20, 0)) == utc(2026, 3, 30, 11, 0)
    assert CAL.resolve(SchoolDays(1, NOON), utc(2026, 3, 27, 20, 0)) == utc(2026, 4, 13, 11, 0)
    assert CAL.resolve(Duration(timedelta(hours=24)), utc(2026, 3, 28, 12, 0)) == utc(2026, 3, 29, 12, 0)
    # Last Sunday of October 2026 (25th) falls in half term: the school day after is 2 November, GMT.
    assert CAL.resolve(SchoolDays(1, NOON), utc(2026, 10, 23, 16, 0)) == utc(2026, 11, 2, 12, 0)
    # 16:00 BST Friday: one hour that day, one on Monday after the change (09:00-10:00 GMT).
    assert CAL.add_working_hours(utc(2026, 10, 23, 15, 0), 2) == utc(2026, 10, 26, 10, 0)


def test_naive_times_are_rejected() -> None:
    with pytest.raises(ValueError, match="naive"):
        CAL.resolve(SchoolDays(1, NOON), datetime(2026, 11, 24, 20, 0))


@pytest.mark.parametrize("text,expected", [
    ("PT10S", Duration(timedelta(seconds=10))), ("PT2H", Duration(timedelta(hours=2))),
    ("P3D", Duration(timedelta(days=3))), ("PT1M30S", Duration(timedelta(seconds=90))),
    ({"school_days": 1, "at": "12:00"}, SchoolDays(1, NOON)), ({"working_hours": 2}, WorkingHours(2.0)),
    ({"working_days": 0, "at": "17:00"}, WorkingDays(0, time(17, 0))),
])
def test_parse_timescale(text: object, expected: object) -> None:
    assert parse_timescale(text) == expected


@pytest.mark.parametrize("bad", ["10 seconds", "P", "PT", {"school_days": -1}, {"hours": 3},
                                 {"working_hours": "two"}, 5, {"school_days": 1, "at": "noon"}])
def test_parse_timescale_rejects(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_timescale(bad)


@given(st.datetimes(min_value=datetime(2025, 9, 1), max_value=datetime(2028, 6, 30), timezones=st.just(UTC)))
def test_next_school_day_properties(start: datetime) -> None:
    due = CAL.resolve(SchoolDays(1, NOON), start)
    day = CAL.local(due).date()
    assert CAL.is_school_day(day)
    assert CAL.next_school_day_start(start) > start
    assert CAL.local(CAL.next_school_day_start(start)).date() == day
    first = CAL.local(start).date() + timedelta(days=1)
    assert not any(CAL.is_school_day(first + timedelta(days=n)) for n in range((day - first).days))


@given(st.datetimes(min_value=datetime(2025, 9, 1), max_value=datetime(2028, 6, 30), timezones=st.just(UTC)),
       st.floats(min_value=0, max_value=40))
def test_working_hours_never_end_outside_working_time(start: datetime, hours: float) -> None:
    end = CAL.add_working_hours(start, hours)
    assert end >= start
    local = CAL.local(end)
    if hours > 0:
        assert CAL.is_working_day(local.date())
        assert time(9, 0) < local.time() <= time(17, 0) or local.time() == time(9, 0)


@pytest.mark.parametrize("value,expected", [(720, time(12, 0)), (570, time(9, 30)), (0, time(0, 0)),
                                            (1439, time(23, 59)), ("12:00", time(12, 0))])
def test_parse_clock_reads_yaml_sexagesimal_integers_as_minutes(value: object, expected: time) -> None:
    assert parse_clock(value) == expected


@pytest.mark.parametrize("bad", [1440, -1, True, "noon"])
def test_parse_clock_rejects(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_clock(bad)


def test_in_term_follows_the_council_and_a_school_with_its_own_holidays_and_is_kept_per_calendar() -> None:
    half_term = date(2026, 10, 28)  # the council's autumn half term (config/calendar.yaml)
    early = date(2026, 10, 20)  # the academy's own half term starts a week earlier
    for _ in range(2):  # the second time from what was kept: the same answers
        assert not CAL.in_term(half_term, None) and not CAL.in_term(half_term, "100001")
        assert CAL.in_term(early, None)
        assert ACADEMY_CAL.in_term(early, None) and not ACADEMY_CAL.in_term(early, ACADEMY)
    moved = Calendar(CalendarConfig(term_holidays=(DateRange(date(2026, 10, 19), date(2026, 10, 23)),)))
    assert moved.in_term(half_term, None) and not moved.in_term(early, None)
