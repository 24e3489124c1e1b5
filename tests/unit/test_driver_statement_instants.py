"""The conversions pipeline/adapters/driver_statements.py does itself instead of SQLAlchemy: an instant bound on
SQLite, which must give the string SQLAlchemy's processors (``UTCDateTime`` then SQLite's ``DATETIME``) give, and an
instant sent to PostgreSQL as JSON (``json_value``): UTC without a zone, as ``UTCDateTime`` stores it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.dialects import sqlite

from pipeline.adapters.driver_statements import (
    _sqlite_instant,
    json_value,
    utc_sqlite_text,
)
from pipeline.adapters.tables import UTCDateTime

SQLALCHEMY = UTCDateTime()._cached_bind_processor(sqlite.dialect())
OFFSETS = st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes)))


@given(st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=st.just(UTC) | OFFSETS))
def test_an_aware_instant_is_the_string_sqlalchemy_stores(value: datetime) -> None:
    assert SQLALCHEMY is not None
    assert _sqlite_instant(value) == SQLALCHEMY(value)


def test_whole_seconds_keep_their_microseconds_and_old_years_their_four_digits() -> None:
    assert _sqlite_instant(datetime(2026, 11, 24, 20, 0, tzinfo=UTC)) == "2026-11-24 20:00:00.000000"
    assert _sqlite_instant(datetime(987, 1, 2, 3, 4, 5, 6, tzinfo=timezone(timedelta(hours=5, minutes=30)))) == \
        "0987-01-01 21:34:05.000006"
    assert _sqlite_instant(None) is None


def test_a_naive_datetime_is_refused_as_sqlalchemy_refuses_it() -> None:
    assert SQLALCHEMY is not None
    naive = datetime(2026, 11, 24, 20, 0)
    with pytest.raises(ValueError, match="naive"):
        SQLALCHEMY(naive)
    _sqlite_instant(naive.replace(tzinfo=UTC))  # the same wall time, aware, among the instants formatted lately
    with pytest.raises(ValueError, match="naive"):
        _sqlite_instant(naive)


def test_two_wall_times_of_a_zone_that_differ_in_fold_keep_their_own_instants() -> None:
    # They compare (and hash) equal, though an hour apart: neither is given the other's text.
    assert SQLALCHEMY is not None
    first = datetime(2026, 10, 25, 1, 30, tzinfo=ZoneInfo("Europe/London"))
    second = first.replace(fold=1)
    assert first == second and hash(first) == hash(second)
    assert (_sqlite_instant(first), _sqlite_instant(second)) == (SQLALCHEMY(first), SQLALCHEMY(second)) == (
        "2026-10-25 00:30:00.000000", "2026-10-25 01:30:00.000000")


def test_the_instants_formatted_lately_are_bounded() -> None:
    start = datetime(2026, 11, 24, tzinfo=UTC)
    for second in range(utc_sqlite_text.cache_info().maxsize + 10):
        assert _sqlite_instant(start + timedelta(seconds=second)) == SQLALCHEMY(start + timedelta(seconds=second))
    assert 0 < utc_sqlite_text.cache_info().currsize <= utc_sqlite_text.cache_info().maxsize


def test_the_same_instant_object_again_and_then_an_equal_one_in_another_zone() -> None:
    instant = datetime(2026, 11, 24, 20, 0, 0, 5, tzinfo=UTC)
    assert _sqlite_instant(instant) == _sqlite_instant(instant) == "2026-11-24 20:00:00.000005"
    elsewhere = instant.astimezone(timezone(timedelta(hours=-3)))
    assert _sqlite_instant(elsewhere) == "2026-11-24 20:00:00.000005"
    assert _sqlite_instant(datetime(2026, 11, 24, 20, 0, 1, tzinfo=UTC)) == "2026-11-24 20:00:01.000000"


@given(st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=st.just(UTC) | OFFSETS))
def test_an_instant_sent_as_json_is_its_utc_text_without_a_zone(value: datetime) -> None:
    expected = value.astimezone(UTC).replace(tzinfo=None).isoformat()
    assert json_value(value) == json_value(value) == expected  # the second time, the same object's kept text
    assert json_value(value.astimezone(timezone(timedelta(hours=7)))) == expected


def test_a_naive_datetime_is_not_sent_as_json_and_a_date_is_its_iso_text() -> None:
    with pytest.raises(ValueError, match="naive"):
        json_value(datetime(2026, 11, 24, 20, 0))
    assert json_value(datetime(2026, 11, 24, 20, 0, tzinfo=UTC).date()) == "2026-11-24"
