"""Kafka adapters (kafka-python): the output-topic publisher and the intake publisher, both acks=all.

Values are the contract's Avro single-object encoding from the project's one codec; keys are the
producer's reference (attendance or episode id; child id for trigger meetings).
"""

from __future__ import annotations

import contextlib
from typing import Any

from kafka import KafkaProducer

from pipeline import codec

OUTPUT_SCHEMAS = {"pathway-notifications": "pathway-notification", "escalations": "escalation",
                  "dead-letters": "dead-letter"}
KEY_FIELDS = {"self-harm-attendance": "attendance_id", "trigger-meeting-recorded": "child_id"}


def event_key(event_type: str, record: dict[str, Any]) -> bytes:
    return str(record[KEY_FIELDS.get(event_type, "episode_id")]).encode()


def ensure_topics(bootstrap: str, partitions: int = 4, prefix: str = "") -> None:
    """Create the event and output topics if they are missing (auto-created topics get one partition)."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="safeguard-topics")
    try:
        existing = set(admin.list_topics())
        wanted = [NewTopic(prefix + name, partitions, 1) for name in (*codec.EVENT_TYPES, *OUTPUT_SCHEMAS)
                  if prefix + name not in existing]
        if wanted:
            with contextlib.suppress(TopicAlreadyExistsError):  # another worker created them a moment ago
                admin.create_topics(wanted)
    finally:
        admin.close()


def make_producer(bootstrap: str) -> KafkaProducer:
    return KafkaProducer(bootstrap_servers=bootstrap, acks="all", retries=5, linger_ms=2,
                         max_in_flight_requests_per_connection=1, request_timeout_ms=15000)


class KafkaPublisher:
    """Publishes outbox records to the output topics; ``flush`` returns once the broker acknowledged them all."""

    def __init__(self, bootstrap: str, prefix: str = "", timeout: float = 15.0) -> None:
        self.producer = make_producer(bootstrap)
        self.prefix, self.timeout = prefix, timeout
        self._in_flight: list[Any] = []

    def publish(self, topic: str, key: str, record: dict[str, Any]) -> None:
        headers = [(name, str(value).encode()) for name, value in (record.pop("_headers", None) or {}).items()]
        schema = OUTPUT_SCHEMAS[topic]
        try:
            value = codec.encode(schema, codec.from_json(schema, record))
            future = self.producer.send(self.prefix + topic, key=key.encode(), value=value, headers=headers)
        except Exception:
            self._in_flight = []  # the caller rolls back: whatever was sent before is relayed again, at least once
            raise
        self._in_flight.append(future)

    def flush(self) -> None:
        """Wait for every record sent since the last flush; raises if the broker refused any of them."""
        in_flight, self._in_flight = self._in_flight, []
        for future in in_flight:
            future.get(timeout=self.timeout)

    def close(self) -> None:
        self.producer.close(timeout=5)


class KafkaEventSender:
    """Sends a validated event to its topic for `POST /api/events` and `safeguard produce` on Kafka."""

    def __init__(self, bootstrap: str, prefix: str = "", timeout: float = 15.0) -> None:
        self.producer = make_producer(bootstrap)
        self.prefix, self.timeout = prefix, timeout

    def send(self, event_type: str, record: dict[str, Any]) -> None:
        value = codec.encode(event_type, record)
        self.producer.send(self.prefix + event_type, key=event_key(event_type, record), value=value).get(
            timeout=self.timeout)

    def close(self) -> None:
        self.producer.close(timeout=5)
