"""Which acknowledgements stop a ladder and which do not, and rules around late or missing information.

An escalation is never the thing a deadline waits for: a manager acknowledging it does not stop the
ladder. The school alert, the holiday rule's SCiES alert and the strategy discussion close when their
owner acknowledges; everything else closes on its event or decision.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import select

from pipeline.adapters import tables as t
from pipeline.service.users import add_user
from tests.integration.conftest import Pipeline
from tests.integration.test_missing_api import REPORTED, found, interview, reported
from tests.support.world import AMELIA, JACOB, attendance


def notifications(pipeline: Pipeline, **where: Any) -> list[t.Notification]:
    with pipeline.services.store.read() as session:
        rows = session.exec(select(t.Notification)).all()
    return [n for n in rows if all(getattr(n, key) == value for key, value in where.items())]


def deadline(pipeline: Pipeline, kind: str) -> t.Deadline:
    with pipeline.services.store.read() as session:
        return session.exec(select(t.Deadline).where(t.Deadline.kind == kind)).one()


def acknowledge(pipeline: Pipeline, notification_id: str, who: str) -> None:
    response = pipeline.client.post(f"/api/notifications/{notification_id}/acknowledge", json={"outcome": "seen"},
                                    headers=pipeline.headers(who))
    assert response.status_code == 200, response.text


def add_team_user(pipeline: Pipeline, name: str, team: str) -> None:
    with pipeline.services.store.unit_of_work() as port:
        _, pipeline.tokens[name] = add_user(port, "team", f"{name}@test.example", None, team)


def test_scies_acknowledging_its_escalation_does_not_stop_the_dsl_ladder(pipeline: Pipeline) -> None:
    event = attendance(AMELIA)  # Tuesday 20:00: the DSL must acknowledge by Wednesday 12:00
    pipeline.post_event(event)
    pipeline.run()
    pipeline.clock.now = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)  # reminder at 12:00, SCiES at 14:00
    pipeline.run()
    (scies,) = notifications(pipeline, recipient_role="SCIES", kind="escalation")
    acknowledge(pipeline, scies.id, "scies")
    assert deadline(pipeline, "self_harm_acknowledgement").state == "open"
    pipeline.clock.now = datetime(2026, 11, 25, 15, 30, tzinfo=UTC)
    pipeline.run()
    assert len(notifications(pipeline, recipient_role="EDUCATION_SAFEGUARDING_LEAD")) == 1

    (reminder,) = notifications(pipeline, recipient_role="dsl", kind="reminder")
    acknowledge(pipeline, reminder.id, "dsl")  # the DSL answering the reminder is the acknowledgement
    assert deadline(pipeline, "self_harm_acknowledgement").state == "closed"


def test_a_manager_acknowledging_a_still_missing_escalation_does_not_stop_the_ladder(pipeline: Pipeline) -> None:
    pipeline.clock.now = REPORTED
    pipeline.post_event(reported(JACOB, "EP-9"), "missing-reported")
    pipeline.run()
    pipeline.clock.now = REPORTED + timedelta(hours=24)  # team manager at 24 hours
    pipeline.run()
    (manager,) = notifications(pipeline, recipient_role="team_manager", kind="escalation")
    with pipeline.services.store.transaction() as session:  # the manager is the recipient: let them acknowledge
        row = session.get(t.Notification, manager.id)
        assert row is not None
        from pipeline.adapters.repository import Repository
        from pipeline.service.casework import acknowledge as acknowledge_directly

        acknowledge_directly(Repository(session), row, "cla.manager@northshire.gov.example", 0, "seen",
                             pipeline.clock())
    assert deadline(pipeline, "still_missing").state == "open"
    pipeline.clock.now = REPORTED + timedelta(hours=48)
    pipeline.run()
    assert len(notifications(pipeline, recipient_role="HEAD_OF_SERVICE", kind="escalation")) == 1


def test_the_team_acknowledging_the_strategy_discussion_closes_it(pipeline: Pipeline) -> None:
    pipeline.clock.now = REPORTED
    pipeline.post_event(reported(JACOB, "EP-10", grade="HIGH"), "missing-reported")
    pipeline.run()
    (assigned,) = [n for n in notifications(pipeline, kind="alert")
                   if ":strategy_discussion:assigned:" in n.plan_key]
    assert assigned.recipient_role == "FRONT_DOOR"  # the child's team (CLA_TEAM) has no contact on file
    acknowledge(pipeline, assigned.id, "front_door")
    assert deadline(pipeline, "strategy_discussion").state == "closed"


def test_a_return_interview_recorded_before_the_found_event_is_never_chased(pipeline: Pipeline) -> None:
    pipeline.clock.now = REPORTED + timedelta(hours=10)
    pipeline.post_event(reported(JACOB, "EP-11"), "missing-reported")
    pipeline.post_event(interview("EP-11", REPORTED + timedelta(hours=9)), "return-interview-recorded")
    pipeline.run()
    pipeline.post_event(found("EP-11", REPORTED + timedelta(hours=5)), "missing-found")  # late
    pipeline.run()
    rhi = deadline(pipeline, "return_interview")
    assert rhi.state == "closed"
    pipeline.clock.now = REPORTED + timedelta(days=5)
    pipeline.run()
    assert deadline(pipeline, "return_interview").escalation_level == 0
    assert not [n for n in notifications(pipeline) if n.plan_key.startswith("return_interview")]


def test_releasing_a_withheld_attendance_in_the_holidays_also_tells_scies(pipeline: Pipeline) -> None:
    half_term = datetime(2026, 10, 27, 20, 0, tzinfo=UTC)  # Tuesday of the October half term
    pipeline.clock.now = half_term
    event = attendance(AMELIA, arrived_at=half_term, consent="REFUSED")
    pipeline.post_event(event)
    pipeline.run()
    assert notifications(pipeline, recipient_role="SCIES") == []
    released = pipeline.client.post(f"/api/events/{event['event_id']}/decision",
                                    json={"decision": "release", "reason": "risk outweighs refusal"},
                                    headers=pipeline.headers("front_door"))
    assert released.status_code == 200
    pipeline.run()
    (scies,) = notifications(pipeline, recipient_role="SCIES")
    assert scies.status == "delivered"
    assert deadline(pipeline, "self_harm_holiday_scies").state == "open"


def test_a_missing_report_with_an_uncertain_match_waits_for_the_front_door(pipeline: Pipeline) -> None:
    from tests.support.world import LILY_TYPO

    pipeline.clock.now = REPORTED
    report = reported(LILY_TYPO, "EP-12", flags=["CSE"])  # 14 with a flag: not high risk by age, but flagged
    pipeline.post_event(report, "missing-reported")
    pipeline.run()
    body = pipeline.get(f"/api/events/{report['event_id']}", "manager").json()
    assert body["status"] == "review" and body["match"]["outcome"] == "review"
    candidates = body["match"]["breakdown"]["candidate_child_ids"]
    assert len(candidates) == 2
    assert notifications(pipeline, recipient_role="dsl") == []  # nothing to a school until a person decides
    (review,) = notifications(pipeline, kind="review")
    assert review.recipient_role == "FRONT_DOOR" and review.urgency == "URGENT"
    assert deadline(pipeline, "match_review").due_at == REPORTED  # flagged: due at once
    pipeline.clock.advance(seconds=1)
    pipeline.run()
    assert len(notifications(pipeline, recipient_role="FRONT_DOOR_MANAGER", kind="escalation")) == 1

    decided = pipeline.client.post(f"/api/events/{report['event_id']}/review",
                                   json={"child_id": candidates[0], "reason": "police confirmed the address"},
                                   headers=pipeline.headers("front_door"))
    assert decided.status_code == 200, decided.text
    pipeline.run()
    assert deadline(pipeline, "match_review").state == "closed"
    assert pipeline.get(f"/api/events/{report['event_id']}", "manager").json()["status"] == "processed"
    assert len(notifications(pipeline, recipient_role="dsl")) == 1  # told "missing", nothing more
    assert deadline(pipeline, "trigger_meeting").state == "open"  # the exploitation flag, now for this child
    episodes = pipeline.get(f"/api/children/{candidates[0]}/episodes", "manager").json()
    assert [e["episode_id"] for e in episodes] == ["EP-12"]


def test_an_unlinked_child_of_thirteen_or_under_with_a_flag_runs_the_high_risk_ladder(pipeline: Pipeline) -> None:
    from tests.support.world import UNKNOWN  # born 2012-01-01: 14 in November 2026

    young = {**UNKNOWN, "date_of_birth": "2013-12-01"}  # 12, and on no record the pipeline knows
    pipeline.clock.now = REPORTED
    pipeline.post_event(reported(young, "EP-13", grade="LOW", flags=["CCE"]), "missing-reported")
    pipeline.run()
    assert deadline(pipeline, "still_missing").next_step_at == REPORTED + timedelta(hours=6)
    assert len(notifications(pipeline, recipient_role="HEAD_OF_SERVICE")) == 1
