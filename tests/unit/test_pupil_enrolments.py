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
from pipeline.service.demo_data import csv_text, generate
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


def test_two_rows_at_one_school_are_one_enrolment_and_one_alert() -> None:
    """A re-admission, or an old enrolment the school's system never closed: two current rows of one UPN at one
    school. The school's DSL is told once, with one acknowledgement deadline (two would be the same deadline twice,
    and the event would fail)."""
    again = AT_RIVERSIDE.replace("100001,2026-09-01", "100002,2026-11-23")
    for pupils in (PUPILS + again, PUPILS.replace("100002,2022-09-01,", "100002,2022-09-01,2026-11-23") + again):
        store, ctx = _world(pupils)
        event = _run(store, ctx, "self-harm-attendance", attendance(OLIVER))
        assert (event.status, event.match_outcome) == (EventStatus.PROCESSED, MatchOutcome.LINKED)
        assert _schools_told(store, event.event_id) == [("dsl", HILLTOP)]
        assert [d.school_urn for d in store.deadlines if d.kind == DeadlineKind.SELF_HARM_ACKNOWLEDGEMENT] == [
            HILLTOP]


def test_rows_of_one_upn_with_different_nhs_numbers_are_refused() -> None:
    """Oliver's second school's row with his brother's NHS number would join the brother's records to him (his
    worker told of Oliver's attendance). A row without an NHS number beside one with it is fine."""
    store = MemoryStore()
    with store.unit_of_work() as port:
        load(port, "schools", REFERENCE["schools"], TERM_EVENING)
    numbered = PUPILS.replace("B999100100002,,", "B999100100002,9990000026,")
    with pytest.raises(ReferenceError) as refused, store.unit_of_work() as port:
        load(port, "pupils", numbered + AT_RIVERSIDE.replace("B999100100002,,", "B999100100002,9990000034,"),
             TERM_EVENING)
    assert refused.value.problems == [
        f"row {len(PUPILS.splitlines()) + 1}: nhs_number: another NHS number than row 3, which has the same UPN (a UPN "
        "is one child's)"]
    with store.unit_of_work() as port:
        assert load(port, "pupils", numbered + AT_RIVERSIDE, TERM_EVENING).rows == len(PUPILS.splitlines())


def test_corrected_start_dates_are_not_taken_for_a_partial_export() -> None:
    """A school's system re-dates its pupils' start dates: each row's key changes (its old row is ended, the new
    one current), but no child leaves a school's roll, so the partial-export guard lets the file load."""
    data = generate(seed=3, pupils=400)
    store = MemoryStore()
    with store.unit_of_work() as port:
        for kind in ("schools", "teams", "pupils"):
            load(port, kind, csv_text(kind, data[kind]), TERM_EVENING)
    redated = [{**row, "on_roll_from": "2019-09-02"} for row in data["pupils"]]
    with store.unit_of_work() as port:
        report = load(port, "pupils", csv_text("pupils", redated), TERM_EVENING)
    moved = sum(1 for row in data["pupils"] if row["on_roll_from"] != "2019-09-02")
    assert moved > len(redated) // 2 and (report.rows, report.ended) == (len(redated), moved)
    with pytest.raises(ReferenceError) as refused, store.unit_of_work() as port:  # half a file still is one
        load(port, "pupils", csv_text("pupils", redated[: len(redated) // 2]), TERM_EVENING)
    assert "is it a partial export?" in refused.value.problems[0]


def test_one_nhs_number_on_two_children_is_refused_and_on_one_child_with_two_upns_is_not() -> None:
    """The records of one NHS number are taken for one child: a sibling's number keyed on another pupil's row would
    send one child's notifications to the other's schools under the other's name. Refused, naming the rows; one
    child under two UPNs (a number issued again) with one date of birth and given name loads."""
    store = MemoryStore()
    with store.unit_of_work() as port:
        load(port, "schools", REFERENCE["schools"], TERM_EVENING)
    # Oliver given Amelia's NHS number (row 2 has it); Lila given her twin Lily's (same date of birth).
    for keyed, rows in ((PUPILS.replace("B999100100002,,", "B999100100002,9990000018,"), (3, 2)),
                        (PUPILS.replace("F999100100006,,", "F999100100006,9990000026,")
                         .replace("F999100100007,,", "F999100100007,9990000026,"), (8, 7))):
        with pytest.raises(ReferenceError) as refused, store.unit_of_work() as port:
            load(port, "pupils", keyed, TERM_EVENING)
        assert refused.value.problems == [
            f"row {rows[0]}: nhs_number: the same NHS number as row {rows[1]}, a pupil with another UPN, date of "
            "birth or given name (an NHS number is one child's)"]
    again = "A999100100099,9990000018,Amelia,Hartley,2013-05-14,F,NS1 2AB,100002,2026-09-01,\n"
    with store.unit_of_work() as port:
        assert load(port, "pupils", PUPILS + again, TERM_EVENING).rows == len(PUPILS.splitlines())


def test_a_upns_nhs_numbers_must_agree_whatever_the_rows_order() -> None:
    """One UPN's rows: blank, then two different NHS numbers, in either order: refused at the row that disagrees."""
    store = MemoryStore()
    with store.unit_of_work() as port:
        load(port, "schools", REFERENCE["schools"], TERM_EVENING)
    oliver = [AT_RIVERSIDE.replace("100001,2026-09-01", f"{urn},{start}")
              .replace("B999100100002,,", f"B999100100002,{nhs},")
              for urn, start, nhs in (("100001", "2026-09-01", ""), ("100003", "2025-09-01", "9990000026"),
                                      ("100005", "2024-09-01", "9990000034"))]
    others = _without_oliver(PUPILS)
    first = len(others.splitlines()) + 1
    for rows in (oliver, [oliver[1], oliver[0], oliver[2]]):
        with pytest.raises(ReferenceError) as refused, store.unit_of_work() as port:
            load(port, "pupils", others + "".join(rows), TERM_EVENING)
        assert refused.value.problems == [
            f"row {first + 2}: nhs_number: another NHS number than row {first + rows.index(oliver[1])}, which has the "
            "same UPN (a UPN is one child's)"]


def _without_oliver(text: str) -> str:
    return "".join(line + "\n" for line in text.splitlines() if not line.startswith("B999100100002"))
