"""How the web app writes times, dates and codes for people."""

from __future__ import annotations

from datetime import UTC, date, datetime
from types import SimpleNamespace

from pipeline.web.overdue import trail_rows
from pipeline.web.words import (
    full_name,
    london,
    london_time,
    long_date,
    minutes_words,
    owner_words,
    role_words,
    school_words,
    words,
)


def test_times_are_london_time_written_as_people_read_them() -> None:
    assert london(datetime(2026, 12, 1, 21, 14, 59, 123456, tzinfo=UTC)) == "Tuesday 1 December 2026 at 9:14pm"
    assert london(datetime(2026, 7, 1, 8, 0, tzinfo=UTC)) == "Wednesday 1 July 2026 at 9am"  # BST
    assert london("2026-03-29T11:00:00+00:00") == "Sunday 29 March 2026 at midday"
    assert london(datetime(2026, 1, 5, 0, 0, tzinfo=UTC)) == "Monday 5 January 2026 at midnight"
    assert london_time(datetime(2026, 12, 1, 12, 30, tzinfo=UTC)) == "12:30pm"
    assert london(None) == "Not known"


def test_dates_and_names() -> None:
    assert long_date(date(2013, 5, 14)) == "14 May 2013"
    assert long_date("2013-05-04") == "4 May 2013"
    assert long_date(datetime(2026, 6, 30, 23, 30, tzinfo=UTC)) == "1 July 2026"  # already 1 July in London
    assert full_name({"given_name": "Amelia", "family_name": "Hartley", "upn": "X"}) == "Amelia Hartley"
    assert full_name({"given_name": None, "family_name": "Hartley"}) == "Hartley"
    assert full_name(None) == "Name not known"


def test_enumerations_are_words_never_codes() -> None:
    assert words("NOT_SOUGHT") == "Not sought"
    assert words("deputy_dsl") == "Deputy designated safeguarding lead"
    assert words("self_harm_acknowledgement") == "School acknowledgement"
    assert words("LA_888") == "Council 888"
    assert words("SOMETHING_NEW") == "Something new"
    assert words(True) == "Yes" and words(False) == "No" and words(None) == "Not known"


def test_lengths_of_time_are_counted_in_words() -> None:
    assert [minutes_words(m) for m in (0, 1, 59, 60, 61, 125, 24 * 60, 24 * 60 + 61)] == [
        "0 minutes", "1 minute", "59 minutes", "1 hour", "1 hour 1 minute", "2 hours 5 minutes", "1 day",
        "1 day 1 hour"]


def test_a_case_record_shows_a_double_written_entry_once_and_a_run_of_views_as_one_line() -> None:
    at = [datetime(2026, 12, 1, 9, minute, tzinfo=UTC) for minute in range(6)]
    entry = SimpleNamespace
    record = [entry(at=at[0], actor="system", action="escalated", reason="level 1 (reminder)"),
              entry(at=at[0], actor="system", action="escalated", reason="level 1 (reminder)"),  # deadline, subject
              *(entry(at=at[n], actor="hos@c.example", action="viewed", reason="overdue board row") for n in (1, 2, 3)),
              entry(at=at[4], actor="hos@c.example", action="viewed", reason="overdue case page"),
              entry(at=at[5], actor="hos@c.example", action="viewed", reason="overdue board row")]
    rows = [(r["action"], r["reason"], r["views"], r["until"]) for r in trail_rows(record)]
    assert rows == [("escalated", "level 1 (reminder)", 1, None), ("viewed", "overdue board row", 3, at[3]),
                    ("viewed", "overdue case page", 1, None), ("viewed", "overdue board row", 1, None)]


def test_owners_and_roles_on_the_board_are_in_words_and_a_councils_team_code_is_kept() -> None:
    assert owner_words("dsl: 100001") == "Designated safeguarding lead (100001)"
    assert owner_words("FRONT_DOOR") == "Front door"
    assert owner_words("UNALLOCATED") == "Not allocated"
    assert [role_words(r) for r in ("deputy_dsl", "SCIES", "LA_888", "CLA_TEAM")] == [
        "Deputy designated safeguarding lead", "Schools' safeguarding team (SCiES)", "Council 888", "CLA_TEAM"]


def test_a_school_on_the_board_by_name_by_urn_or_none() -> None:
    assert school_words("Riverside Primary School", "100001") == "Riverside Primary School (100001)"
    assert school_words(None, "100009") == "100009"
    assert [school_words(None, urn) for urn in (None, "", "NONE")] == ["No school"] * 3
