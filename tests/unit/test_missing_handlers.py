"""The missing pathway's handlers and the front door's casework, against the in-memory fake of the storage port.

No database: ``MemoryStore`` holds the test world's reference data (tests/support/world.py); events are accepted
into it as intake would, then processed by ``pipeline.service.dispatch.process`` as both runtimes do. The tests
look at what the handlers stored: who is told, which deadlines are open and when they fall due.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pipeline.adapters.memory_store import MemoryStore
from pipeline.adapters.store_records import Deadline, Notification
from pipeline.domain.events import SelfHarmAttendance
from pipeline.domain.model import (
    DeadlineKind,
    DeadlineState,
    EventStatus,
    MatchOutcome,
    NotificationStatus,
)
from pipeline.service import casework
from pipeline.service.children import child_of_event
from pipeline.service.dispatch import RejectedEvent, process
from pipeline.service.handlers import Context, record_of
from pipeline.service.missing import handle_episode_event
from pipeline.settings import Settings
from tests.support.store_ports import loaded_memory_store
from tests.support.world import AMELIA, INVOLVEMENTS, JACOB, LILY_TYPO, OLIVER, REFERENCE, TEAMS, attendance

REPORTED = datetime(2026, 11, 24, 18, 0, tzinfo=UTC)  # a Tuesday evening in term
JACOB_WORKER = "sam.worker@northshire.gov.example"
LILY = {**LILY_TYPO, "given_name": "Lily"}
LILY_INVOLVEMENT = (",F999100100006,Lily,Ashworth,2012-03-03,CHILD_IN_NEED,kit.worker@northshire.gov.example,"
                    "CIN_TEAM_2,cin.manager@northshire.gov.example,,\n")


def reported(child: dict[str, Any], episode: str, at: datetime = REPORTED, grade: str = "MEDIUM",
             flags: list[str] | None = None) -> dict[str, Any]:
    return {"event_id": str(uuid.uuid4()), "episode_id": episode, "force_code": "NS01", "reported_at": at.isoformat(),
            "last_seen_at": (at - timedelta(hours=2)).isoformat(), "child": dict(child), "risk_grade": grade,
            "missing_from": "CARE", "exploitation_flags": flags or []}


def updated(episode: str, at: datetime, grade: str) -> dict[str, Any]:
    return {"event_id": str(uuid.uuid4()), "episode_id": episode, "updated_at": at.isoformat(), "risk_grade": grade,
            "exploitation_flags": []}


def found(episode: str, at: datetime) -> dict[str, Any]:
    return {"event_id": str(uuid.uuid4()), "episode_id": episode, "found_at": at.isoformat(),
            "returned_to": "PLACEMENT", "safe_and_well_at": None}


def interview(episode: str, at: datetime) -> dict[str, Any]:
    return {"event_id": str(uuid.uuid4()), "episode_id": episode, "recorded_at": at.isoformat(),
            "outcome": "COMPLETED", "held_at": at.isoformat(), "by_role": "RHI_PROVIDER", "attempts": [],
            "reason": None}


def meeting_held(child_id: str, at: datetime) -> dict[str, Any]:
    return {"event_id": str(uuid.uuid4()), "child_id": child_id, "held_at": at.isoformat(), "outcome": "PLAN_AGREED"}


class World:
    """The fake store with the test world loaded, the rules as shipped, and a way to run events through."""

    def __init__(self, reference: dict[str, str] | None = None) -> None:
        self.store = loaded_memory_store(REPORTED - timedelta(days=90), reference)
        self.ctx = Context.build(Settings().rules)

    def accept(self, event_type: str, body: dict[str, Any], now: datetime) -> str:
        self.store.add_event(event_type, body, now)
        return str(body["event_id"])

    def run(self, event_type: str, body: dict[str, Any], now: datetime) -> str:
        event_id = self.accept(event_type, body, now)
        with self.store.unit_of_work() as port:
            (event,) = port.events_by_id([event_id])
            process(port, event, self.ctx, now)
        return event_id

    def deadline(self, kind: str, subject_id: str) -> Deadline:
        (row,) = [d for d in self.store.deadlines if d.kind == kind and d.subject_id == subject_id]
        return row

    def told(self, prefix: str) -> set[tuple[str, str]]:
        return {(n.recipient_role, n.recipient_ref) for n in self.store.notifications if n.plan_key.startswith(prefix)}


def effects(store: MemoryStore) -> tuple[int, ...]:
    return (len(store.notifications), len(store.deadlines), len(store.deliveries), len(store.outbox_lines),
            sum(1 for d in store.deadlines if d.state == DeadlineState.OPEN))


# ---- the missing pathway ----------------------------------------------------------------------------------

def test_a_report_for_a_linked_looked_after_child_tells_the_people_the_rules_name() -> None:
    world = World()
    event_id = world.run("missing-reported", reported(JACOB, "EP-1", grade="HIGH"), REPORTED)
    event = world.store.event(event_id)
    assert event is not None and event.status == EventStatus.PROCESSED and event.match_outcome == "linked"
    jacob = event.child_id
    assert jacob is not None and world.store.person_key_of(jacob) == "upn:G999100100008"
    assert world.told("missing:EP-1:reported") == {
        ("MISSING_COORDINATOR", "MISSING_COORDINATOR"), ("worker", JACOB_WORKER), ("LA_888", "LA_888"),
        ("iro", "iro@northshire.gov.example"), ("HEAD_OF_SERVICE", "HEAD_OF_SERVICE")}
    assert world.told("missing:EP-1:missing:") == {("dsl", "100001")}  # term time: the school, minimally
    coordinator = next(n for n in world.store.notifications if n.plan_key == "missing:EP-1:reported:coordinator")
    assert coordinator.urgency == "URGENT" and coordinator.pathway == "missing"
    assert {d.channel for d in world.store.deliveries if d.notification_id == coordinator.id} == {"email"}
    # High risk: the still-missing ladder, the 24-hour check, a strategy discussion and a trigger meeting, all the
    # child's.
    for kind, subject in ((DeadlineKind.STILL_MISSING, "EP-1"), (DeadlineKind.EPISODE_LENGTH_CHECK, "EP-1"),
                          (DeadlineKind.STRATEGY_DISCUSSION, "EP-1"), (DeadlineKind.TRIGGER_MEETING, "trigger:EP-1")):
        deadline = world.deadline(kind, subject)
        assert (deadline.state, deadline.child_id, deadline.event_id) == (DeadlineState.OPEN, jacob, event_id)
    ladder = world.ctx.policy.ladder("still_missing_high_risk", REPORTED)
    steps = json.loads(world.deadline(DeadlineKind.STILL_MISSING, "EP-1").steps_json)
    assert [datetime.fromisoformat(s["at"]) for s in steps] == [step.at for step in ladder]


def test_a_report_nobody_can_be_matched_to_goes_to_the_front_door() -> None:
    world = World()
    unknown = {**JACOB, "given_name": "Zebedee", "family_name": "Quixote", "date_of_birth": "2012-01-01",
               "postcode": "NS9 9ZZ"}
    event_id = world.run("missing-reported", reported(unknown, "EP-1"), REPORTED)
    event = world.store.event(event_id)
    assert event is not None and event.child_id is None and event.match_outcome == "no_match"
    assert world.told("missing:EP-1:reported") == {("MISSING_COORDINATOR", "MISSING_COORDINATOR"),
                                                   ("FRONT_DOOR", "FRONT_DOOR")}
    assert world.deadline(DeadlineKind.STILL_MISSING, "EP-1").child_id is None


def test_found_closes_the_still_missing_ladder_and_binds_the_return_interview_to_72_hours() -> None:
    world = World()
    world.run("missing-reported", reported(JACOB, "EP-1"), REPORTED)
    found_at = REPORTED + timedelta(hours=7)
    found_id = world.run("missing-found", found("EP-1", found_at), REPORTED + timedelta(hours=8))
    for kind in (DeadlineKind.STILL_MISSING, DeadlineKind.EPISODE_LENGTH_CHECK):
        closed = world.deadline(kind, "EP-1")
        assert closed.state == DeadlineState.CLOSED and closed.closed_reason == f"episode moved on (event {found_id})"
        assert closed.next_step_at is None
    interview_due = world.deadline(DeadlineKind.RETURN_INTERVIEW, "EP-1")
    assert interview_due.state == DeadlineState.OPEN and interview_due.due_at == found_at + timedelta(hours=72)
    assert interview_due.child_id is not None
    # The RHI provider owns it and is told; the coordinator and the worker hear the child is found.
    assert world.told("missing:EP-1:return_interview:assigned") == {("RHI_PROVIDER", "RHI_PROVIDER")}
    assert world.told("missing:EP-1:found:") >= {("MISSING_COORDINATOR", "MISSING_COORDINATOR"),
                                                 ("worker", JACOB_WORKER)}

    world.run("return-interview-recorded", interview("EP-1", found_at + timedelta(hours=30)),
              found_at + timedelta(hours=30))
    assert world.deadline(DeadlineKind.RETURN_INTERVIEW, "EP-1").state == DeadlineState.CLOSED


def test_a_regrade_to_high_swaps_the_still_missing_ladder_and_tells_the_head_of_service() -> None:
    world = World()
    world.run("missing-reported", reported(JACOB, "EP-1"), REPORTED)
    before = world.deadline(DeadlineKind.STILL_MISSING, "EP-1")
    medium = world.ctx.policy.ladder("still_missing", REPORTED)
    assert [s["at"] for s in json.loads(before.steps_json)] == [step.at.isoformat() for step in medium]
    assert ("HEAD_OF_SERVICE", "HEAD_OF_SERVICE") not in world.told("missing:EP-1:reported")

    world.run("missing-updated", updated("EP-1", REPORTED + timedelta(hours=1), "HIGH"), REPORTED + timedelta(hours=1))
    after = world.deadline(DeadlineKind.STILL_MISSING, "EP-1")
    assert after.id == before.id and after.escalation_level == 0  # the same deadline, re-planned
    high = world.ctx.policy.ladder("still_missing_high_risk", REPORTED)
    assert [s["at"] for s in json.loads(after.steps_json)] == [step.at.isoformat() for step in high]
    assert after.next_step_at == high[0].at
    assert ("HEAD_OF_SERVICE", "HEAD_OF_SERVICE") in world.told("missing:EP-1:reported")
    assert world.deadline(DeadlineKind.STRATEGY_DISCUSSION, "EP-1").state == DeadlineState.OPEN


def test_the_same_event_handled_twice_has_its_effects_once() -> None:
    world = World()
    report = reported(JACOB, "EP-1", grade="HIGH")
    event_id = world.run("missing-reported", report, REPORTED)
    once = effects(world.store)
    with world.store.unit_of_work() as port:  # a redelivery: the handler runs again on the same event
        (event,) = port.events_by_id([event_id])
        handle_episode_event(port, event, record_of(event), world.ctx, REPORTED + timedelta(minutes=5))
    assert effects(world.store) == once

    found_id = world.run("missing-found", found("EP-1", REPORTED + timedelta(hours=3)), REPORTED + timedelta(hours=3))
    after_found = effects(world.store)
    with world.store.unit_of_work() as port:
        (event,) = port.events_by_id([found_id])
        process(port, event, world.ctx, REPORTED + timedelta(hours=4))
    assert effects(world.store) == after_found


def test_a_report_handled_again_keeps_the_match_decision_stored_on_it() -> None:
    world = World()
    unknown = {**JACOB, "given_name": "Zebedee", "family_name": "Quixote", "date_of_birth": "2012-01-01",
               "postcode": "NS9 9ZZ"}
    event_id = world.run("missing-reported", reported(unknown, "EP-1"), REPORTED)
    event = world.store.event(event_id)
    assert event is not None and event.match_outcome == MatchOutcome.NO_MATCH
    stored, audited, once = event.match_json, len(world.store.audit_entries), effects(world.store)
    with world.store.unit_of_work() as port:  # still unlinked, so the handler asks which child it is again
        (row,) = port.events_by_id([event_id])
        handle_episode_event(port, row, record_of(row), NoMatcher(world.ctx), REPORTED)  # type: ignore[arg-type]
    assert event.match_json == stored and effects(world.store) == once
    assert not [a for a in world.store.audit_entries[audited:] if a.action == "matched"]


def test_a_failing_handler_leaves_nothing_behind() -> None:
    world = World()
    event_id = world.accept("missing-reported", reported(JACOB, "EP-1", grade="HIGH"), REPORTED)
    with pytest.raises(RuntimeError), world.store.unit_of_work() as port:
        (event,) = port.events_by_id([event_id])
        process(port, event, world.ctx, REPORTED)
        raise RuntimeError("the transaction fails after the handler")
    assert effects(world.store) == (0, 0, 0, 0, 0)
    event = world.store.event(event_id)
    assert event is not None and event.status == EventStatus.ACCEPTED and event.child_id is None
    with world.store.unit_of_work() as port:
        assert port.episode("EP-1") is None


def test_a_trigger_meeting_is_raised_when_the_criteria_are_met_and_closed_when_held() -> None:
    world = World()
    event_id = world.run("missing-reported", reported(JACOB, "EP-1", grade="HIGH"), REPORTED)
    event = world.store.event(event_id)
    assert event is not None and event.child_id is not None
    jacob = event.child_id
    meeting = world.deadline(DeadlineKind.TRIGGER_MEETING, "trigger:EP-1")
    # Due within 3 working days (reported on a Tuesday evening: Friday at 17:00); when it slips the team manager,
    # then a working day later (Monday, after the weekend) the head of service.
    assert meeting.due_at == datetime(2026, 11, 27, 17, 0, tzinfo=UTC)
    assert [(s["at"], s["notify"]) for s in json.loads(meeting.steps_json)] == [
        ("2026-11-27T17:00:00+00:00", ["team_manager"]), ("2026-11-30T17:00:00+00:00", ["HEAD_OF_SERVICE"])]
    assigned = [n for n in world.store.notifications if n.plan_key.startswith(f"trigger:{meeting.id}:assigned")]
    # Owned by the child's team, which has no contact on file: the front door is told instead, and why.
    assert [(n.recipient_role, n.reason) for n in assigned] == [
        ("FRONT_DOOR", "no contact on file for CLA_TEAM: trigger meeting needed: high-risk episode")]
    assert json.loads(assigned[0].content_json)["child_id"] == jacob

    held_at = REPORTED + timedelta(days=1)
    world.run("trigger-meeting-recorded", meeting_held(jacob, held_at), held_at)
    assert meeting.state == DeadlineState.CLOSED and "trigger meeting held" in (meeting.closed_reason or "")
    with world.store.unit_of_work() as port:
        assert port.last_trigger_meeting_held(jacob) == held_at

    # An episode the meeting already considered raises none; a later high-risk one raises a new one.
    world.run("missing-reported", reported(JACOB, "EP-0", at=REPORTED - timedelta(hours=1), grade="HIGH"),
              held_at + timedelta(hours=1))
    assert not [d for d in world.store.deadlines if d.subject_id == "trigger:EP-0"]
    later = REPORTED + timedelta(days=2)
    world.run("missing-reported", reported(JACOB, "EP-2", at=later, grade="HIGH"), later)
    assert world.deadline(DeadlineKind.TRIGGER_MEETING, "trigger:EP-2").state == DeadlineState.OPEN


def test_a_trigger_meeting_for_a_child_id_never_issued_is_refused() -> None:
    world = World()
    with pytest.raises(RejectedEvent):
        world.run("trigger-meeting-recorded", meeting_held(str(uuid.uuid4()), REPORTED), REPORTED)
    assert effects(world.store) == (0, 0, 0, 0, 0)


def _lily_world() -> World:
    return World({**REFERENCE, "involvements": INVOLVEMENTS + LILY_INVOLVEMENT,
                  "teams": TEAMS + "CIN_TEAM_2,cin.team2@northshire.gov.example,\n"})


def _candidate(world: World, event_id: str, person_key: str) -> str:
    event = world.store.event(event_id)
    assert event is not None and event.status == EventStatus.REVIEW
    ids = json.loads(event.match_json or "{}")["candidate_child_ids"]
    (child_id,) = [c for c in ids if world.store.person_key_of(c) == person_key]
    return str(child_id)


def test_an_unlinked_episodes_trigger_meeting_is_carried_over_when_the_front_door_links_the_child() -> None:
    world = _lily_world()
    report = reported(LILY_TYPO, "EP-U1", grade="HIGH")  # "Lilly": Lily or her twin sister
    event_id = world.run("missing-reported", report, REPORTED)
    meeting = world.deadline(DeadlineKind.TRIGGER_MEETING, "trigger:EP-U1")
    assert meeting.state == DeadlineState.OPEN and meeting.child_id is None
    assert world.told(f"trigger:{meeting.id}:assigned") == {("FRONT_DOOR", "FRONT_DOOR")}
    review = next(d for d in world.store.deadlines if d.kind == DeadlineKind.MATCH_REVIEW)
    assert review.event_id == event_id and review.state == DeadlineState.OPEN

    lily = _candidate(world, event_id, "upn:F999100100006")
    decided_at = REPORTED + timedelta(minutes=10)
    with world.store.unit_of_work() as port:
        (event,) = port.events_by_id([event_id])
        casework.decide_review(port, event, world.ctx, "front.door@northshire.gov.example", lily,
                               "police confirmed the address", decided_at)
    event = world.store.event(event_id)
    assert event is not None and (event.status, event.child_id, event.match_outcome) == (
        EventStatus.PROCESSED, lily, MatchOutcome.LINKED)
    assert review.state == DeadlineState.CLOSED
    carried = world.deadline(DeadlineKind.TRIGGER_MEETING, "trigger:EP-U1")
    assert (carried.id, carried.state, carried.child_id, carried.due_at) == (
        meeting.id, DeadlineState.OPEN, lily, meeting.due_at)
    assert world.told(f"trigger:{meeting.id}:assigned") == {("FRONT_DOOR", "FRONT_DOOR"), ("CIN_TEAM_2", "CIN_TEAM_2")}
    # Every deadline of the episode is now the child's.
    assert {d.child_id for d in world.store.deadlines if d.subject_id == "EP-U1"} == {lily}

    # A second high-risk episode of hers raises no second meeting while this one is pending.
    world.run("missing-reported", reported(LILY, "EP-U2", at=REPORTED + timedelta(hours=1), grade="HIGH"),
              REPORTED + timedelta(hours=1))
    assert [d.id for d in world.store.deadlines
            if d.kind == DeadlineKind.TRIGGER_MEETING and d.state == DeadlineState.OPEN] == [meeting.id]


def test_an_unlinked_episodes_meeting_folds_into_the_childs_pending_one() -> None:
    world = _lily_world()
    world.run("missing-reported", reported(LILY, "EP-K1", grade="HIGH"), REPORTED)
    report_id = world.run("missing-reported", reported(LILY_TYPO, "EP-K2", at=REPORTED + timedelta(hours=2),
                                                       grade="HIGH"), REPORTED + timedelta(hours=2))
    lily = _candidate(world, report_id, "upn:F999100100006")
    with world.store.unit_of_work() as port:
        (event,) = port.events_by_id([report_id])
        casework.decide_review(port, event, world.ctx, "front door", lily, "confirmed", REPORTED + timedelta(hours=3))
    assert world.deadline(DeadlineKind.TRIGGER_MEETING, "trigger:EP-K1").state == DeadlineState.OPEN
    folded = world.deadline(DeadlineKind.TRIGGER_MEETING, "trigger:EP-K2")
    assert folded.state == DeadlineState.CLOSED and "carried over" in (folded.closed_reason or "")


# ---- casework -------------------------------------------------------------------------------------------

def _school_alerts(world: World, event_id: str) -> list[Notification]:
    return sorted((n for n in world.store.notifications if n.event_id == event_id
                   and n.recipient_role in ("dsl", "deputy_dsl")), key=lambda n: n.recipient_role)


def test_one_acknowledgement_acknowledges_the_schools_copies_and_closes_its_deadline() -> None:
    world = World()
    event_id = world.run("self-harm-attendance", attendance(AMELIA), REPORTED)
    dsl, deputy = _school_alerts(world, event_id)
    assert dsl.deadline_id is not None and dsl.deadline_id == deputy.deadline_id
    at = REPORTED + timedelta(hours=1)
    with world.store.unit_of_work() as port:
        row = port.notification(deputy.id)
        assert row is not None
        casework.record_view(port, row, "deputy@riverside.sch.example", at)
        assert row.status == NotificationStatus.VIEWED
        casework.acknowledge(port, row, "deputy@riverside.sch.example", 7, "SUPPORT_PLAN", at)
    assert {(n.status, n.acknowledged_at, n.acknowledged_by) for n in (dsl, deputy)} == {
        (NotificationStatus.ACKNOWLEDGED, at, 7)}
    (deadline,) = [d for d in world.store.deadlines if d.id == dsl.deadline_id]
    assert deadline.state == DeadlineState.CLOSED
    assert deadline.closed_reason == f"acknowledged (notification {deputy.id})"
    with world.store.unit_of_work() as port:  # again: the first acknowledgement stands
        row = port.notification(dsl.id)
        assert row is not None
        casework.acknowledge(port, row, "dsl@riverside.sch.example", 8, "OTHER", at + timedelta(hours=1))
    assert (dsl.acknowledged_by, dsl.outcome) == (7, "SUPPORT_PLAN")


def _withheld(world: World) -> str:
    event_id = world.run("self-harm-attendance", attendance(AMELIA, consent="REFUSED"), REPORTED)
    event = world.store.event(event_id)
    assert event is not None and event.status == EventStatus.WITHHELD and event.child_id is not None
    (dsl,) = [n for n in _school_alerts(world, event_id) if n.recipient_role == "dsl"]
    assert dsl.status == NotificationStatus.WITHHELD
    with world.store.unit_of_work() as port:
        row = port.notification(dsl.id)
        assert row is not None
        with pytest.raises(casework.CaseworkError):
            casework.acknowledge(port, row, "dsl@riverside.sch.example", 7, "SUPPORT_PLAN", REPORTED)
    return event_id


class NoMatcher:
    """A context whose matcher must not be asked: a release routes to the child the stored match decided."""

    def __init__(self, ctx: Context) -> None:
        self.policy = ctx.policy

    def match(self, *_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("the stored match decision is reused, not decided again")


def test_a_release_routes_the_withheld_attendance_to_the_child_the_match_decided() -> None:
    world = World()
    event_id = _withheld(world)
    event = world.store.event(event_id)
    assert event is not None
    child_id = event.child_id
    deliveries_before = len(world.store.deliveries)
    released_at = REPORTED + timedelta(hours=2)
    with world.store.unit_of_work() as port:
        (row,) = port.events_by_id([event_id])
        casework.decide_consent(port, row, NoMatcher(world.ctx), "front door", "release",  # type: ignore[arg-type]
                                "safeguarding concern outweighs refusal", released_at)
    assert (event.status, event.child_id) == (EventStatus.PROCESSED, child_id)
    dsl, deputy = _school_alerts(world, event_id)
    assert dsl.status == deputy.status == NotificationStatus.PENDING
    assert len(world.store.deliveries) > deliveries_before
    consent = next(d for d in world.store.deadlines if d.kind == DeadlineKind.CONSENT_DECISION)
    assert consent.state == DeadlineState.CLOSED
    acknowledgement = next(d for d in world.store.deadlines if d.kind == DeadlineKind.SELF_HARM_ACKNOWLEDGEMENT)
    assert acknowledgement.child_id == child_id and acknowledgement.state == DeadlineState.OPEN
    assert dsl.deadline_id == acknowledgement.id
    with world.store.unit_of_work() as port:
        (row,) = port.events_by_id([event_id])
        with pytest.raises(casework.CaseworkError):
            casework.decide_consent(port, row, world.ctx, "front door", "release", "again", released_at)


def test_closing_a_withheld_attendance_sends_nothing() -> None:
    world = World()
    event_id = _withheld(world)
    before = effects(world.store)
    with world.store.unit_of_work() as port:
        (row,) = port.events_by_id([event_id])
        casework.decide_consent(port, row, world.ctx, "front door", "close", "family already supported", REPORTED)
    event = world.store.event(event_id)
    assert event is not None and event.status == EventStatus.PROCESSED
    assert all(n.status == NotificationStatus.WITHHELD for n in _school_alerts(world, event_id))
    notifications, _, deliveries, _, _ = before
    assert (len(world.store.notifications), len(world.store.deliveries)) == (notifications, deliveries)
    assert next(d for d in world.store.deadlines if d.kind == DeadlineKind.CONSENT_DECISION).state == "closed"


def test_a_review_decision_routes_to_the_chosen_child_or_to_nobody() -> None:
    world = World()
    no_birth = {**OLIVER, "date_of_birth": None, "sex": None}
    event_id = world.run("self-harm-attendance", attendance(no_birth), REPORTED)
    oliver = _candidate(world, event_id, "upn:B999100100002")
    assert not _school_alerts(world, event_id)  # nothing to the school while in review
    with world.store.unit_of_work() as port:
        (row,) = port.events_by_id([event_id])
        with pytest.raises(casework.CaseworkError):
            casework.decide_review(port, row, world.ctx, "front door", "not-a-candidate", "guess", REPORTED)
        casework.decide_review(port, row, world.ctx, "front door", oliver, "confirmed with the hospital", REPORTED)
    event = world.store.event(event_id)
    assert event is not None and (event.status, event.child_id, event.match_outcome) == (
        EventStatus.PROCESSED, oliver, MatchOutcome.LINKED)
    assert [(n.recipient_role, n.recipient_ref) for n in _school_alerts(world, event_id)] == [("dsl", "100002")]
    assert next(d for d in world.store.deadlines if d.kind == DeadlineKind.MATCH_REVIEW).state == "closed"

    other = world.run("self-harm-attendance", attendance(no_birth), REPORTED)
    with world.store.unit_of_work() as port:
        (row,) = port.events_by_id([other])
        casework.decide_review(port, row, world.ctx, "front door", None, "not our child", REPORTED)
    event = world.store.event(other)
    assert event is not None and (event.child_id, event.match_outcome) == (None, MatchOutcome.NO_MATCH)
    assert not _school_alerts(world, other)
    assert [(n.recipient_role, n.reason) for n in world.store.notifications if n.event_id == other
            and n.kind == "alert"] == [("FRONT_DOOR", "no matching child in the reference data")]


def test_child_of_event_reuses_a_stored_decision_and_otherwise_matches() -> None:
    world = World()
    event_id = world.run("self-harm-attendance", attendance(AMELIA), REPORTED)
    event = world.store.event(event_id)
    assert event is not None and event.child_id is not None
    identity = SelfHarmAttendance.from_record(record_of(event)).child
    with world.store.unit_of_work() as port:
        stored = child_of_event(port, NoMatcher(world.ctx), event, identity, urgent=False,  # type: ignore[arg-type]
                                on=REPORTED.date())
        assert (stored.decision.outcome, stored.child_id, stored.decided_now) == (
            MatchOutcome.LINKED, event.child_id, False)
        assert stored.facts is not None and [e.school.urn for e in stored.facts.enrolments] == ["100001"]
        fresh = world.store.add_event("self-harm-attendance", attendance(AMELIA), REPORTED)
        decided = child_of_event(port, world.ctx, fresh, identity, urgent=False, on=REPORTED.date())
        assert decided.decided_now and decided.child_id == event.child_id and decided.breakdown["candidates"]
