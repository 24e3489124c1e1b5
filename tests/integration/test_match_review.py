"""Matching through the whole pipeline: incomplete identities reviewed, the review queue's API, nothing sent while
in review, a child who left the roll, and a reference reload picked up by a running process."""

from __future__ import annotations

import json

import pytest
from sqlmodel import select

from pipeline.adapters import tables as t
from pipeline.service.reference import load
from tests.integration.conftest import Pipeline
from tests.support.world import AMELIA, FREYA, OLIVER, attendance

pytestmark = pytest.mark.integration


def roles(pipeline: Pipeline, event_id: str) -> list[str]:
    with pipeline.services.store.read() as s:
        rows = s.exec(select(t.Notification).where(t.Notification.event_id == event_id)).all()
        return sorted(r.recipient_role for r in rows)


def test_an_event_with_no_date_of_birth_is_accepted_and_reviewed_with_nothing_sent_to_the_school(
        pipeline: Pipeline) -> None:
    event = attendance({**OLIVER, "date_of_birth": None, "sex": None})
    assert pipeline.post_event(event).status_code == 202
    pipeline.run()
    body = pipeline.get(f"/api/events/{event['event_id']}", "manager").json()
    assert body["status"] == "review" and body["match"]["outcome"] == "review"
    breakdown = body["match"]["breakdown"]
    assert breakdown["model_version"].startswith("fs-") and breakdown["rule"] == "incomplete_identity"
    (candidate,) = breakdown["candidates"]
    levels = {c["field"]: c["level"] for c in candidate["comparisons"]}
    assert levels["date_of_birth"] == "absent" and levels["given_name"] == "exact"
    assert roles(pipeline, event["event_id"]) == ["FRONT_DOOR"]  # the review item: nothing to the school

    (review,) = pipeline.get("/api/reviews", "front_door").json()
    assert review["event_id"] == event["event_id"] and review["pathway"] == "self-harm"
    assert review["identity"]["date_of_birth"] is None and review["identity"]["given_name"] == "Oliver"
    child_id = review["candidates"][0]["child_id"]
    assert {c["field"] for c in review["candidates"][0]["comparisons"]} >= {"given_name", "family_name"}
    records = pipeline.get(f"/api/children/{child_id}", "front_door").json()["records"]
    assert {r["source"] for r in records} == {"pupil", "involvement"}
    assert next(r for r in records if r["source"] == "pupil")["school_urn"] == "100002"

    decided = pipeline.client.post(f"/api/events/{event['event_id']}/review",
                                   json={"child_id": child_id, "reason": "confirmed with the hospital"},
                                   headers=pipeline.headers("front_door"))
    assert decided.status_code == 200, decided.text
    pipeline.run()
    assert "dsl" in roles(pipeline, event["event_id"])  # the school is told once a person confirmed
    assert pipeline.get("/api/reviews", "front_door").json() == []


def test_a_review_or_consent_decision_needs_a_reason_that_is_not_blank(pipeline: Pipeline) -> None:
    event = attendance({**OLIVER, "date_of_birth": None, "sex": None})
    pipeline.post_event(event)
    pipeline.run()
    (review,) = pipeline.get("/api/reviews", "front_door").json()
    child_id = review["candidates"][0]["child_id"]
    for reason in ("", "  \t\n", "x" * 2001):
        refused = pipeline.client.post(f"/api/events/{event['event_id']}/review",
                                       json={"child_id": child_id, "reason": reason},
                                       headers=pipeline.headers("front_door"))
        assert refused.status_code == 422
        assert [e["field"] for e in refused.json()["errors"]] == ["reason"]
        decision = pipeline.client.post(f"/api/events/{event['event_id']}/decision",
                                        json={"decision": "close", "reason": reason},
                                        headers=pipeline.headers("front_door"))
        assert decision.status_code == 422 and decision.json()["errors"][0]["field"] == "reason"
    assert [r["event_id"] for r in pipeline.get("/api/reviews", "front_door").json()] == [event["event_id"]]
    decided = pipeline.client.post(f"/api/events/{event['event_id']}/review",
                                   json={"child_id": child_id, "reason": "  confirmed with the hospital\n"},
                                   headers=pipeline.headers("front_door"))
    assert decided.status_code == 200
    reasons = [a["reason"] for a in pipeline.get(f"/api/audit?subject={event['event_id']}", "manager").json()]
    assert any(r.endswith(": confirmed with the hospital") for r in reasons)  # kept without the blanks around it


