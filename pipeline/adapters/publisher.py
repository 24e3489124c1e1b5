"""Publishers of output records (pathway-notifications, escalations, dead-letters).

The embedded runtime appends them to JSON-lines files under var/topics/; the Kafka runtime publishes
them Avro-encoded to topics of the same names.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, Protocol

from pipeline.json_text import json_text


class BrokerUnavailable(Exception):
    """The broker could not be reached, or did not acknowledge in time: nothing was stored."""


class EventSender(Protocol):
    """Sends one validated event to its topic and returns once the broker acknowledged it (Kafka intake)."""

    def send(self, event_type: str, record: dict[str, Any], producer_id: int | None = None) -> None: ...


class Publisher(Protocol):
    """``publish`` may send in the background; ``flush`` returns once everything published is durable, and
    raises if any of it is not (the relay then leaves its outbox rows for the next attempt)."""

    def publish(self, topic: str, key: str, record: dict[str, Any]) -> None: ...

    def flush(self) -> None: ...


class FilePublisher:
    """Appends each topic's records to var/topics/TOPIC.jsonl. Records wait in memory until ``flush``, which
    writes each topic's in one append: the relay publishes a batch, then flushes once."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._waiting: dict[str, list[str]] = {}

    def publish(self, topic: str, key: str, record: dict[str, Any]) -> None:
        self.publish_json(topic, key, json_text(record))

    def publish_json(self, topic: str, key: str, record_json: str) -> None:
        """``publish`` of a record already encoded as JSON text (an outbox row's body, as ``json.dumps`` wrote
        it): the same line, with no decode and encode again."""
        line = '{"key": ' + json_text(key) + ', "value": ' + record_json + "}\n"
        with self._lock:
            self._waiting.setdefault(topic, []).append(line)

    def flush(self) -> None:
        with self._lock:
            waiting, self._waiting = self._waiting, {}
            if not waiting:
                return
            self.directory.mkdir(parents=True, exist_ok=True)
            for topic, lines in waiting.items():
                with (self.directory / f"{topic}.jsonl").open("a", encoding="utf-8") as handle:
                    handle.write("".join(lines))


def publish_stored(publisher: Publisher, topic: str, key: str, record_json: str) -> None:
    """Publish a record stored as JSON text (an outbox row's body): passed on as it is to a publisher that writes
    JSON (``publish_json``), decoded for one that encodes it otherwise (Avro on Kafka)."""
    publish_json = getattr(publisher, "publish_json", None)
    if publish_json is not None:
        publish_json(topic, key, record_json)
    else:
        publisher.publish(topic, key, json.loads(record_json))
