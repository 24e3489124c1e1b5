"""A child on two schools' rolls (dual registration: a pupil referral unit and a mainstream school, say), or who
moved school, has a pupils row at each school (pipeline/service/reference.py, ``pupil_row_key``). Against the
store port's fake: the file loads, the child is matched as one child, and every school the child is on the roll of
that day is told; a school the child has left is not. Two rows of one UPN that disagree on the date of birth (two
children given one UPN by mistake) are refused, without echoing the values."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from pipeline.adapters.memory_store import MemoryStore
from pipeline.domain.model import DeadlineKind, EventStatus, MatchOutcome
from pipeline.service.dispatch import process
from pipeline.service.handlers import Context
from pipeline.service.reference import ReferenceError, load
from pipeline.settings import Settings
from tests.support.store_ports import loaded_memory_store
from tests.support.world import OLIVER, PUPILS, REFERENCE, TERM_EVENING, attendance

pytestmark = pytest.mark.unit

HILLTOP, RIVERSIDE = "100002", "100001"  # Oliver's school in the test world, and another in-area state school
AT_RIVERSIDE = "B999100100002,,Oliver,Brennan,2011-02-03,M,NS2 3CD,100001,2026-09-01,\n"
MOVED = PUPILS.replace("100002,2022-09-01,", "100002,2022-09-01,2026-10-31") + AT_RIVERSIDE.replace(
    "2026-09-01", "2026-11-02")


def _world(pupils: str) -> tuple[MemoryStore, Context]:
    return loaded_memory_store(TERM_EVENING, {**REFERENCE, "pupils": pupils}), Context.build(Settings().rules)


def _run(store: MemoryStore, ctx: Context, event_type: str, body: dict[str, Any]) -> Any:
    store.add_event(event_type, body, TERM_EVENING)
    with store.unit_of_work() as port:
        (event,) = port.events_by_id([body["event_id"]])
        process(port, event, ctx, TERM_EVENING)
    return store.event(body["event_id"])


def _schools_told(store: MemoryStore, event_id: str) -> list[tuple[str, str]]:
    return sorted((n.recipient_role, n.recipient_ref) for n in store.notifications
                  if n.event_id == event_id and n.recipient_role in ("dsl", "deputy_dsl"))


def test_an_attendance_of_a_child_on_two_schools_rolls_tells_both_schools() -> None:
    store, ctx = _world(PUPILS + AT_RIVERSIDE)
    event = _run(store, ctx, "self-harm-attendance", attendance(OLIVER))
    # One child (the two rows share the UPN), linked, not sent for review as two look-alike children.
    assert (event.status, event.match_outcome) == (EventStatus.PROCESSED, MatchOutcome.LINKED)
    assert store.person_key_of(event.child_id) == "upn:B999100100002"
    assert _schools_told(store, event.event_id) == [("deputy_dsl", RIVERSIDE), ("dsl", RIVERSIDE), ("dsl", HILLTOP)]
    acknowledgements = [d for d in store.deadlines if d.kind == DeadlineKind.SELF_HARM_ACKNOWLEDGEMENT]
    assert sorted(d.school_urn for d in acknowledgements) == [RIVERSIDE, HILLTOP]


def test_a_child_who_moved_school_is_routed_to_the_new_school_only() -> None:
    store, ctx = _world(MOVED)
    event = _run(store, ctx, "self-harm-attendance", attendance(OLIVER))
    assert event.match_outcome == MatchOutcome.LINKED
    assert _schools_told(store, event.event_id) == [("deputy_dsl", RIVERSIDE), ("dsl", RIVERSIDE)]


def test_a_missing_report_in_term_tells_each_school_the_child_is_on_the_roll_of() -> None:
    store, ctx = _world(PUPILS + AT_RIVERSIDE)
    report = {"event_id": "6f0c3c1e-8a53-4d55-9d1a-1f2f3a4b5c6d", "episode_id": "NS-EP-1", "force_code": "NS01",
              "reported_at": datetime(2026, 11, 24, 18, 0, tzinfo=UTC).isoformat(),
              "last_seen_at": datetime(2026, 11, 24, 16, 0, tzinfo=UTC).isoformat(), "child": dict(OLIVER),
              "risk_grade": "MEDIUM", "missing_from": "HOME", "exploitation_flags": []}
    event = _run(store, ctx, "missing-reported", report)
    assert event.match_outcome == MatchOutcome.LINKED
    assert {ref for role, ref in _schools_told(store, event.event_id) if role == "dsl"} == {HILLTOP, RIVERSIDE}


def test_rows_of_one_upn_with_different_dates_of_birth_are_refused_without_the_values() -> None:
    store = MemoryStore()
    with store.unit_of_work() as port:
        load(port, "schools", REFERENCE["schools"], TERM_EVENING)
    with pytest.raises(ReferenceError) as refused, store.unit_of_work() as port:
        load(port, "pupils", PUPILS + AT_RIVERSIDE.replace("2011-02-03", "2011-03-02"), TERM_EVENING)
    assert refused.value.problems == [
        f"row {len(PUPILS.splitlines()) + 1}: upn: the same UPN as row 3 with another date of birth (a UPN is one "
        "child's)"]
    assert not store._state.pupils  # nothing loaded


def test_the_same_enrolment_twice_is_refused_and_a_second_school_is_not() -> None:
    store = MemoryStore()
    with store.unit_of_work() as port:
        load(port, "schools", REFERENCE["schools"], TERM_EVENING)
    twice = PUPILS + AT_RIVERSIDE + AT_RIVERSIDE.replace("Oliver", "Ollie")
    with pytest.raises(ReferenceError) as refused, store.unit_of_work() as port:
        load(port, "pupils", twice, TERM_EVENING)
    (problem,) = refused.value.problems
    assert problem.endswith("upn, school_urn and on_roll_from: the same enrolment appears twice in the file "
                            f"(first on row {len(PUPILS.splitlines()) + 1})")
    with store.unit_of_work() as port:
        report = load(port, "pupils", PUPILS + AT_RIVERSIDE, TERM_EVENING)
    assert report.rows == len(PUPILS.splitlines())