def test_the_review_api_is_for_the_front_door_and_managers(pipeline: Pipeline) -> None:
    assert pipeline.get("/api/reviews", "dsl").status_code == 403
    assert pipeline.get("/api/reviews", "manager").status_code == 200
    assert pipeline.get("/api/children/not-a-child", "front_door").status_code == 404
    assert pipeline.get("/api/children/not-a-child", "worker").status_code == 403


def test_an_ambiguous_event_waits_for_a_person_and_nothing_is_sent_until_then(pipeline: Pipeline) -> None:
    with pipeline.services.store.unit_of_work() as port:  # a second Amelia Hartley, same birthday, elsewhere
        pupils = _pupils_with("Z999100100099,,Amelia,Hartley,2013-05-14,F,NS9 1ZZ,100002,2020-09-01,")
        load(port, "pupils", pupils, pipeline.clock())
    child = {**AMELIA, "nhs_number": None, "postcode": None}
    event = attendance(child)
    pipeline.post_event(event)
    pipeline.run()
    body = pipeline.get(f"/api/events/{event['event_id']}", "manager").json()
    assert body["match"]["outcome"] == "review"
    assert roles(pipeline, event["event_id"]) == ["FRONT_DOOR"]
    (review,) = pipeline.get("/api/reviews", "front_door").json()
    assert len(review["candidates"]) == 2
    assert abs(review["candidates"][0]["probability"] - review["candidates"][1]["probability"]) < 0.2
    decided = pipeline.client.post(f"/api/events/{event['event_id']}/review",
                                   json={"child_id": None, "reason": "neither: a different child"},
                                   headers=pipeline.headers("front_door"))
    assert decided.status_code == 200
    pipeline.run()
    assert "dsl" not in roles(pipeline, event["event_id"])


def test_a_child_who_left_the_roll_is_recognised_and_routed_to_cme_and_the_front_door(pipeline: Pipeline) -> None:
    event = attendance(FREYA)
    pipeline.post_event(event)
    pipeline.run()
    body = pipeline.get(f"/api/events/{event['event_id']}", "manager").json()
    assert body["match"]["outcome"] == "linked" and body["match"]["child_id"]
    assert roles(pipeline, event["event_id"]) == ["CME", "FRONT_DOOR"]


def test_a_reference_reload_is_picked_up_by_the_running_process_without_a_restart(pipeline: Pipeline) -> None:
    newcomer = {"nhs_number": None, "given_name": "Kit", "family_name": "Marlowe", "date_of_birth": "2014-02-26",
                "sex": "M", "postcode": "NS2 9XY", "school_name": None}
    first = attendance(newcomer)
    pipeline.post_event(first)
    pipeline.run()
    assert pipeline.get(f"/api/events/{first['event_id']}", "manager").json()["match"]["outcome"] == "no_match"
    index = pipeline.services.ctx.index
    built = id(index.records)
    with pipeline.services.store.unit_of_work() as port:
        load(port, "pupils", _pupils_with("K999100100077,,Kit,Marlowe,2014-02-26,M,NS2 9XY,100001,2020-09-01,"),
             pipeline.clock())
    second = attendance(newcomer)
    pipeline.post_event(second)
    pipeline.run()
    body = pipeline.get(f"/api/events/{second['event_id']}", "manager").json()
    assert body["match"]["outcome"] == "linked"
    assert "dsl" in roles(pipeline, second["event_id"])
    assert id(index.records) == built  # applied as a change, not rebuilt
    with pipeline.services.store.read() as s:
        stored = json.loads(s.exec(select(t.Event).where(t.Event.event_id == first["event_id"])).one().match_json)
    assert stored["candidates"] == [] or all("child_id" in c for c in stored["candidates"])


def _pupils_with(extra_row: str) -> str:
    from tests.support.world import PUPILS

    return PUPILS + extra_row + "\n"
