"""The intake's part of the storage port's contract (pipeline/ports/intake.py): the in-memory fake, SQLite and
PostgreSQL store a batch's new events in one transaction, find which of a batch's ids are stored, refuse an id
stored twice as ``EventIdTaken`` with nothing of the transaction kept, and keep dead letters in the same
transaction as the events."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from pipeline.ports.intake import EventIdTaken, IntakeRow, IntakeStore
from pipeline.service.handlers import DEAD_LETTERS
from pipeline.service.intake import Intake, Refused, Submission, keep_dead_letter
from tests.support.store_ports import Backend
from tests.support.world import AMELIA, attendance


def _intake_store(backend: Backend) -> IntakeStore:
    store = backend.memory if backend.memory is not None else backend.sql
    assert store is not None
    return store


def _row(producer: int | None = 7, content: str = "hash-1") -> IntakeRow:
    return IntakeRow(str(uuid.uuid4()), "self-harm-attendance", producer, content, '{"a": 1}')


@pytest.mark.parametrize("dead_letters", [False, True])
def test_a_batch_is_stored_and_found_with_its_status(store_backend: Backend, dead_letters: bool) -> None:
    store = _intake_store(store_backend)
    first, second = _row(), _row(producer=None, content="hash-2")
    with store.intake_transaction(dead_letters=dead_letters) as unit:
        assert unit.stored_events([first.event_id, second.event_id]) == {}
        unit.insert_events([first, second])
    with store.intake_reads() as reads:
        found = reads.stored_events([second.event_id, first.event_id, str(uuid.uuid4()), first.event_id])
    assert found == {first.event_id: IntakeRow(first.event_id, first.event_type, 7, "hash-1", status="accepted"),
                     second.event_id: IntakeRow(second.event_id, second.event_type, None, "hash-2",
                                                status="accepted")}
    with store_backend.units.unit_of_work() as port:
        [stored] = port.events_by_id([first.event_id], lock=False)
        assert (stored.record_json, stored.status, stored.received_at.tzinfo is not None) == ('{"a": 1}', "accepted",
                                                                                              True)


@pytest.mark.parametrize("dead_letters", [False, True])
def test_an_id_stored_twice_is_event_id_taken_and_nothing_of_the_batch_is_kept(store_backend: Backend,
                                                                              dead_letters: bool) -> None:
    store = _intake_store(store_backend)
    taken = _row()
    with store.intake_transaction() as unit:
        unit.insert_events([taken])
    fresh = _row()
    with pytest.raises(EventIdTaken), store.intake_transaction(dead_letters=dead_letters) as unit:
        unit.insert_events([fresh, taken])
    with store.intake_reads() as reads:
        assert set(reads.stored_events([fresh.event_id, taken.event_id])) == {taken.event_id}


def test_dead_letters_are_kept_in_the_intake_transaction_and_undone_with_it(store_backend: Backend) -> None:
    store = _intake_store(store_backend)
    refused = Refused("http", "self-harm-attendance", "arrived_at: not a date", b'{"x": 1}', 7, None)
    row = _row()
    with pytest.raises(RuntimeError), store.intake_transaction() as unit:
        unit.insert_events([row])
        keep_dead_letter(unit.port, refused)
        raise RuntimeError("the caller failed")
    kept = _row()
    with store.intake_transaction() as unit:
        unit.insert_events([kept])
        letter = keep_dead_letter(unit.port, refused)
    with store.intake_reads() as reads:
        assert set(reads.stored_events([row.event_id, kept.event_id])) == {kept.event_id}
    assert [body["dead_letter_id"] for topic, _key, body, _ in store_backend.outbox_rows() if topic == DEAD_LETTERS] \
        == [letter.id]


def test_the_intake_answers_alike_on_every_backend(store_backend: Backend) -> None:
    intake = Intake(_intake_store(store_backend))
    intake.hand_over_records = False
    event = attendance(AMELIA, datetime(2026, 11, 24, 20, tzinfo=UTC))
    body = json.dumps(event).encode()
    answers = intake.submit_many([Submission("self-harm-attendance", body, producer_id=7),
                                  Submission("self-harm-attendance", body, producer_id=7),
                                  Submission("self-harm-attendance", body, producer_id=8),
                                  Submission("self-harm-attendance", b"{}", producer_id=7)])
    assert [a.status_code for a in answers] == [202, 202, 409, 422]
    assert intake.submit(Submission("self-harm-attendance", body, producer_id=7)).body == {
        "event_id": event["event_id"], "status": "accepted"}
