"""No identity value of the test data ever leaves in a log record, a URL, a channel message, a published
record, an error body, a dead letter's metadata, an outbox body or an audit entry."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from pipeline.adapters import tables as t
from tests.integration.conftest import Pipeline
from tests.support.world import AMELIA, IDENTITY_VALUES, ISLA, JACOB, LILY_TYPO, UNKNOWN, attendance

SENT_IDENTITIES = [AMELIA, ISLA, JACOB, LILY_TYPO, UNKNOWN]
SECRETS = sorted({*IDENTITY_VALUES, *(str(v) for child in SENT_IDENTITIES for k, v in child.items()
                                      if v and k != "sex" and k != "school_name")})


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        self.lines.append(f"{record.name}: {text}")


def leaks(where: str, texts: list[str]) -> list[str]:
    return [f"{where}: {secret!r} in {text[:120]!r}" for text in texts for secret in SECRETS if secret in text]


def test_personal_data_stays_inside(pipeline: Pipeline, caplog: pytest.LogCaptureFixture) -> None:
    capture = Capture()
    root = logging.getLogger()
    root.addHandler(capture)
    previous = root.level
    root.setLevel(logging.DEBUG)
    urls: list[str] = []
    errors: list[str] = []
    try:
        def post(event: dict[str, Any] | bytes, content_type: str = "application/json") -> Any:
            body = event if isinstance(event, bytes) else json.dumps(event).encode()
            response = pipeline.client.post("/api/events/self-harm-attendance", content=body,
                                            headers={**pipeline.headers("producer"), "Content-Type": content_type})
            urls.append(str(response.url))
            urls.extend(response.headers.get_list("location"))
            if response.status_code >= 400:
                errors.append(response.text)
            return response

        for child in (AMELIA, ISLA, JACOB, UNKNOWN):
            assert post(attendance(child)).status_code == 202
        assert post(attendance(AMELIA, consent="REFUSED")).status_code == 202
        assert post(attendance(LILY_TYPO, exploitation_screening="CONCERN")).status_code == 202
        naive = attendance(AMELIA)
        naive["arrived_at"] = "2026-11-24T20:00:00"
        bad_enum = attendance(JACOB, consent="Merriman")
        wrong_type = attendance(ISLA, admitted="Fairbairn")
        wrong_type["child"]["date_of_birth"] = "21/07/2012"
        oversize = attendance(AMELIA, risk_summary="Amelia Hartley " * 6000)
        for bad in (naive, bad_enum, wrong_type, oversize):
            assert post(bad).status_code == 422
        assert post(b'{"child": {"given_name": "Amelia", "family_name": "Hartley"') .status_code == 422
        assert post(b"\xc3\x01Amelia Hartley 9990000018", "application/avro").status_code == 422
        event = attendance(AMELIA)
        assert post(event).status_code == 202
        assert post({**event, "risk_summary": "Hartley changed"}).status_code == 409

        pipeline.run()
        for day, hour in ((25, 12), (25, 14), (25, 16), (26, 12)):
            pipeline.clock.now = datetime(2026, 11, day, hour, 0, tzinfo=UTC)
            pipeline.run()
        for who in ("dsl", "worker", "front_door", "manager"):
            for note in pipeline.get("/api/notifications", who).json():
                response = pipeline.get(f"/api/notifications/{note['id']}", who)
                urls.append(str(response.url))
        for who in ("dsl_other", "worker_other"):
            response = pipeline.get("/api/notifications/00000000-0000-4000-8000-000000000000", who)
            errors.append(response.text)
    finally:
        root.removeHandler(capture)
        root.setLevel(previous)

    services = pipeline.services
    messages = [json.loads(line) for line in services.channel.path.read_text().splitlines()]  # type: ignore[attr-defined]
    published = [line for path in Path(services.publisher.directory).glob("*.jsonl")  # type: ignore[attr-defined]
                 for line in path.read_text().splitlines()]
    with services.store.read() as session:
        letters = session.exec(select(t.DeadLetter)).all()
        outbox = session.exec(select(t.Outbox)).all()
        audit = session.exec(select(t.AuditEntry)).all()
        escalations = [n for n in session.exec(select(t.Notification)).all() if n.kind in ("reminder", "escalation")]

    # It all happened, so the checks below are not vacuous.
    assert len(messages) >= 8 and escalations and len(letters) == 6 and len(capture.lines) > 5
    assert any("dead-lettered" in line for line in capture.lines)
    assert published and outbox and audit and len(errors) >= 8

    found = [
        *leaks("log", capture.lines + [r.getMessage() for r in caplog.records]),
        *leaks("url", urls),
        *leaks("channel message", [json.dumps(m) for m in messages]),
        *leaks("published record", published),
        *leaks("error body", errors),
        *leaks("dead letter metadata", [f"{d.id} {d.source} {d.event_type} {d.reason}" for d in letters]),
        *leaks("outbox body", [o.body_json + o.key for o in outbox]),
        *leaks("audit entry", [f"{a.actor} {a.action} {a.reason} {a.subject_id}" for a in audit]),
    ]
    assert not found, "\n".join(found[:20])
    # The data is not lost: the dead letters keep the payloads for a person to look at.
    assert any(b"Hartley" in d.payload for d in letters)
