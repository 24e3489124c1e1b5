"""The missing pathway for children the pipeline cannot name yet, and for pupils of schools it does not tell
directly: a trigger meeting raised on an unlinked episode and carried over to the child on linking, and an
independent school's pupil told about through SCiES."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from pipeline.adapters import tables as t
from pipeline.service.reference import load
from tests.integration.conftest import Pipeline
from tests.integration.test_missing_api import REPORTED, found, reported
from tests.support.world import INVOLVEMENTS, ISLA, LILY_TYPO, TEAMS

LILY = {**LILY_TYPO, "given_name": "Lily"}
LILY_UPN_KEY = "upn:F999100100006"
LILY_INVOLVEMENT = (",F999100100006,Lily,Ashworth,2012-03-03,CHILD_IN_NEED,kit.worker@northshire.gov.example,"
                    "CIN_TEAM_2,cin.manager@northshire.gov.example,,\n")


def _open_lily_case(pipeline: Pipeline) -> None:
    with pipeline.services.store.unit_of_work() as port:
        load(port, "involvements", INVOLVEMENTS + LILY_INVOLVEMENT, pipeline.clock())
        load(port, "teams", TEAMS + "CIN_TEAM_2,cin.team2@northshire.gov.example,\n", pipeline.clock())


def _trigger_meetings(pipeline: Pipeline) -> list[t.Deadline]:
    with pipeline.services.store.read() as session:
        return list(session.exec(select(t.Deadline).where(t.Deadline.kind == "trigger_meeting")).all())


def _alerts(pipeline: Pipeline, plan_key_part: str) -> list[t.Notification]:
    with pipeline.services.store.read() as session:
        return [n for n in session.exec(select(t.Notification).where(t.Notification.kind == "alert")).all()
                if plan_key_part in n.plan_key]


def _lily_child_id(pipeline: Pipeline) -> str:
    with pipeline.services.store.read() as session:
        return session.exec(select(t.Child.child_id).where(t.Child.person_key == LILY_UPN_KEY)).one()


def _review(pipeline: Pipeline, event_id: str, child_id: str) -> None:
    decided = pipeline.client.post(f"/api/events/{event_id}/review",
                                   json={"child_id": child_id, "reason": "police confirmed the address"},
                                   headers=pipeline.headers("front_door"))
    assert decided.status_code == 200, decided.text


def test_an_unlinked_high_risk_episode_gets_a_trigger_meeting_carried_over_to_the_child(pipeline: Pipeline) -> None:
    _open_lily_case(pipeline)
    pipeline.clock.now = REPORTED
    report = reported(LILY_TYPO, "EP-U1", grade="HIGH")  # "Lilly": Lily or her twin sister, for a person to say
    pipeline.post_event(report, "missing-reported")
    pipeline.run()
    assert pipeline.get(f"/api/events/{report['event_id']}", "manager").json()["status"] == "review"
    (meeting,) = _trigger_meetings(pipeline)
    assert meeting.state == "open" and meeting.child_id is None and meeting.subject_id == "trigger:EP-U1"
    (assigned,) = _alerts(pipeline, f"trigger:{meeting.id}:assigned")
    assert (assigned.recipient_role, assigned.recipient_ref) == ("FRONT_DOOR", "FRONT_DOOR")

    pipeline.clock.advance(minutes=10)
    lily = _lily_child_id(pipeline)
    _review(pipeline, report["event_id"], lily)
    pipeline.run()
    (carried,) = _trigger_meetings(pipeline)  # the same one, not a second
    assert (carried.id, carried.state, carried.child_id, carried.due_at) == (meeting.id, "open", lily, meeting.due_at)
    owners = {(n.recipient_role, n.recipient_ref) for n in _alerts(pipeline, f"trigger:{meeting.id}:assigned")}
    assert owners == {("FRONT_DOOR", "FRONT_DOOR"), ("CIN_TEAM_2", "CIN_TEAM_2")}  # the child's team is told

    # A second high-risk episode of the same child raises no second meeting while this one is pending.
    pipeline.post_event(reported(LILY, "EP-U2", at=REPORTED + timedelta(hours=1), grade="HIGH"), "missing-reported")
    pipeline.run()
    assert [m.id for m in _trigger_meetings(pipeline) if m.state == "open"] == [meeting.id]

    # Its escalation goes to the child's team manager, resolved when the step fires.
    pipeline.clock.now = meeting.due_at
    pipeline.run()
    with pipeline.services.store.read() as session:
        escalated = session.exec(select(t.Notification).where(t.Notification.deadline_id == meeting.id,
                                                              t.Notification.kind == "escalation")).all()
    assert [(n.recipient_role, n.recipient_ref) for n in escalated] == [
        ("team_manager", "cin.manager@northshire.gov.example")]


def test_an_unlinked_episodes_meeting_folds_into_the_childs_pending_one(pipeline: Pipeline) -> None:
    _open_lily_case(pipeline)
    pipeline.clock.now = REPORTED
    pipeline.post_event(reported(LILY, "EP-K1", grade="HIGH"), "missing-reported")  # Lily, known at once
    report = reported(LILY_TYPO, "EP-K2", at=REPORTED + timedelta(hours=2), grade="HIGH")
    pipeline.post_event(report, "missing-reported")
    pipeline.run()
    lily = _lily_child_id(pipeline)
    by_subject = {m.subject_id: m for m in _trigger_meetings(pipeline)}
    assert by_subject["trigger:EP-K1"].child_id == lily and by_subject["trigger:EP-K2"].child_id is None

    _review(pipeline, report["event_id"], lily)
    pipeline.run()
    by_subject = {m.subject_id: m for m in _trigger_meetings(pipeline)}
    assert by_subject["trigger:EP-K1"].state == "open"
    assert by_subject["trigger:EP-K2"].state == "closed"
    assert "carried over" in (by_subject["trigger:EP-K2"].closed_reason or "")
    audit = pipeline.get(f"/api/audit?subject={by_subject['trigger:EP-K2'].id}", "manager").json()
    assert any(entry["action"] == "closed" and "carried over" in entry["reason"] for entry in audit)


def test_a_pupil_of_an_independent_school_missing_and_found_is_told_through_scies(pipeline: Pipeline) -> None:
    pipeline.clock.now = REPORTED
    pipeline.post_event(reported(ISLA, "EP-I1"), "missing-reported")  # Isla: Oakwood House, independent
    pipeline.run()
    pipeline.clock.advance(hours=3)
    pipeline.post_event(found("EP-I1", REPORTED + timedelta(hours=2)), "missing-found")
    pipeline.run()
    with pipeline.services.store.read() as session:
        told = session.exec(select(t.Notification).where(t.Notification.pathway == "missing")).all()
    scies = sorted((n for n in told if n.recipient_role == "SCIES"), key=lambda n: n.created_at)
    assert [json_status(n) for n in scies] == ["missing", "found"]
    for note in scies:
        content = note_content(note)
        assert set(content) == {"pupil", "status", "school"}  # minimal: who, which school, missing or found
        assert content["school"]["urn"] == "100003" and set(content["pupil"]) == {
            "given_name", "family_name", "date_of_birth", "upn"}
    assert not [n for n in told if n.recipient_role in ("dsl", "deputy_dsl")]
    # The school's DSL sees nothing directly; SCiES sees both.
    assert pipeline.get("/api/notifications", "scies").json() and all(
        n["recipient_role"] == "SCIES" for n in pipeline.get("/api/notifications", "scies").json())


def json_status(note: t.Notification) -> str:
    return str(note_content(note)["status"])


def note_content(note: t.Notification) -> dict[str, object]:
    import json

    loaded: dict[str, object] = json.loads(note.content_json)
    return loaded
