"""The publisher port's contract, run against the embedded adapter (JSON-lines files) and the real one
(Apache Kafka): records come out of a topic in the order published, with their keys, once ``flush``
returned; and a record Kafka cannot take raises, so the relay keeps its outbox row."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer

from pipeline import codec
from pipeline.adapters.kafka import KafkaPublisher, ensure_topics
from pipeline.adapters.publisher import FilePublisher, Publisher

Reader = Callable[[str, int], list[tuple[str, dict[str, Any]]]]


def _file_adapter(tmp_path: Path) -> tuple[Publisher, Reader]:
    directory = tmp_path / "topics"

    def read(topic: str, _expected: int) -> list[tuple[str, dict[str, Any]]]:
        lines = (directory / f"{topic}.jsonl").read_text(encoding="utf-8").splitlines()
        return [(line["key"], line["value"]) for line in map(json.loads, lines)]

    return FilePublisher(directory), read


def _kafka_adapter(bootstrap: str) -> tuple[KafkaPublisher, Reader]:
    prefix = f"p{uuid.uuid4().hex[:8]}."
    ensure_topics(bootstrap, 1, prefix)

    def read(topic: str, expected: int) -> list[tuple[str, dict[str, Any]]]:
        consumer = KafkaConsumer(prefix + topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                 consumer_timeout_ms=5000, group_id=f"reader-{uuid.uuid4().hex[:8]}")
        try:
            out = []
            for record in consumer:
                name, value = codec.decode(record.value)
                out.append((record.key.decode(), codec.to_json(name, value)))
                if len(out) == expected:
                    break
            return out
        finally:
            consumer.close()

    return KafkaPublisher(bootstrap, prefix), read


@pytest.fixture(params=["file", "kafka"])
def adapter(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Publisher, Reader]]:
    if request.param == "file":
        yield _file_adapter(tmp_path)
        return
    bootstrap = request.getfixturevalue("real_services")["SAFEGUARD_KAFKA_BOOTSTRAP"]
    publisher, reader = _kafka_adapter(bootstrap)
    try:
        yield publisher, reader
    finally:
        publisher.close()


def notification(index: int) -> dict[str, Any]:
    return {"notification_id": str(uuid.UUID(int=index)), "event_id": str(uuid.UUID(int=1000 + index % 3)),
            "pathway": "self_harm",
            "recipient_role": "dsl", "recipient": "100001", "urgency": "URGENT" if index % 2 else "ROUTINE",
            "created_at": datetime(2026, 11, 24, 20, 0, index, tzinfo=UTC).isoformat()}


def test_published_records_come_out_in_order_with_their_keys(adapter: tuple[Publisher, Reader]) -> None:
    publisher, read = adapter
    sent = [notification(index) for index in range(25)]
    for record in sent:
        publisher.publish("pathway-notifications", record["event_id"], dict(record))
    publisher.flush()
    received = read("pathway-notifications", len(sent))
    assert [key for key, _ in received] == [record["event_id"] for record in sent]
    assert [value["notification_id"] for _, value in received] == [record["notification_id"] for record in sent]
    assert [value["urgency"] for _, value in received] == [record["urgency"] for record in sent]


def test_flush_with_nothing_published_returns(adapter: tuple[Publisher, Reader]) -> None:
    publisher, _ = adapter
    publisher.flush()


def test_a_record_kafka_cannot_take_raises_before_the_relay_marks_it(real_services: dict[str, str]) -> None:
    from kafka.errors import KafkaError

    publisher, read = _kafka_adapter(real_services["SAFEGUARD_KAFKA_BOOTSTRAP"])
    too_big = {**notification(1), "recipient": "x" * (2 * 1024 * 1024)}  # over Kafka's 1 MiB default limit
    try:
        with pytest.raises(KafkaError):
            publisher.publish("pathway-notifications", too_big["event_id"], too_big)
            publisher.flush()
        publisher.publish("pathway-notifications", "still-usable", notification(2))
        publisher.flush()
        assert [key for key, _ in read("pathway-notifications", 1)] == ["still-usable"]
    finally:
        publisher.close()
