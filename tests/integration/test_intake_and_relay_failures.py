"""Failures in shared machinery hurt only their own item: a bad body in a commit group, a caller that went
away, and an output topic that refuses a record."""

from __future__ import annotations

import json
import time
from concurrent.futures import CancelledError
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from pipeline.adapters import tables as t
from pipeline.service.intake import Submission
from pipeline.service.relay import relay
from tests.integration.conftest import Pipeline, start_pipeline
from tests.support.world import AMELIA, attendance

TYPE = "self-harm-attendance"


def body(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode()


def test_a_body_nested_too_deep_is_refused_alone_and_its_group_is_stored(tmp_path: Path) -> None:
    pipeline = start_pipeline(tmp_path)
    intake = pipeline.services.intake
    store = pipeline.services.store
    assert store._write_lock is not None  # SQLite: hold the writer so all three land in one group
    with store._write_lock:
        first = intake.submit_grouped(Submission(TYPE, body(attendance(AMELIA))))
        nested = intake.submit_grouped(Submission(TYPE, b"[" * 30000 + b"]" * 30000))
        last = intake.submit_grouped(Submission(TYPE, body(attendance(AMELIA))))
    assert first.result(timeout=30).status_code == 202
    assert nested.result(timeout=30).status_code == 422
    assert last.result(timeout=30).status_code == 202
    with store.read() as session:
        assert len(session.exec(select(t.Event)).all()) == 2
        assert len(session.exec(select(t.DeadLetter)).all()) == 1
    store.dispose()


def test_a_caller_that_went_away_does_not_stop_the_intake(tmp_path: Path) -> None:
    pipeline = start_pipeline(tmp_path)
    intake = pipeline.services.intake
    store = pipeline.services.store
    assert store._write_lock is not None
    with store._write_lock:
        first = intake.submit_grouped(Submission(TYPE, body(attendance(AMELIA))))
        for _ in range(100):  # wait until the writer holds the first and is blocked on the database
            if intake._waiting.empty():
                break
            time.sleep(0.01)
        gone = intake.submit_grouped(Submission(TYPE, body(attendance(AMELIA))))
        assert gone.cancel()  # e.g. the HTTP request was cancelled at shutdown
        after = intake.submit_grouped(Submission(TYPE, body(attendance(AMELIA))))
    assert first.result(timeout=30).status_code == 202
    assert after.result(timeout=30).status_code == 202  # the writer lived on
    with pytest.raises(CancelledError):
        gone.result(timeout=1)
    store.dispose()


class RefusingPublisher:
    def __init__(self) -> None:
        self.published: list[str] = []

    def publish(self, topic: str, key: str, record: dict[str, Any]) -> None:
        self.published.append(topic)

    def flush(self) -> None:
        raise RuntimeError("the broker refused a record")


def test_a_topic_refusing_a_record_keeps_its_records_and_the_alerts_still_go_out(
        pipeline: Pipeline, caplog: pytest.LogCaptureFixture) -> None:
    """The output topics (Kafka, or the embedded runtime's topic files) failing must not stop an email or a text
    reaching a DSL: the outbox's records are kept and relayed once the topic takes them, and the log says so."""
    pipeline.post_event(attendance(AMELIA))
    from consumers.intake_consumer import IntakeConsumer

    IntakeConsumer(pipeline.services.store, pipeline.services.ctx, pipeline.clock).run_once(100)
    delivery = pipeline.services.delivery
    with caplog.at_level("ERROR", logger="pipeline.service.relay"):
        relay(pipeline.services.store, delivery, RefusingPublisher(), pipeline.clock())
        relay(pipeline.services.store, delivery, RefusingPublisher(), pipeline.clock())  # a pass later: not again
    refused = [r.getMessage() for r in caplog.records if "outbox relay failed" in r.getMessage()]
    assert len(refused) == 1 and "(RuntimeError)" in refused[0] and "deliveries go on" in refused[0], refused
    assert any(channel.sent for channel in delivery.channels.values())  # type: ignore[attr-defined]
    with pipeline.services.store.read() as session:
        assert all(row.relayed_at is None for row in session.exec(select(t.Outbox)).all())
        assert {n.status for n in session.exec(select(t.Notification)).all()} == {"delivered"}

    relay(pipeline.services.store, delivery, pipeline.services.publisher, pipeline.clock())  # the topic is back
    with pipeline.services.store.read() as session:
        assert all(row.relayed_at is not None for row in session.exec(select(t.Outbox)).all())


def test_an_unwritable_topic_file_is_named_in_the_log(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from pipeline.service.relay import relay_pass

    pipeline = start_pipeline(tmp_path)
    pipeline.post_event(attendance(AMELIA))
    from consumers.intake_consumer import IntakeConsumer

    IntakeConsumer(pipeline.services.store, pipeline.services.ctx, pipeline.clock).run_once(100)

    class UnwritableTopics:
        def publish(self, topic: str, key: str, record: dict[str, Any]) -> None:
            raise FileNotFoundError(2, "No such file or directory", f"/nowhere/topics/{topic}.jsonl")

        def flush(self) -> None:
            pass

    with caplog.at_level("ERROR", logger="pipeline.service.relay"):
        worked, _ = relay_pass(pipeline.services.store, pipeline.services.delivery, UnwritableTopics(),  # type: ignore[arg-type]
                               pipeline.clock())
    assert worked > 0, "the deliveries were worked"
    assert any("FileNotFoundError on /nowhere/topics/" in r.getMessage() for r in caplog.records)
    pipeline.services.store.dispose()
