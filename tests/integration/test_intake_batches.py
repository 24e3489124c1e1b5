"""A batch through the intake (as `safeguard produce` sends one): one transaction, one row per event_id,
the same answers as one event at a time (repeat: its status; different content: 409; invalid: 422), and the
decoded record handed to this process's consumer instead of a second decode."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import func
from sqlmodel import select

from pipeline import codec
from pipeline.adapters import tables as t
from pipeline.service.intake import Submission
from tests.integration.conftest import Pipeline
from tests.support.world import AMELIA, OLIVER, attendance

TYPE = "self-harm-attendance"


def submission(event: dict[str, Any], producer_id: int | None = None) -> Submission:
    return Submission(TYPE, json.dumps(event).encode(), producer_id=producer_id, source="cli")


def test_a_batch_answers_each_event_as_alone_and_stores_each_event_id_once(pipeline: Pipeline) -> None:
    intake = pipeline.services.intake
    stored_before = attendance(OLIVER)
    assert intake.submit(submission(stored_before)).status_code == 202
    first = attendance(AMELIA)
    changed = {**first, "admitted": not first["admitted"]}
    results = intake.submit_many([
        submission(first),
        submission(first),  # the same event again in the same batch: known, same answer
        submission(changed),  # the same event_id with different content: a conflict
        submission(stored_before),  # stored by an earlier transaction, same content: its status
        submission({**stored_before, "consent": "REFUSED"}),  # stored earlier, different content
        Submission(TYPE, b"{not json", source="cli"),
        submission(attendance(AMELIA)),
    ])
    assert [r.status_code for r in results] == [202, 202, 409, 202, 409, 422, 202]
    assert results[1].body == {"event_id": first["event_id"], "status": "accepted"}
    assert results[2].body["errors"][0]["field"] == "event_id"
    with pipeline.services.store.read() as session:
        assert session.exec(select(func.count()).select_from(t.Event)).one() == 3
        assert session.exec(select(func.count()).select_from(t.DeadLetter)).one() == 1
        row = session.exec(select(t.Event).where(t.Event.event_id == first["event_id"])).one()
    assert (row.status, row.producer_id) == ("accepted", None)
    assert row.content_hash == codec.record_hash(TYPE, codec.from_json(TYPE, first))

    pipeline.run()
    with pipeline.services.store.read() as session:
        statuses = set(session.exec(select(t.Event.status)).all())
    assert statuses == {"processed"}


def test_an_event_id_of_another_producer_is_a_conflict_in_a_batch(pipeline: Pipeline) -> None:
    intake = pipeline.services.intake
    event = attendance(AMELIA)
    assert intake.submit(submission(event, producer_id=1)).status_code == 202
    assert [r.status_code for r in intake.submit_many([submission(event, producer_id=2)])] == [409]


def test_the_consumer_of_this_process_takes_the_record_without_decoding_it_again(
        pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    event = attendance(AMELIA)
    assert pipeline.services.intake.submit(submission(event)).status_code == 202
    with pipeline.services.store.read() as session:
        record_json = session.exec(select(t.Event.record_json).where(t.Event.event_id == event["event_id"])).one()

    def no_second_decode(*_: Any) -> dict[str, Any]:
        raise AssertionError("the accepted event was decoded again")

    with monkeypatch.context() as patched:
        patched.setattr(codec, "from_json", no_second_decode)
        record = codec.stored_record(TYPE, record_json)
    assert record == codec.from_json(TYPE, json.loads(record_json))
    assert codec.stored_record(TYPE, record_json) == record  # given out once; then decoded from the row
