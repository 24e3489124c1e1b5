"""Kafka adapters (kafka-python): the output-topic publisher and the intake publisher, both acks=all.

Values are the contract's Avro single-object encoding from the project's one codec; keys are the
producer's reference (attendance or episode id; child id for trigger meetings). An event sent by the HTTP
intake carries its producer's user id in a record header, so the worker that processes it stores it with
the producer and the producer can read its event. An unreachable broker is ``BrokerUnavailable``, raised
within seconds (the HTTP intake answers 503 with Retry-After), never a hang or an unexpected error.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError

from pipeline import codec
from pipeline.adapters.publisher import BrokerUnavailable

OUTPUT_SCHEMAS = {"pathway-notifications": "pathway-notification", "escalations": "escalation",
                  "dead-letters": "dead-letter"}
KEY_FIELDS = {"self-harm-attendance": "attendance_id", "trigger-meeting-recorded": "child_id"}
PRODUCER_HEADER = "safeguard-producer-id"


def producer_id_from(headers: Iterable[tuple[str, bytes]] | Mapping[str, bytes] | None) -> int | None:
    """The producer's user id from a record's headers (as kafka-python or faust give them), if any."""
    items = headers.items() if isinstance(headers, Mapping) else (headers or ())
    for name, value in items:
        if name == PRODUCER_HEADER and value:
            try:
                return int(value.decode() if isinstance(value, bytes) else value)
            except ValueError:
                return None
    return None


def event_key(event_type: str, record: dict[str, Any]) -> bytes:
    return str(record[KEY_FIELDS.get(event_type, "episode_id")]).encode()


def ensure_topics(bootstrap: str, partitions: int = 4, prefix: str = "", timeout: float = 60.0) -> None:
    """Create the event and output topics if they are missing (auto-created topics get one partition), then wait
    until every partition of every one of them has a leader. The broker accepts a creation before it has elected
    the leaders (on KRaft, moments later; longer on a busy broker): a worker that joined its group before then was
    handed partitions it could neither reset nor fetch, and producers met ``NotLeaderForPartition``. Waiting here
    also covers topics another worker created a moment ago. A topic still without leaders after ``timeout`` seconds
    stops the start-up with ``KafkaTimeoutError`` (the broker's client needs leave to describe the topics)."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    names = [prefix + name for name in (*codec.EVENT_TYPES, *OUTPUT_SCHEMAS)]
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="safeguard-topics")
    try:
        existing = set(admin.list_topics())
        wanted = [NewTopic(name, partitions, 1) for name in names if name not in existing]
        if wanted:
            with contextlib.suppress(TopicAlreadyExistsError):  # another worker created them a moment ago
                admin.create_topics(wanted)
        admin.wait_for_topics(names, timeout_ms=int(timeout * 1000))
    finally:
        admin.close()


def make_producer(bootstrap: str, **options: Any) -> KafkaProducer:
    settings: dict[str, Any] = {"acks": "all", "retries": 5, "linger_ms": 2, "max_in_flight_requests_per_connection": 1,
                                "request_timeout_ms": 15000, **options}
    return KafkaProducer(bootstrap_servers=bootstrap, **settings)


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
    """Sends a validated event to its topic for `POST /api/events` and `safeguard produce` on Kafka.

    The producer is made on first use (the API starts while the broker is away), and every wait is bounded:
    a record not acknowledged within ``timeout`` seconds raises ``BrokerUnavailable`` and expires in the
    client rather than being sent later.
    """

    def __init__(self, bootstrap: str, prefix: str = "", timeout: float = 8.0) -> None:
        self.bootstrap, self.prefix, self.timeout = bootstrap, prefix, timeout
        self._producer: KafkaProducer | None = None
        self._lock = threading.Lock()

    def _ready_producer(self) -> KafkaProducer:
        with self._lock:
            if self._producer is None:
                wait_ms = int(self.timeout * 1000)
                try:
                    self._producer = make_producer(self.bootstrap, max_block_ms=wait_ms // 2,
                                                   request_timeout_ms=wait_ms // 2, delivery_timeout_ms=wait_ms)
                except (KafkaError, OSError) as error:
                    raise BrokerUnavailable(type(error).__name__) from error
            return self._producer

    def send(self, event_type: str, record: dict[str, Any], producer_id: int | None = None) -> None:
        value = codec.encode(event_type, record)
        headers = [(PRODUCER_HEADER, str(producer_id).encode())] if producer_id is not None else []
        producer = self._ready_producer()
        try:
            producer.send(self.prefix + event_type, key=event_key(event_type, record), value=value,
                          headers=headers).get(timeout=self.timeout)
        except Exception as error:  # noqa: BLE001 - whatever the client raises, the broker did not acknowledge
            raise BrokerUnavailable(type(error).__name__) from error

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=5)
