"""The self-harm pathway through the HTTP API on SQLite: intake, routing, acknowledgement, escalation."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.integration.conftest import Pipeline
from tests.support.world import AMELIA, ISLA, LILY_TYPO, UNKNOWN, attendance


def roles_of(pipeline: Pipeline, event_id: str) -> list[str]:
    body = pipeline.get(f"/api/events/{event_id}", "manager").json()
    return sorted(n["recipient_role"] for n in body["notifications"])


def test_attendance_reaches_the_dsl_and_deputy_and_is_acknowledged(pipeline: Pipeline) -> None:
    event = attendance(AMELIA)
    response = pipeline.post_event(event)
    assert response.status_code == 202
    assert response.json() == {"event_id": event["event_id"], "status": "accepted"}
    pipeline.run()

    status = pipeline.get(f"/api/events/{event['event_id']}", "producer").json()
    assert status["status"] == "processed"
    assert status["match"]["outcome"] == "linked" and status["match"]["child_id"]
    assert roles_of(pipeline, event["event_id"]) == ["deputy_dsl", "dsl"]

    mine = pipeline.get("/api/notifications", "dsl").json()
    assert {n["recipient_role"] for n in mine} == {"dsl", "deputy_dsl"}
    assert all(n["status"] == "delivered" and n["pathway"] == "self-harm" for n in mine)
    dsl_note = next(n for n in mine if n["recipient_role"] == "dsl")
    detail = pipeline.get(f"/api/notifications/{dsl_note['id']}", "dsl").json()
    assert detail["content"]["pupil"]["upn"] == "A999100100001"
    assert "nhs_number" not in str(detail["content"])

    ack = pipeline.client.post(f"/api/notifications/{dsl_note['id']}/acknowledge", json={"outcome": "spoke to pupil"},
                               headers=pipeline.headers("dsl"))
    assert ack.status_code == 200 and ack.json()["status"] == "acknowledged"
    first_time = ack.json()["acknowledged_at"]
    pipeline.clock.advance(minutes=5)
    again = pipeline.client.post(f"/api/notifications/{dsl_note['id']}/acknowledge", json={"outcome": "again"},
                                 headers=pipeline.headers("dsl"))
    assert again.status_code == 200 and again.json()["acknowledged_at"] == first_time

    # Acknowledged: nothing escalates even long after the deadline.
    pipeline.clock.advance(days=3)
    pipeline.run()
    assert pipeline.get("/api/deadlines?state=overdue", "manager").json() == []
    assert roles_of(pipeline, event["event_id"]) == ["deputy_dsl", "dsl"]
    actions = [a["action"] for a in pipeline.get(f"/api/audit?subject={dsl_note['id']}", "manager").json()]
    assert {"created", "delivered", "viewed", "acknowledged"} <= set(actions)


def test_unacknowledged_alert_climbs_the_ladder_once_per_step(pipeline: Pipeline) -> None:
    event = attendance(AMELIA)  # Tuesday 20:00; due Wednesday 12:00
    pipeline.post_event(event)
    pipeline.run()
    pipeline.clock.now = datetime(2026, 11, 25, 11, 59, tzinfo=UTC)
    pipeline.run()
    assert pipeline.get("/api/deadlines?state=overdue", "manager").json() == []

    pipeline.clock.now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    pipeline.run()
    pipeline.run()  # a second sweep at the same moment fires nothing more
    overdue = pipeline.get("/api/deadlines?state=overdue", "manager").json()
    assert [(d["kind"], d["escalation_level"]) for d in overdue] == [("self_harm_acknowledgement", 1)]
    assert roles_of(pipeline, event["event_id"]) == ["deputy_dsl", "deputy_dsl", "dsl", "dsl"]

    pipeline.clock.now = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)  # 2 working hours later: SCiES
    pipeline.run()
    assert "SCIES" in roles_of(pipeline, event["event_id"])
    pipeline.clock.now = datetime(2026, 11, 25, 15, 30, tzinfo=UTC)  # end of the school day
    pipeline.run()
    assert roles_of(pipeline, event["event_id"]).count("EDUCATION_SAFEGUARDING_LEAD") == 1
    pipeline.clock.now = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    pipeline.run()
    overdue = pipeline.get("/api/deadlines?state=overdue", "manager").json()
    assert overdue[0]["escalation_level"] == 3
    assert len(roles_of(pipeline, event["event_id"])) == 6


def test_a_deadline_that_fell_due_while_down_fires_on_the_first_sweep(pipeline: Pipeline) -> None:
    event = attendance(AMELIA)
    pipeline.post_event(event)
    pipeline.run()
    pipeline.clock.now = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)  # every step is now in the past
    pipeline.run()
    overdue = pipeline.get("/api/deadlines?state=overdue", "manager").json()
    assert overdue[0]["escalation_level"] == 3
    assert sorted(roles_of(pipeline, event["event_id"])) == sorted(
        ["dsl", "deputy_dsl", "dsl", "deputy_dsl", "SCIES", "EDUCATION_SAFEGUARDING_LEAD"])


def test_independent_school_goes_to_scies_and_unknown_child_to_front_door(pipeline: Pipeline) -> None:
    isla, unknown = attendance(ISLA), attendance(UNKNOWN)
    for event in (isla, unknown):
        assert pipeline.post_event(event).status_code == 202
    pipeline.run()
    assert roles_of(pipeline, isla["event_id"]) == ["SCIES"]
    assert roles_of(pipeline, unknown["event_id"]) == ["FRONT_DOOR"]
    assert pipeline.get(f"/api/events/{unknown['event_id']}", "manager").json()["match"]["outcome"] == "no_match"


def test_twin_on_a_fuzzy_name_waits_for_a_person(pipeline: Pipeline) -> None:
    event = attendance(LILY_TYPO, exploitation_screening="CONCERN")
    pipeline.post_event(event)
    pipeline.run()
    body = pipeline.get(f"/api/events/{event['event_id']}", "manager").json()
    assert body["status"] == "review" and body["match"]["outcome"] == "review"
    # Due at once for an exploitation concern: the front-door manager hears of it straight away.
    assert roles_of(pipeline, event["event_id"]) == ["FRONT_DOOR", "FRONT_DOOR_MANAGER"]
    assert pipeline.get("/api/notifications", "dsl").json() == []
    candidates = body["match"]["breakdown"]["candidate_child_ids"]
    assert len(candidates) == 2

    # Exploitation concern: the review is due at once and already overdue.
    pipeline.clock.advance(seconds=1)
    pipeline.run()
    kinds = {d["kind"] for d in pipeline.get("/api/deadlines?state=overdue", "manager").json()}
    assert "match_review" in kinds

    decided = pipeline.client.post(f"/api/events/{event['event_id']}/review",
                                   json={"child_id": candidates[0], "reason": "checked with the school"},
                                   headers=pipeline.headers("front_door"))
    assert decided.status_code == 200
    pipeline.run()
    assert {"dsl", "deputy_dsl"} <= set(roles_of(pipeline, event["event_id"]))
    assert "match_review" not in {d["kind"] for d in pipeline.get("/api/deadlines?state=open", "manager").json()}


def test_consent_refused_is_withheld_until_the_front_door_releases(pipeline: Pipeline) -> None:
    event = attendance(AMELIA, consent="REFUSED")
    pipeline.post_event(event)
    pipeline.run()
    body = pipeline.get(f"/api/events/{event['event_id']}", "manager").json()
    assert body["status"] == "withheld"
    assert pipeline.get("/api/notifications", "dsl").json() == []
    front_door = pipeline.get("/api/notifications", "front_door").json()
    assert [n["kind"] for n in front_door] == ["decision"]

    released = pipeline.client.post(f"/api/events/{event['event_id']}/decision",
                                    json={"decision": "release", "reason": "risk outweighs refusal"},
                                    headers=pipeline.headers("front_door"))
    assert released.status_code == 200
    pipeline.run()
    assert {n["recipient_role"] for n in pipeline.get("/api/notifications", "dsl").json()} == {"dsl", "deputy_dsl"}
    actions = [a["action"] for a in pipeline.get(f"/api/audit?subject={event['event_id']}", "manager").json()]
    assert "released" in actions and "withheld" in actions


def test_same_event_twice_and_conflicting_content(pipeline: Pipeline) -> None:
    event = attendance(AMELIA)
    assert pipeline.post_event(event).status_code == 202
    pipeline.run()
    again = pipeline.post_event(event)
    assert again.status_code == 202 and again.json()["status"] == "processed"
    changed = pipeline.post_event({**event, "risk_summary": "something else"})
    assert changed.status_code == 409
    pipeline.run()
    assert roles_of(pipeline, event["event_id"]) == ["deputy_dsl", "dsl"]


def test_bad_inputs_get_422_are_dead_lettered_and_the_pipeline_carries_on(pipeline: Pipeline) -> None:
    good = attendance(AMELIA)
    bad_bodies = [
        (b"{not json", "application/json"),
        (b'{"event_id": 5}', "application/json"),
        (b"\x00\x01garbage", "application/avro"),
        (b"\xc3\x01" + b"\x00" * 8 + b"\x02", "application/avro"),
        (b"x" * 70_000, "application/json"),
    ]
    for body, content_type in bad_bodies:
        response = pipeline.client.post("/api/events/self-harm-attendance", content=body,
                                        headers={**pipeline.headers("producer"), "Content-Type": content_type})
        assert response.status_code == 422, body[:20]
        assert all(set(e) == {"field", "message"} for e in response.json()["errors"])
    naive = attendance(AMELIA)
    naive["arrived_at"] = "2026-11-24T20:00:00"
    response = pipeline.post_event(naive)
    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "arrived_at",
                                          "message": "must be an ISO-8601 time with an offset (no offset given)"}]
    unknown_enum = attendance(AMELIA, consent="MAYBE")
    assert pipeline.post_event(unknown_enum).status_code == 422
    missing = attendance(AMELIA)
    del missing["risk_summary"]
    assert pipeline.post_event(missing).status_code == 422
    assert pipeline.client.post("/api/events/no-such-type", json=good,
                                headers=pipeline.headers("producer")).status_code == 404

    assert pipeline.post_event(good).status_code == 202
    pipeline.run()
    assert roles_of(pipeline, good["event_id"]) == ["deputy_dsl", "dsl"]
    from sqlmodel import func, select

    from pipeline.adapters.tables import DeadLetter

    with pipeline.services.store.read() as session:
        assert session.exec(select(func.count()).select_from(DeadLetter)).one() == 8


def test_avro_body_is_accepted(pipeline: Pipeline) -> None:
    from pipeline import codec

    event = attendance(AMELIA)
    body = codec.encode("self-harm-attendance", codec.from_json("self-harm-attendance", event))
    response = pipeline.client.post("/api/events/self-harm-attendance", content=body,
                                    headers={**pipeline.headers("producer"), "Content-Type": "application/avro"})
    assert response.status_code == 202
    pipeline.run()
    assert roles_of(pipeline, event["event_id"]) == ["deputy_dsl", "dsl"]
