"""The intake's rules (pipeline/service/intake.py) on the store port's fake: an event is stored once and answered
202 with its status; the same id with other content, or another producer's id, is a 409; a bad body is a 422 whose
payload is kept as a dead letter with its record for the `dead-letters` topic, never echoing a value; a trigger
meeting for a child the pipeline never issued is refused; a batch that fails stores nothing. The SQL store gives the
fake's answers (tests/integration/test_store_contract_intake.py)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from pipeline.adapters.memory_store import MemoryStore
from pipeline.adapters.memory_store_intake import MemoryIntakeUnit
from pipeline.ports.intake import EventIdTaken, IntakeRow
from pipeline.service.handlers import DEAD_LETTERS
from pipeline.service.intake import Intake, Submission
from tests.support.world import AMELIA, attendance

HOSPITAL, OTHER_HOSPITAL = 7, 8


@pytest.fixture
def intake(store: MemoryStore) -> Intake:
    intake = Intake(store)
    intake.hand_over_records = False  # no consumer in this process
    return intake


def _submit(intake: Intake, body: dict[str, Any] | bytes, producer: int | None = HOSPITAL,
            event_type: str = "self-harm-attendance") -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return intake.submit(Submission(event_type, raw, producer_id=producer))


def test_an_event_is_stored_once_and_a_repeat_answered_with_its_status(intake: Intake, store: MemoryStore) -> None:
    event = attendance(AMELIA)
    first = _submit(intake, event)
    assert (first.status_code, first.body) == (202, {"event_id": event["event_id"], "status": "accepted"})
    stored = store.event(event["event_id"])
    assert stored is not None and stored.producer_id == HOSPITAL
    stored.status = "processed"
    events, next_seq = len(store._state.events), store._state.next_seq
    again = _submit(intake, event)
    assert (again.status_code, again.body["status"]) == (202, "processed")
    assert (len(store._state.events), store._state.next_seq) == (events, next_seq)  # nothing stored again


def test_the_same_id_with_other_content_or_from_another_producer_is_a_conflict(intake: Intake) -> None:
    event = attendance(AMELIA)
    assert _submit(intake, event).status_code == 202
    changed = {**event, "attendance_id": "ED-other"}
    assert _submit(intake, changed).status_code == 409
    other = _submit(intake, event, producer=OTHER_HOSPITAL)
    assert other.status_code == 409 and "status" not in other.body  # another producer learns nothing of it


def test_a_bad_body_is_refused_and_kept_as_a_dead_letter_without_echoing_it(intake: Intake, store: MemoryStore) -> None:
    event = {**attendance(AMELIA), "arrived_at": "yesterday"}
    refused = _submit(intake, event)
    assert refused.status_code == 422
    assert "Amelia" not in json.dumps(refused.body) and "yesterday" not in json.dumps(refused.body)
    [letter] = store.dead_letters
    assert (letter.source, letter.event_type, letter.producer_id, letter.event_id) == (
        "http", "self-harm-attendance", HOSPITAL, event["event_id"])
    assert json.loads(letter.payload)["event_id"] == event["event_id"]  # the producer's bytes, kept
    [line] = [line for line in store.outbox_lines if line.topic == DEAD_LETTERS]
    assert line.body["dead_letter_id"] == letter.id and line.body["payload"] == ""
    assert _submit(intake, b"{not json").status_code == 422
    assert _submit(intake, event, event_type="no-such-event").status_code == 404
    assert len(store.dead_letters) == 2  # an unknown type is not a dead letter


def test_a_batch_answers_each_and_stores_the_valid_ones_with_the_dead_letters(intake: Intake,
                                                                            store: MemoryStore) -> None:
    good, bad = attendance(AMELIA), {**attendance(AMELIA), "arrived_at": "yesterday"}
    answers = intake.submit_many([Submission("self-harm-attendance", json.dumps(body).encode(), producer_id=HOSPITAL)
                                  for body in (good, bad, good)])
    assert [a.status_code for a in answers] == [202, 422, 202]  # the repeat within the batch: known from the first
    assert store.event(good["event_id"]) is not None and len(store.dead_letters) == 1


def test_a_trigger_meeting_for_a_child_never_issued_is_refused(intake: Intake, store: MemoryStore) -> None:
    meeting = {"event_id": str(uuid.uuid4()), "child_id": str(uuid.uuid4()), "held_at": "2026-11-24T10:00:00Z",
               "outcome": "PLAN_AGREED"}
    refused = _submit(intake, meeting, event_type="trigger-meeting-recorded")
    assert refused.status_code == 422
    assert refused.body["errors"] == [{"field": "child_id", "message": "not a child id this pipeline issued"}]
    assert store.event(meeting["event_id"]) is None and len(store.dead_letters) == 1
    with store.unit_of_work() as port:
        known = port.child_id("A999100100001")
    assert _submit(intake, {**meeting, "child_id": known}, event_type="trigger-meeting-recorded").status_code == 202


def test_an_intake_transaction_that_fails_stores_nothing_and_a_taken_id_is_event_id_taken(store: MemoryStore) -> None:
    row = IntakeRow("0c6f1d2e-3b4a-4c5d-8e9f-a0b1c2d3e4f5", "self-harm-attendance", HOSPITAL, "hash", "{}")
    with pytest.raises(RuntimeError), store.intake_transaction() as unit:
        unit.insert_events([row])
        raise RuntimeError("the caller failed")
    with store.intake_reads() as reads:
        assert reads.stored_events([row.event_id]) == {}
    with store.intake_transaction(dead_letters=False) as unit:
        unit.insert_events([row])
    with pytest.raises(EventIdTaken), store.intake_transaction() as unit:
        unit.insert_events([row])
    with store.intake_reads() as reads:
        assert reads.stored_events([row.event_id, "unknown"]) == {
            row.event_id: IntakeRow(row.event_id, "self-harm-attendance", HOSPITAL, "hash")}


def test_a_transaction_without_dead_letters_has_no_port_as_sqlites_group_commit_has_none(store: MemoryStore) -> None:
    with store.intake_transaction(dead_letters=False) as unit, pytest.raises(TypeError):
        unit.port  # noqa: B018 - asking is the test


def test_an_id_another_writer_stored_meanwhile_is_answered_alone(intake: Intake, store: MemoryStore,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Between the batch's check and its insert, another writer stored one of its ids: the transaction is undone
    and each submission is answered alone (the one taken with the other writer's status)."""
    taken, mine = attendance(AMELIA), attendance(AMELIA)
    assert _submit(intake, taken).status_code == 202  # "the other writer"
    checks = {"count": 0}
    real = MemoryIntakeUnit.stored_events

    def blind_once(unit: MemoryIntakeUnit, event_ids: Any) -> dict[str, IntakeRow]:
        checks["count"] += 1
        return {} if checks["count"] == 1 else real(unit, event_ids)  # the first check misses the other write

    monkeypatch.setattr(MemoryIntakeUnit, "stored_events", blind_once)
    bad = {**attendance(AMELIA), "arrived_at": "yesterday"}
    answers = intake.submit_many([Submission("self-harm-attendance", json.dumps(body).encode(), producer_id=HOSPITAL)
                                  for body in (mine, taken, bad)])
    assert [(a.status_code, a.body.get("status")) for a in answers] == [(202, "accepted"), (202, "accepted"),
                                                                         (422, None)]
    assert store.event(mine["event_id"]) is not None and len(store.dead_letters) == 1
