"""The relay's outbox pass: the topic lines and console lines it writes, on SQLite and PostgreSQL.

The pass reads each batch with its notifications' fields in one statement, hands a record's stored JSON to the
file publisher as it is, and marks the batch with one executemany: what it writes must be what decoding and
encoding each record again wrote.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlmodel import select

from consumers.intake_consumer import IntakeConsumer
from pipeline.adapters import tables as t
from pipeline.adapters.channels import MESSAGE_FIELDS, login_link, message_text
from pipeline.adapters.publisher import FilePublisher, publish_stored
from pipeline.service.notify import DELIVERIES
from pipeline.service.relay import relay
from tests.integration.conftest import Pipeline
from tests.support.world import AMELIA, OLIVER, attendance


def _lines(path: Any) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


def test_the_outbox_pass_writes_each_record_as_stored_and_one_console_line_per_notification(
        pipeline: Pipeline) -> None:
    for child in (AMELIA, OLIVER, AMELIA):
        assert pipeline.post_event(attendance(child)).status_code == 202
    IntakeConsumer(pipeline.services.store, pipeline.services.ctx, pipeline.clock).run_once(100)
    store = pipeline.services.store
    with store.transaction() as session:
        # A row of the ``deliveries`` topic (as stored before the console line came from the notification's topic
        # record) whose notification is gone: relayed, not published, with no console line.
        session.add(t.Outbox(topic=DELIVERIES, key="gone", body_json=json.dumps({"notification_id": "gone"}),
                             notification_id="gone", created_at=pipeline.clock()))
    with store.read() as session:
        outbox = list(session.exec(select(t.Outbox).order_by(t.Outbox.id)).all())
        notifications = {n.id: n for n in session.exec(select(t.Notification)).all()}
    topic_rows = [row for row in outbox if row.topic != DELIVERIES]
    assert topic_rows and notifications
    publisher = pipeline.services.publisher
    assert isinstance(publisher, FilePublisher)
    console = pipeline.services.delivery.console
    assert console is not None

    # Batches of three: several passes, each a part of the outbox.
    while relay(store, pipeline.services.delivery, publisher, pipeline.clock(), batch=3):
        pass

    written: list[str] = []
    for topic in sorted({row.topic for row in topic_rows}):
        written += (publisher.directory / f"{topic}.jsonl").read_text(encoding="utf-8").splitlines()
    # Byte for byte the line of the record decoded and encoded again (what the relay wrote before).
    expected = [json.dumps({"key": row.key, "value": json.loads(row.body_json)}) for row in
                sorted(topic_rows, key=lambda row: (row.topic, row.id))]
    assert written == expected

    wanted = [row.notification_id for row in topic_rows]
    assert len(wanted) == len(set(wanted)) == len(notifications)  # one topic record, and one line, each
    lines = _lines(console.path)
    assert [line["notification_id"] for line in lines] == wanted  # in outbox order
    public_url = pipeline.services.delivery.public_url
    for line in lines:
        notification = notifications[line["notification_id"]]
        assert tuple(line) == MESSAGE_FIELDS
        assert line == {"notification_id": notification.id, "delivery_id": "-", "channel": "outbox", "to": "",
                        "urgency": notification.urgency,
                        "body": message_text(notification.urgency, public_url, notification.id),
                        "link": login_link(public_url, notification.id), "school_urn": notification.school_urn,
                        "pathway": notification.pathway}

    with store.read() as session:
        assert all(row.relayed_at == pipeline.clock() for row in session.exec(select(t.Outbox)).all())
    # Nothing is relayed twice.
    assert relay(store, pipeline.services.delivery, publisher, pipeline.clock()) == 0
    assert len(_lines(console.path)) == len(lines)


class DecodingPublisher:
    """A publisher with ``publish`` alone (as the Kafka one encodes a record itself)."""

    def __init__(self) -> None:
        self.records: list[tuple[str, str, dict[str, Any]]] = []

    def publish(self, topic: str, key: str, record: dict[str, Any]) -> None:
        self.records.append((topic, key, record))

    def flush(self) -> None:
        pass


def test_a_stored_record_reaches_a_publisher_without_publish_json_decoded() -> None:
    publisher = DecodingPublisher()
    publish_stored(publisher, "pathway-notifications", "k", json.dumps({"a": [1, "two"], "b": None}))
    assert publisher.records == [("pathway-notifications", "k", {"a": [1, "two"], "b": None})]


def test_every_notification_alerts_reminders_and_escalations_has_one_console_line(pipeline: Pipeline) -> None:
    # An alert's line comes from its pathway-notifications record, a ladder step's from the sweep's escalations
    # record: one line each, none twice, across the passes of a first run and a later one.
    pipeline.post_event(attendance(AMELIA))
    pipeline.run()
    pipeline.clock.now = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)  # every step of the ladder is now in the past
    pipeline.run()
    with pipeline.services.store.read() as session:
        notifications = {n.id: n.kind for n in session.exec(select(t.Notification)).all()}
        topics = {row.topic for row in session.exec(select(t.Outbox)).all()}
    assert {"alert", "escalation"} <= set(notifications.values())
    assert topics == {"pathway-notifications", "escalations"}  # and no deliveries rows any more
    console = pipeline.services.delivery.console
    assert console is not None
    lines = [line["notification_id"] for line in _lines(console.path)]
    assert sorted(lines) == sorted(notifications)
