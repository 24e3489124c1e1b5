"""The audit is append-only in the database itself, and records every delivery failure and every closed
deadline (who closed it, or which event did)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError
from sqlmodel import select

from consumers.intake_consumer import IntakeConsumer
from pipeline.adapters import tables as t
from pipeline.adapters.store import Store
from pipeline.service.relay import relay
from tests.integration.conftest import Pipeline
from tests.integration.test_missing_api import REPORTED, found, reported
from tests.support.world import AMELIA, JACOB, TERM_EVENING, attendance


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
@pytest.mark.parametrize("statement", [
    "UPDATE auditentry SET reason = 'rewritten' WHERE id = :id",
    "DELETE FROM auditentry WHERE id = :id",
])
def test_the_database_refuses_to_change_or_remove_an_audit_entry(backend: str, statement: str, tmp_path: Path,
                                                                 request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue("postgres_url") if backend == "postgresql" else f"sqlite:///{tmp_path}/a.db"
    store = Store(url)
    store.migrate()
    with store.engine.begin() as connection:
        connection.execute(text("INSERT INTO auditentry (at, actor, action, subject_id, reason) "
                                "VALUES (:at, 'system', 'created', 'n-1', 'original')"),
                           {"at": TERM_EVENING.replace(tzinfo=None)})
        entry_id = connection.execute(text("SELECT id FROM auditentry")).scalar_one()
    with pytest.raises(DatabaseError, match="append-only"), store.engine.begin() as connection:
        connection.execute(text(statement), {"id": entry_id})
    with store.engine.connect() as connection:
        rows = connection.execute(text("SELECT id, reason FROM auditentry")).all()
    assert [tuple(row) for row in rows] == [(entry_id, "original")]
    store.dispose()


class FailingChannel:
    public_url = "http://127.0.0.1:8000"

    def send(self, message: Any) -> None:
        raise ConnectionError("mail server down")


def test_every_failed_delivery_is_audited(pipeline: Pipeline) -> None:
    pipeline.post_event(attendance(AMELIA))
    IntakeConsumer(pipeline.services.store, pipeline.services.ctx, pipeline.clock).run_once(100)
    relay(pipeline.services.store, FailingChannel(), pipeline.services.publisher, pipeline.clock())
    with pipeline.services.store.read() as session:
        failed = session.exec(select(t.Notification).where(t.Notification.status == "failed")).all()
        audited = {(a.subject_id, a.reason) for a in session.exec(select(t.AuditEntry).where(
            t.AuditEntry.action == "failed")).all()}
    assert failed
    assert audited == {(n.id, "delivery failed: ConnectionError") for n in failed}


def test_every_closed_deadline_is_audited_with_who_or_what_closed_it(pipeline: Pipeline) -> None:
    pipeline.clock.now = REPORTED
    pipeline.post_event(reported(JACOB, "EP-A1", grade="HIGH"), "missing-reported")
    pipeline.run()
    pipeline.clock.advance(hours=2)
    found_event = found("EP-A1", REPORTED + timedelta(hours=1))
    pipeline.post_event(found_event, "missing-found")
    pipeline.post_event(attendance(AMELIA, arrived_at=pipeline.clock.now))
    pipeline.run()
    with pipeline.services.store.read() as session:
        school_alert = session.exec(select(t.Notification).where(t.Notification.recipient_role == "dsl",
                                                                 t.Notification.pathway == "self-harm")).one()
    acknowledged = pipeline.client.post(f"/api/notifications/{school_alert.id}/acknowledge",
                                        json={"outcome": "seen"}, headers=pipeline.headers("dsl"))
    assert acknowledged.status_code == 200
    with pipeline.services.store.read() as session:
        closed = session.exec(select(t.Deadline).where(t.Deadline.state == "closed")).all()
        entries = {a.subject_id: a for a in session.exec(select(t.AuditEntry).where(
            t.AuditEntry.action == "closed")).all()}
    assert {d.kind for d in closed} >= {"still_missing", "episode_length_check", "self_harm_acknowledgement"}
    assert set(entries) == {d.id for d in closed}
    by_kind = {d.kind: entries[d.id] for d in closed}
    assert found_event["event_id"] in by_kind["still_missing"].reason  # which event closed it
    assert by_kind["self_harm_acknowledgement"].actor == "dsl@riverside.sch.example"  # who closed it
