"""Inputs found by fuzzing the API: each gets the contract's answer, is kept if invalid, and leaks nothing."""

from __future__ import annotations

import json
import uuid

from sqlmodel import select

from pipeline.adapters import tables as t
from tests.integration.conftest import Pipeline
from tests.support.world import AMELIA, IDENTITY_VALUES, attendance


def post_raw(pipeline: Pipeline, body: bytes, event_type: str = "self-harm-attendance") -> object:
    return pipeline.client.post(f"/api/events/{event_type}", content=body,
                                headers={**pipeline.headers("producer"), "Content-Type": "application/json"})


def test_unstorable_text_and_impossible_times_are_422_and_kept(pipeline: Pipeline) -> None:
    lone_surrogate = json.dumps(attendance(AMELIA, risk_summary="\ud800")).encode()  # escaped as \\ud800
    out_of_range = json.dumps({**attendance(AMELIA), "arrived_at": "0001-01-01T00:00:00+01:00"}).encode()
    surrogate_id = json.dumps({**attendance(AMELIA), "event_id": "\udc00"}).encode()
    for body in (lone_surrogate, out_of_range, surrogate_id):
        response = post_raw(pipeline, body)
        assert response.status_code == 422, response.text  # type: ignore[attr-defined]
        assert not any(value in response.text for value in IDENTITY_VALUES)  # type: ignore[attr-defined]
    with pipeline.services.store.read() as session:
        assert len(session.exec(select(t.DeadLetter)).all()) == 3
    good = attendance(AMELIA)
    assert pipeline.post_event(good).status_code == 202
    pipeline.run()
    assert pipeline.get(f"/api/events/{good['event_id']}", "manager").json()["status"] == "processed"


def test_unknown_field_names_are_not_echoed(pipeline: Pipeline) -> None:
    event = attendance(AMELIA)
    event["Amelia Hartley 2013-05-14"] = 1
    event["child"] = {**event["child"], "9990000018": True}
    response = pipeline.post_event(event)
    assert response.status_code == 422
    assert "Amelia" not in response.text and "9990000018" not in response.text
    assert {e["field"] for e in response.json()["errors"]} == {"", "child"}


def test_one_uuid_in_another_case_is_one_event(pipeline: Pipeline) -> None:
    event = attendance(AMELIA)
    assert pipeline.post_event(event).status_code == 202
    again = pipeline.post_event({**event, "event_id": event["event_id"].upper()})
    assert again.status_code == 202 and again.json()["event_id"] == event["event_id"]
    pipeline.run()
    assert pipeline.get(f"/api/events/{event['event_id'].upper()}", "manager").json()["status"] == "processed"
    with pipeline.services.store.read() as session:
        assert len(session.exec(select(t.Event)).all()) == 1


def test_a_trigger_meeting_for_a_child_the_pipeline_never_issued_is_dead_lettered(pipeline: Pipeline) -> None:
    meeting = {"event_id": str(uuid.uuid4()), "child_id": str(uuid.uuid4()),
               "held_at": "2026-11-24T10:00:00+00:00", "outcome": "plan agreed"}
    refused = pipeline.post_event(meeting, "trigger-meeting-recorded")  # refused at intake: never accepted
    assert refused.status_code == 422 and [e["field"] for e in refused.json()["errors"]] == ["child_id"]
    pipeline.run()
    body = pipeline.get(f"/api/events/{meeting['event_id']}", "manager").json()
    assert body["status"] == "dead_lettered"
    nhs = pipeline.post_event({**meeting, "event_id": str(uuid.uuid4()), "child_id": "9990000018"},
                              "trigger-meeting-recorded")
    assert nhs.status_code == 422 and "9990000018" not in nhs.text


def test_an_acknowledgement_needs_an_outcome_and_a_trailing_slash_is_not_redirected(pipeline: Pipeline) -> None:
    pipeline.post_event(attendance(AMELIA))
    pipeline.run()
    (first, *_) = pipeline.get("/api/notifications", "dsl").json()
    for outcome in ("", "   ", "x" * 2001):
        response = pipeline.client.post(f"/api/notifications/{first['id']}/acknowledge", json={"outcome": outcome},
                                        headers=pipeline.headers("dsl"))
        assert response.status_code == 422
    assert pipeline.get(f"/api/notifications/{first['id']}", "dsl").json()["status"] != "acknowledged"
    slash = pipeline.client.post("/api/events/self-harm-attendance/", json=attendance(AMELIA),
                                 headers={**pipeline.headers("producer"), "Host": "evil.example"},
                                 follow_redirects=False)
    assert slash.status_code == 404 and "location" not in slash.headers


def test_another_producers_event_id_is_a_conflict_and_its_status_does_not_leak(pipeline: Pipeline) -> None:
    event = attendance(AMELIA)
    assert pipeline.post_event(event).status_code == 202
    pipeline.run()
    theirs = pipeline.post_event(event, who="producer2")
    assert theirs.status_code == 409 and "status" not in theirs.json()
    assert pipeline.post_event(event).json() == {"event_id": event["event_id"], "status": "processed"}
