"""Cases, not copies: how an inbox groups a school's copies and reminders and orders them, and reasons in words."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from pipeline.adapters import tables as t
from pipeline.web.inbox import (
    build_cases,
    ladder_label,
    order_cases,
    reason_words,
    steps_to_come,
    summary_rows,
)

NOW = datetime(2026, 11, 25, 13, 0, tzinfo=UTC)


def note(id_: str, role: str, kind: str = "alert", deadline: str | None = "d1", at: datetime = NOW,
         reason: str = "pupil on the school's roll", content: dict | None = None) -> t.Notification:  # type: ignore[type-arg]
    return t.Notification(id=id_, event_id="e1", pathway="self-harm", kind=kind, plan_key=id_, recipient_role=role,
                          recipient_ref="100001", school_urn="100001", urgency="ROUTINE", reason=reason,
                          status="delivered", content_json=json.dumps(content or {"pupil": {"given_name": "A"}}),
                          deadline_id=deadline, created_at=at)


def deadline(id_: str, due: datetime) -> t.Deadline:
    return t.Deadline(id=id_, kind="self_harm_acknowledgement", subject_id="n1", due_at=due, steps_json="[]",
                      created_at=NOW)


def test_copies_and_reminders_are_one_case_and_overdue_comes_first() -> None:
    old = NOW - timedelta(days=1)
    rows = [note("n1", "dsl", at=old), note("n2", "deputy_dsl", at=old),
            note("r1", "dsl", "reminder", at=NOW), note("r2", "deputy_dsl", "reminder", at=NOW),
            note("m1", "dsl", deadline=None, at=NOW + timedelta(minutes=5))]
    fired = [rows[2], rows[3], note("x1", "SCIES", "escalation", at=NOW + timedelta(minutes=1))]
    cases = order_cases(build_cases(rows, {"d1": deadline("d1", NOW - timedelta(hours=1))}, fired), NOW)
    assert [len(c.rows) for c in cases] == [4, 1]  # the overdue case first, though the other is newer
    first = cases[0]
    assert first.primary.id == "n1" and first.overdue(NOW) and first.is_new
    assert [f.id for f in first.fired] == ["r1", "x1"]  # one reminder for the school, then the escalation
    first.rows[1].acknowledged_at = NOW
    assert not first.overdue(NOW) and first.acknowledged is first.rows[1]


def test_reasons_in_words() -> None:
    reminder = note("r1", "dsl", "reminder", content={"deadline_kind": "self_harm_acknowledgement",
                                                      "due_at": "2026-11-25T12:00:00+00:00", "level": 1})
    reminder.reason = "self_harm_acknowledgement reminder level 1"
    assert reason_words(reminder) == ("Reminder: school acknowledgement was not done by "
                                      "Wednesday 25 November 2026 at midday")
    fallback = note("f1", "FRONT_DOOR", reason="no contact on file for deputy_dsl: pupil on the school's roll")
    assert reason_words(fallback) == ("Sent to you because there is no contact on file for the deputy designated "
                                      "safeguarding lead. Pupil on the school's roll")


def test_a_waiting_case_says_what_its_ladder_will_still_do_and_an_acknowledged_one_does_not() -> None:
    due = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    ladder = deadline("d1", due)
    ladder.steps_json = json.dumps([
        {"at": due.isoformat(), "notify": ["dsl", "deputy_dsl"], "action": "reminder"},
        {"at": (due + timedelta(hours=2)).isoformat(), "notify": ["SCIES"], "action": "escalation"},
        {"at": (due + timedelta(hours=3, minutes=30)).isoformat(), "notify": ["EDUCATION_SAFEGUARDING_LEAD"],
         "action": "escalation"}])
    ladder.escalation_level = 1  # the reminder has gone
    (case,) = build_cases([note("n1", "dsl")], {"d1": ladder}, [])
    assert steps_to_come(case) == [
        "Wednesday 25 November 2026 at 2pm: the schools' safeguarding team (SCiES) told",
        "Wednesday 25 November 2026 at 3:30pm: the education safeguarding lead told"]
    assert "If it is not acknowledged" in [row["key"]["text"] for row in summary_rows(case)]
    ladder.escalation_level = 0
    assert steps_to_come(case)[0] == ("Wednesday 25 November 2026 at midday: a reminder to the designated "
                                      "safeguarding lead and the deputy designated safeguarding lead")
    ladder.state = "closed"  # the school's acknowledgement closed it
    assert steps_to_come(case) == []
    assert "If it is not acknowledged" not in [row["key"]["text"] for row in summary_rows(case)]


def test_the_steps_to_come_say_what_they_wait_for_and_name_a_council_as_it_is() -> None:
    ladder = deadline("d1", NOW + timedelta(hours=1))
    ladder.steps_json = json.dumps([{"at": (NOW + timedelta(hours=1)).isoformat(), "notify": ["LA_888", "CLA_TEAM"],
                                     "action": "escalation"}])
    (school,) = build_cases([note("n1", "dsl")], {"d1": ladder}, [])
    assert ladder_label(school) == "If it is not acknowledged"
    assert steps_to_come(school) == ["Wednesday 25 November 2026 at 2pm: Council 888 and CLA_TEAM told"]
    # SCiES's copy of an escalation: its acknowledgement does not stop the ladder.
    (scies,) = build_cases([note("x1", "SCIES", "escalation")], {"d1": ladder}, [])
    assert ladder_label(scies) == "Still to come on this deadline"
    (review,) = build_cases([note("v1", "FRONT_DOOR", "review")], {"d1": ladder}, [])
    assert ladder_label(review) == "If it is not decided"


def test_the_longest_overdue_comes_first_and_a_waiting_case_is_one_not_yet_acknowledged() -> None:
    from pipeline.web.inbox import waiting

    rows = [note("a", "dsl", deadline="late", at=NOW - timedelta(hours=1)),
            note("b", "dsl", deadline="later", at=NOW - timedelta(days=3)),
            note("c", "dsl", deadline="open", at=NOW - timedelta(minutes=5)),
            note("d", "dsl", deadline=None, at=NOW - timedelta(minutes=1))]
    deadlines = {"late": deadline("late", NOW - timedelta(minutes=30)),
                 "later": deadline("later", NOW - timedelta(days=2)),
                 "open": deadline("open", NOW + timedelta(hours=2))}
    cases = order_cases(build_cases(rows, deadlines, []), NOW)
    assert [c.primary.id for c in cases] == ["b", "a", "d", "c"]  # overdue by how long, then the newest
    rows[0].acknowledged_at = NOW
    assert [waiting(c) for c in cases] == [True, False, True, True]


def test_pages_keep_the_filter_clamp_the_number_and_elide_the_middle() -> None:
    from starlette.requests import Request

    from pipeline.web.pagination import Pages

    def request(query: str) -> Request:
        return Request({"type": "http", "path": "/notifications", "query_string": query.encode(), "headers": []})

    pages = Pages.of(request("show=waiting&page=5"), total=451, per_page=50)
    assert (pages.number, pages.count, pages.first_shown, pages.last_shown) == (5, 10, 201, 250)
    params = pages.component(request("show=waiting&decided=1&page=5"), keep=("show",))
    assert params is not None
    assert params["previous"]["href"] == "/notifications?show=waiting&page=4"
    assert params["next"]["href"] == "/notifications?show=waiting&page=6"
    assert [i.get("number", "…") for i in params["items"]] == [1, "…", 4, 5, 6, "…", 10]
    assert [i["number"] for i in params["items"] if i.get("current")] == [5]
    assert Pages.of(request("page=99"), total=451, per_page=50).number == 10
    assert Pages.of(request("page=-3"), total=451, per_page=50).number == 1
    assert Pages.of(request("page=%C2%B2"), total=451, per_page=50).number == 1  # a digit, but not 0-9
    assert Pages.of(request(""), total=0).component(request("")) is None  # one page: no pagination shown
    assert Pages.of(request(""), total=0).slice([]) == []
