"""Working days, working hours and school days in Europe/London, and resolving timescales to instants.

Working days skip weekends and England and Wales bank holidays (from the maintained ``holidays``
library); school days also skip the council's term holidays, which a school (an academy) may replace
with its own. Inputs must be timezone-aware; outputs are aware UTC instants. Wall-clock times such as
"12:00 on the next school day" are resolved in local time, so they stay right across clock changes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import holidays

LONDON = ZoneInfo("Europe/London")  # where the rules run (domain.md, "Time"): the calendar's default zone


@dataclass(frozen=True)
class Duration:
    delta: timedelta


@dataclass(frozen=True)
class SchoolDays:
    """The Nth school day from the start (0: the start's own day if a school day, else the next) at `at`
    (None: at the end of the school day, the council's ``school_day_end``)."""

    days: int
    at: time | None


@dataclass(frozen=True)
class WorkingDays:
    days: int
    at: time


@dataclass(frozen=True)
class WorkingHours:
    hours: float


Timescale = Duration | SchoolDays | WorkingDays | WorkingHours

_ISO_DURATION = re.compile(
    r"^P(?:(?P<weeks>\d+)W|(?:(?P<days>\d+)D)?(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?)$"
)


def parse_clock(value: object) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
        # YAML 1.1 (PyYAML) reads an unquoted 12:00 as the sexagesimal integer 720: minutes past midnight.
        return time(value // 60, value % 60)
    if isinstance(value, str) and re.fullmatch(r"\d{1,2}:\d{2}", value):
        hours, minutes = (int(part) for part in value.split(":"))
        return time(hours, minutes)
    raise ValueError("a time of day must be written HH:MM")


def parse_timescale(value: object) -> Timescale:
    """An ISO-8601 duration, {school_days: N, at: HH:MM | school_day_end}, {working_days: N, at: HH:MM} or
    {working_hours: N}."""
    if isinstance(value, str):
        match = _ISO_DURATION.match(value.strip())
        if not match or value.strip() in ("P", "PT"):
            raise ValueError("not an ISO-8601 duration such as PT10S, PT2H or P3D")
        parts = {k: float(v) for k, v in match.groupdict().items() if v is not None}
        return Duration(timedelta(weeks=parts.get("weeks", 0), days=parts.get("days", 0),
                                  hours=parts.get("hours", 0), minutes=parts.get("minutes", 0),
                                  seconds=parts.get("seconds", 0)))
    if isinstance(value, Mapping):
        keys = set(value)
        if keys == {"working_hours"}:
            hours = value["working_hours"]
            if not isinstance(hours, int | float) or isinstance(hours, bool) or hours < 0:
                raise ValueError("working_hours must be a non-negative number")
            return WorkingHours(float(hours))
        for name, kind in (("school_days", SchoolDays), ("working_days", WorkingDays)):
            if name in keys and keys <= {name, "at"}:
                days = value[name]
                if not isinstance(days, int) or isinstance(days, bool) or days < 0:
                    raise ValueError(f"{name} must be a non-negative whole number")
                at = value.get("at", "09:00")
                if kind is SchoolDays and at == "school_day_end":
                    return SchoolDays(days, None)
                return kind(days, parse_clock(at))
    raise ValueError("a timescale is an ISO-8601 duration, {school_days: N, at: HH:MM}, "
                     "{working_days: N, at: HH:MM} or {working_hours: N}")


@dataclass(frozen=True)
class DateRange:
    first: date
    last: date

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.first <= day <= self.last


def _ranges(items: Any) -> tuple[DateRange, ...]:
    ranges = []
    for item in items or ():
        first, last = item["from"], item["to"]
        first = first if isinstance(first, date) else date.fromisoformat(str(first))
        last = last if isinstance(last, date) else date.fromisoformat(str(last))
        if last < first:
            raise ValueError("a term holiday ends before it starts")
        ranges.append(DateRange(first, last))
    return tuple(ranges)


@dataclass(frozen=True)
class CalendarConfig:
    """The YAML shape (under ``calendar:`` in config/):

    timezone: Europe/London
    school_day_start: "08:30"
    school_day_end: "15:30"
    working_hours: {start: "09:00", end: "17:00"}
    term_holidays: [{from: 2026-10-26, to: 2026-10-30, name: autumn half term}]
    school_term_holidays: {"100001": [...]}   # replaces the council list for that school
    extra_closures: [2026-05-08]
    """

    timezone: str = "Europe/London"
    school_day_start: time = time(8, 30)
    school_day_end: time = time(15, 30)
    working_day_start: time = time(9, 0)
    working_day_end: time = time(17, 0)
    term_holidays: tuple[DateRange, ...] = ()
    school_term_holidays: Mapping[str, tuple[DateRange, ...]] = field(default_factory=dict)
    extra_closures: tuple[date, ...] = ()

    @classmethod
    def from_mapping(cls, m: Mapping[str, Any]) -> CalendarConfig:
        hours = m.get("working_hours") or {}
        return cls(
            timezone=m.get("timezone", "Europe/London"),
            school_day_start=parse_clock(m.get("school_day_start", "08:30")),
            school_day_end=parse_clock(m.get("school_day_end", "15:30")),
            working_day_start=parse_clock(hours.get("start", "09:00")),
            working_day_end=parse_clock(hours.get("end", "17:00")),
            term_holidays=_ranges(m.get("term_holidays")),
            school_term_holidays={str(urn): _ranges(v) for urn, v in (m.get("school_term_holidays") or {}).items()},
            extra_closures=tuple(d if isinstance(d, date) else date.fromisoformat(str(d))
                                 for d in m.get("extra_closures") or ()),
        )


@lru_cache(maxsize=64)
def _bank_holidays(year: int) -> frozenset[date]:
    # England and Wales share one list of bank holidays (substitute days included).
    return frozenset(holidays.country_holidays("GB", subdiv="ENG", years=year))


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("naive datetimes are rejected: every time needs an offset")
    return value


class Calendar:
    def __init__(self, config: CalendarConfig) -> None:
        self.config = config
        self.tz = ZoneInfo(config.timezone)
        # Answers by day (and by school, for a school with term holidays of its own): the configuration never
        # changes, and every deadline asks about the same few days again.
        self._working: dict[date, bool] = {}
        self._school: dict[tuple[date, str | None], bool] = {}
        self._term: dict[tuple[date, str | None], bool] = {}
        self._instants: dict[tuple[date, time], datetime] = {}  # a day's local clock time as a UTC instant

    def local(self, instant: datetime) -> datetime:
        return _aware(instant).astimezone(self.tz)

    def warm_up(self, today: date) -> None:
        """Load this year's and next year's bank holidays now (the first lookup imports the holidays package's
        country data, about half a second), so no event's deadline pays for it."""
        for year in (today.year, today.year + 1):
            _bank_holidays(year)

    def _at(self, day: date, clock: time) -> datetime:
        found = self._instants.get((day, clock))
        if found is None:
            found = self._instants[day, clock] = datetime.combine(day, clock, tzinfo=self.tz).astimezone(UTC)
        return found

    def is_working_day(self, day: date) -> bool:
        known = self._working.get(day)
        if known is None:
            known = self._working[day] = (day.weekday() < 5 and day not in _bank_holidays(day.year)
                                          and day not in self.config.extra_closures)
        return known

    def is_school_day(self, day: date, school_urn: str | None = None) -> bool:
        own = self._own_terms(school_urn)
        known = self._school.get((day, own))
        if known is None:
            known = self._school[(day, own)] = self.is_working_day(day) and self.in_term(day, own)
        return known

    def in_term(self, day: date, school_urn: str | None) -> bool:
        """Inside a term (weekends included), i.e. not within the school's (if it has its own) or the council's
        term holidays."""
        own = self._own_terms(school_urn)
        known = self._term.get((day, own))
        if known is None:
            holidays_here = self.config.term_holidays if own is None else self.config.school_term_holidays[own]
            known = self._term[day, own] = not any(day in period for period in holidays_here)
        return known

    def _own_terms(self, school_urn: str | None) -> str | None:
        """``school_urn`` if that school has term dates of its own, else None (the council's): the key both term
        questions are kept under, so schools on the council's dates share one answer per day."""
        return school_urn if school_urn is not None and school_urn in self.config.school_term_holidays else None

    def _next_day(self, day: date, test: Any, include: bool) -> date:
        candidate = day if include else day + timedelta(days=1)
        for _ in range(800):
            if test(candidate):
                return candidate
            candidate += timedelta(days=1)
        raise ValueError("no qualifying day within two years: check the term holidays")

    def next_working_day(self, after: date) -> date:
        return self._next_day(after, self.is_working_day, include=False)

    def next_school_day_start(self, after: datetime, school_urn: str | None = None) -> datetime:
        """The start of the first school day that starts strictly after ``after``."""
        local = self.local(after)
        day = self._next_day(local.date(), lambda d: self.is_school_day(d, school_urn), include=True)
        start = self._at(day, self.config.school_day_start)
        if start <= after:
            day = self._next_day(day, lambda d: self.is_school_day(d, school_urn), include=False)
            start = self._at(day, self.config.school_day_start)
        return start

    def working_days_between(self, a: date, b: date) -> int:
        """Working days strictly between two dates."""
        return sum(1 for n in range(1, (b - a).days) if self.is_working_day(a + timedelta(days=n)))

    def end_of_working_day(self, at: datetime) -> datetime:
        local = self.local(at)
        if self.is_working_day(local.date()) and local.time() < self.config.working_day_end:
            return self._at(local.date(), self.config.working_day_end)
        return self._at(self.next_working_day(local.date()), self.config.working_day_end)

    def add_working_hours(self, start: datetime, hours: float) -> datetime:
        remaining = timedelta(hours=hours)
        local = self.local(start)
        day = local.date()
        cursor = start.astimezone(UTC)
        for _ in range(2000):
            if self.is_working_day(day):
                opens = self._at(day, self.config.working_day_start)
                closes = self._at(day, self.config.working_day_end)
                begin = max(cursor, opens)
                if begin < closes:
                    if begin + remaining <= closes:
                        return begin + remaining
                    remaining -= closes - begin
            day += timedelta(days=1)
            cursor = self._at(day, time(0, 0))
        raise ValueError("working hours run beyond the calendar's range")

    def resolve(self, timescale: Timescale, start: datetime, school_urn: str | None = None) -> datetime:
        """The instant a timescale ends, counted from ``start``."""
        _aware(start)
        if isinstance(timescale, Duration):
            return (start + timescale.delta).astimezone(UTC)
        if isinstance(timescale, WorkingHours):
            return self.add_working_hours(start, timescale.hours)
        if isinstance(timescale, SchoolDays):
            at = timescale.at if timescale.at is not None else self.config.school_day_end
            if timescale.days == 0:
                day = self._next_day(self.local(start).date(), lambda d: self.is_school_day(d, school_urn), True)
                if self._at(day, at) <= start:  # that school day's time has passed: the next one
                    day = self._next_day(day, lambda d: self.is_school_day(d, school_urn), include=False)
            else:
                day = self.local(self.next_school_day_start(start, school_urn)).date()
                for _ in range(timescale.days - 1):
                    day = self._next_day(day, lambda d: self.is_school_day(d, school_urn), include=False)
            return self._at(day, at)
        day = self.local(start).date()
        if timescale.days == 0:
            day = self._next_day(day, self.is_working_day, include=True)
            if self._at(day, timescale.at) <= start:
                day = self.next_working_day(day)
        for _ in range(timescale.days):
            day = self.next_working_day(day)
        return self._at(day, timescale.at)
