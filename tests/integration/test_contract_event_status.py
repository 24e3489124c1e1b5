"""Contract: GET /api/events/{event_id} answers `dead_lettered` for an event rejected at intake, to the producer
that sent it and to managers, never echoing the payload; anyone else gets the not-found 404."""

from __future__ import annotations

import json
import uuid

from sqlmodel import select

from pipeline.adapters import tables as t
from tests.integration.conftest import Pipeline
from tests.support.world import AMELIA, attendance


def test_an_event_rejected_at_intake_reads_as_dead_lettered(pipeline: Pipeline) -> None:
    bad = attendance(AMELIA, consent="Hartley")
    assert pipeline.post_event(bad).status_code == 422
    event_id = bad["event_id"]

    expected = {"event_id": event_id, "status": "dead_lettered", "match": {"outcome": None, "child_id": None},
                "notifications": []}
    for who in ("producer", "manager"):
        response = pipeline.get(f"/api/events/{event_id}", who)
        assert response.status_code == 200 and response.json() == expected
        assert "Hartley" not in response.text and "Amelia" not in response.text
    ghost = pipeline.get(f"/api/events/{uuid.uuid4()}", "producer2")
    other = pipeline.get(f"/api/events/{event_id}", "producer2")
    assert (other.status_code, other.content) == (404, ghost.content)
    assert pipeline.get(f"/api/events/{event_id}", "dsl").status_code == 403

    # Sent again, fixed: the stored event is what its status reports from then on.
    assert pipeline.post_event(attendance(AMELIA) | {"event_id": event_id}).status_code == 202
    assert pipeline.get(f"/api/events/{event_id}", "producer").json()["status"] == "accepted"


def test_only_a_parsed_string_event_id_is_kept(pipeline: Pipeline) -> None:
    number = {**attendance(AMELIA), "event_id": 12345}
    huge = attendance(AMELIA, consent="X") | {"event_id": "e" * 5000}
    bodies = [json.dumps(number).encode(), json.dumps(huge).encode(), b'{"event_id": "abc", ']
    for body in bodies:
        response = pipeline.client.post("/api/events/self-harm-attendance", content=body,
                                        headers={**pipeline.headers("producer"), "Content-Type": "application/json"})
        assert response.status_code == 422
    with pipeline.services.store.read() as session:
        letters = session.exec(select(t.DeadLetter)).all()
    assert len(letters) == 3 and {letter.event_id for letter in letters} == {None}
    assert pipeline.get("/api/events/abc", "manager").status_code == 404
