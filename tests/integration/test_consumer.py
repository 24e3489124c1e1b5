"""The embedded consumer: a batch shares a transaction, but a failing event is rolled back alone."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlmodel import select

from pipeline.adapters import tables as t
from pipeline.service import dispatch
from tests.integration.conftest import Pipeline
from tests.support.world import AMELIA, ISLA, attendance


def test_a_handler_failure_rolls_back_that_event_alone_and_the_batch_commits(pipeline: Pipeline,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    good_before, poison, good_after = attendance(AMELIA), attendance(ISLA), attendance(AMELIA)
    real = dispatch.HANDLERS["self-harm-attendance"]

    def sometimes_broken(repo: Any, event: t.Event, record: dict[str, Any], ctx: Any, now: Any) -> None:
        real(repo, event, record, ctx, now)  # writes effects first, so the rollback has something to undo
        if event.event_id == poison["event_id"]:
            raise RuntimeError("simulated bug")

    monkeypatch.setitem(dispatch.HANDLERS, "self-harm-attendance", sometimes_broken)
    for event in (good_before, poison, good_after):
        assert pipeline.post_event(event).status_code == 202
    pipeline.run()

    with pipeline.services.store.read() as session:
        statuses = {e.event_id: e.status for e in session.exec(select(t.Event)).all()}
        assert statuses == {good_before["event_id"]: "processed", poison["event_id"]: "accepted",
                            good_after["event_id"]: "processed"}  # kept for another try, never a dead letter
        assert session.exec(select(t.Notification).where(t.Notification.event_id == poison["event_id"])).all() == []
        assert session.exec(select(t.DeadLetter)).all() == []
        assert len(session.exec(select(t.Notification).where(
            t.Notification.event_id == good_after["event_id"])).all()) == 2
        # Audit entries and outbox rows are buffered and written when each event's savepoint is released:
        # the failed event's are discarded with its savepoint, the others' are all there.
        audited = {entry.subject_id for entry in session.exec(select(t.AuditEntry)).all()}
        assert poison["event_id"] not in audited
        assert {good_before["event_id"], good_after["event_id"]} <= audited
        outbox_keys = {row.key for row in session.exec(select(t.Outbox)).all()}
        assert poison["event_id"] not in outbox_keys
        assert {good_before["event_id"], good_after["event_id"]} <= outbox_keys


def test_concurrent_http_submissions_share_commits_and_each_gets_its_own_answer(pipeline: Pipeline) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from pipeline.service.intake import Submission

    intake = pipeline.services.intake
    events = [attendance(AMELIA) for _ in range(60)]
    duplicate = dict(events[0])
    conflict = {**events[1], "admitted": True}
    bodies = [json.dumps(event).encode() for event in events]
    bodies += [json.dumps(duplicate).encode(), json.dumps(conflict).encode(), b"{not json", b'{"event_id": 1}']

    def submit(body: bytes) -> int:
        return intake.submit_grouped(Submission("self-harm-attendance", body)).result(timeout=30).status_code

    with ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(submit, bodies))
    assert codes[2:61] == [202] * 59 and codes[0] == 202
    assert sorted((codes[1], codes[61])) == [202, 409]  # whichever of the two contents was stored first wins
    assert codes[62:] == [422, 422]
    with pipeline.services.store.read() as session:
        stored = session.exec(select(t.Event.event_id)).all()
        assert len(stored) == len(set(stored)) == 60
        assert len(session.exec(select(t.DeadLetter)).all()) == 2


def test_the_intake_wakes_the_running_consumer_from_its_commit(pipeline: Pipeline) -> None:
    """In the embedded runtime an accepted event is processed at once, not at the consumer's next poll: the
    intake's commit itself wakes it, whoever called the intake (here not the HTTP route, and the poll is a
    minute, so only that wake-up can explain a prompt result)."""
    import threading
    import time

    from pipeline.runtimes.embedded import EmbeddedRuntime
    from pipeline.service.intake import Submission

    runtime = EmbeddedRuntime(pipeline.services)
    runtime.consumer.clock = pipeline.clock
    stop = threading.Event()
    consumer = threading.Thread(target=runtime.consumer.run_forever, args=(stop,), kwargs={"poll_seconds": 60},
                                daemon=True)
    consumer.start()
    try:
        time.sleep(0.3)  # the consumer has found nothing and waits
        event = attendance(AMELIA)
        submission = Submission("self-harm-attendance", json.dumps(event).encode(), source="cli")
        assert pipeline.services.intake.submit_many([submission])[0].status_code == 202
        deadline = time.monotonic() + 10
        status = "accepted"
        while status == "accepted" and time.monotonic() < deadline:
            time.sleep(0.05)
            with pipeline.services.store.read() as session:
                status = session.exec(select(t.Event.status).where(t.Event.event_id == event["event_id"])).one()
        assert status == "processed"
    finally:
        stop.set()
        runtime.consumer.wake.set()
        consumer.join(timeout=10)
