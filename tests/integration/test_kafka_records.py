"""The Kafka worker's record handling (the body of the faust agents), on both stores, without a broker:
a record that lost a deadlock to another worker is tried again; a handler bug dead-letters only its record."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError
from sqlmodel import select

from consumers import kafka_records
from consumers.kafka_records import Delivery, handle_batch
from pipeline import codec
from pipeline.adapters import tables as t
from tests.integration.conftest import Pipeline
from tests.support.world import AMELIA, IDENTITY_VALUES, ISLA, attendance

TOPIC = "self-harm-attendance"


def delivery(event: dict[str, Any], offset: int) -> Delivery:
    return Delivery(TOPIC, TOPIC, 0, offset, codec.encode(TOPIC, codec.from_json(TOPIC, event)))


class _Deadlock(Exception):
    sqlstate = "40P01"


def test_a_record_that_lost_a_deadlock_is_retried_and_processed_once(pipeline: Pipeline,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = attendance(AMELIA), attendance(ISLA)
    real = kafka_records.process
    losses = {first["event_id"]: 2}  # loses twice, then wins

    def contended(repo: Any, event: t.Event, ctx: Any, now: Any) -> None:
        real(repo, event, ctx, now)  # effects written first, so the retry proves they were rolled back
        if losses.get(event.event_id, 0) > 0:
            losses[event.event_id] -= 1
            raise OperationalError("UPDATE child ...", {}, _Deadlock())

    monkeypatch.setattr(kafka_records, "process", contended)
    monkeypatch.setattr(kafka_records.time, "sleep", lambda _seconds: None)
    assert handle_batch(pipeline.services, [delivery(first, 0), delivery(second, 1)]) == ["processed", "processed"]
    with pipeline.services.store.read() as session:
        assert session.exec(select(t.DeadLetter)).all() == []
        events = session.exec(select(t.Event)).all()
        assert sorted(e.event_id for e in events) == sorted([first["event_id"], second["event_id"]])
        assert all(e.status == "processed" for e in events)
        for event, roles in ((first, ["deputy_dsl", "dsl"]), (second, ["SCIES"])):  # Isla's school is independent
            alerts = session.exec(select(t.Notification).where(t.Notification.event_id == event["event_id"])).all()
            assert sorted(n.recipient_role for n in alerts) == roles
            matched = session.exec(select(t.AuditEntry).where(t.AuditEntry.subject_id == event["event_id"],
                                                              t.AuditEntry.action == "matched")).all()
            assert len(matched) == 1


def test_a_handler_bug_dead_letters_its_record_and_the_rest_are_processed(pipeline: Pipeline,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    good, broken, later = attendance(AMELIA), attendance(ISLA), attendance(AMELIA)
    real = kafka_records.process

    def buggy(repo: Any, event: t.Event, ctx: Any, now: Any) -> None:
        real(repo, event, ctx, now)
        if event.event_id == broken["event_id"]:
            raise KeyError("simulated bug")

    monkeypatch.setattr(kafka_records, "process", buggy)
    outcomes = handle_batch(pipeline.services, [delivery(good, 0), delivery(broken, 1), delivery(later, 2)])
    assert outcomes == ["processed", "dead_lettered", "processed"]
    assert handle_batch(pipeline.services, [delivery(good, 0)]) == ["duplicate"]  # redelivered: effects once
    with pipeline.services.store.read() as session:
        letters = session.exec(select(t.DeadLetter)).all()
        assert [(letter.source, letter.reason) for letter in letters] == [("kafka", "handler failed: KeyError")]
        assert session.exec(select(t.Notification).where(t.Notification.event_id == broken["event_id"])).all() == []
        assert len(session.exec(select(t.Notification).where(t.Notification.event_id == good["event_id"])).all()) == 2
        dead = session.exec(select(t.Outbox).where(t.Outbox.topic == "dead-letters")).all()
        assert len(dead) == 1
        headers = json.loads(dead[0].body_json)["_headers"]
        assert headers["offset"] == 1 and headers["topic"] == TOPIC
        assert not any(secret in str(value) for value in headers.values() for secret in IDENTITY_VALUES)
