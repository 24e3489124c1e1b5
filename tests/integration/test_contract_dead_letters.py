"""Contract: input rejected by the embedded intake (never an accepted event) reaches the `dead-letters` output
topic as a schemas/dead-letter.avsc record, with the reason and no personal data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from pipeline import codec
from pipeline.adapters import tables as t
from pipeline.service import dispatch
from pipeline.service.intake import Submission
from tests.integration.conftest import Pipeline
from tests.support.world import AMELIA, IDENTITY_VALUES, ISLA, attendance

SECRETS = sorted({*IDENTITY_VALUES, *(str(v) for child in (AMELIA, ISLA) for k, v in child.items()
                                      if v and k not in ("sex", "school_name"))})


def published_dead_letters(pipeline: Pipeline) -> tuple[str, list[dict[str, Any]]]:
    path = Path(pipeline.services.publisher.directory) / "dead-letters.jsonl"  # type: ignore[attr-defined]
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    return text, [json.loads(line) for line in text.splitlines()]


def check_shape(value: dict[str, Any]) -> dict[str, Any]:
    """The record fits schemas/dead-letter.avsc once its Kafka headers are taken off."""
    record = {k: v for k, v in value.items() if k != "_headers"}
    codec.encode("dead-letter", codec.from_json("dead-letter", record))
    return dict(value["_headers"])


def test_a_422_over_http_reaches_the_dead_letters_topic_without_personal_data(pipeline: Pipeline) -> None:
    bad = attendance(AMELIA, consent="Hartley")
    response = pipeline.post_event(bad)
    assert response.status_code == 422
    pipeline.run()

    text, records = published_dead_letters(pipeline)
    assert len(records) == 1
    value = records[0]["value"]
    headers = check_shape(value)
    with pipeline.services.store.read() as session:
        letter = session.exec(select(t.DeadLetter)).one()
    assert records[0]["key"] == value["dead_letter_id"] == letter.id
    assert value["source"] == "http" and value["event_type"] == "self-harm-attendance"
    assert value["reason"] == letter.reason and "consent: must be one of" in value["reason"]
    assert headers == {"reason": letter.reason, "topic": "self-harm-attendance"}
    assert [secret for secret in SECRETS if secret in text] == []
    assert b"Hartley" in letter.payload  # the producer's bytes stay in the store, for a person to look at


def test_a_handler_failure_is_no_dead_letter(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    """Dead letters are input that was never accepted; an accepted event whose handler fails stays accepted."""
    def broken(repo: Any, event: t.Event, record: dict[str, Any], ctx: Any, now: Any) -> None:
        raise RuntimeError("simulated bug")

    monkeypatch.setitem(dispatch.HANDLERS, "self-harm-attendance", broken)
    event = attendance(ISLA)
    assert pipeline.post_event(event).status_code == 202
    pipeline.run()

    _, records = published_dead_letters(pipeline)
    assert records == []
    assert pipeline.get(f"/api/events/{event['event_id']}", "producer").json()["status"] == "accepted"


def test_the_kafka_deployments_http_validation_also_sends_its_dead_letter(pipeline: Pipeline) -> None:
    body = json.dumps(attendance(ISLA, admitted="Fairbairn")).encode()
    result = pipeline.services.intake.validate(Submission("self-harm-attendance", body, producer_id=None))
    assert getattr(result, "status_code", None) == 422
    with pipeline.services.store.read() as session:
        rows = session.exec(select(t.Outbox).where(t.Outbox.topic == "dead-letters")).all()
    assert len(rows) == 1
    assert check_shape(json.loads(rows[0].body_json))["topic"] == "self-harm-attendance"
    assert [secret for secret in SECRETS if secret in rows[0].body_json] == []
