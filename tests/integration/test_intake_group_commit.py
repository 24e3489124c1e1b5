"""The HTTP intake's group commit on SQLite runs its statements on the pooled DBAPI connection itself
(``Store.sqlite_write``): what the Session path guaranteed still holds there. A commit is on disk
(synchronous=FULL on that connection too); an event_id another writer stored between the group's check and its
insert rolls the whole group back and each event is answered alone (202 with its status for the same content,
409 for different content), every event stored once; a group with a dead letter stores both."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from pipeline.adapters import intake_rows
from pipeline.adapters import tables as t
from pipeline.service.intake import Submission
from tests.integration.conftest import start_pipeline
from tests.support.world import AMELIA, attendance

TYPE = "self-harm-attendance"


def body(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode()


def test_the_group_commit_connection_writes_through_to_disk(tmp_path: Path) -> None:
    store = start_pipeline(tmp_path).services.store
    with store.sqlite_write() as cursor:
        assert cursor.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert cursor.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.dispose()


def test_the_group_commit_cursor_is_closed_however_the_block_ends(tmp_path: Path) -> None:
    store = start_pipeline(tmp_path).services.store
    with store.sqlite_write() as committed:
        committed.execute("SELECT 1")
    with pytest.raises(RuntimeError), store.sqlite_write() as rolled_back:
        raise RuntimeError("the group failed")
    with pytest.raises(sqlite3.IntegrityError), store.sqlite_write() as failed:  # the statement itself fails
        failed.execute("INSERT INTO child (child_id, person_key, created_at) VALUES (NULL, NULL, NULL)")
    for cursor in (committed, rolled_back, failed):
        with pytest.raises(sqlite3.ProgrammingError, match="closed cursor"):
            cursor.execute("SELECT 1")
    with store.sqlite_write() as cursor:  # and the store writes on
        assert cursor.execute("SELECT 1").fetchone() == (1,)
    store.dispose()


def test_an_event_id_stored_by_another_writer_mid_group_rolls_the_group_back_and_answers_each_alone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pipeline = start_pipeline(tmp_path)
    intake, store = pipeline.services.intake, pipeline.services.store
    taken, changed = attendance(AMELIA), attendance(AMELIA)
    assert intake.submit(Submission(TYPE, body(taken))).status_code == 202
    assert intake.submit(Submission(TYPE, body(changed))).status_code == 202
    changed_again = {**changed, "risk_summary": "Different content under the same event_id."}

    # The group's check sees none of them stored: as if another writer stored them right after the check.
    looked_up = intake_rows.SqliteIntakeUnit.stored_events
    calls = {"n": 0}

    def blind_first_check(self: intake_rows.SqliteIntakeUnit, event_ids: Any) -> dict[str, Any]:
        calls["n"] += 1
        return {} if calls["n"] == 1 else looked_up(self, event_ids)

    monkeypatch.setattr(intake_rows.SqliteIntakeUnit, "stored_events", blind_first_check)
    fresh = attendance(AMELIA)
    results = intake.submit_many([Submission(TYPE, body(fresh)), Submission(TYPE, body(taken)),
                                  Submission(TYPE, body(changed_again))])
    assert [r.status_code for r in results] == [202, 202, 409]
    assert results[0].body == {"event_id": fresh["event_id"], "status": "accepted"}
    assert results[1].body["event_id"] == taken["event_id"]
    with store.read() as session:
        stored = [row.event_id for row in session.exec(select(t.Event)).all()]
    assert sorted(stored) == sorted([taken["event_id"], changed["event_id"], fresh["event_id"]])  # each once
    store.dispose()


def test_a_group_with_a_dead_letter_stores_the_event_and_the_letter(tmp_path: Path) -> None:
    pipeline = start_pipeline(tmp_path)
    intake, store = pipeline.services.intake, pipeline.services.store
    event = attendance(AMELIA)
    good, bad = intake.submit_many([Submission(TYPE, body(event)), Submission(TYPE, b"{not json")])
    assert (good.status_code, bad.status_code) == (202, 422)
    with store.read() as session:
        assert [row.event_id for row in session.exec(select(t.Event)).all()] == [event["event_id"]]
        assert len(session.exec(select(t.DeadLetter)).all()) == 1
    store.dispose()


def test_threads_that_come_and_go_hold_no_pool_connection_of_their_own(tmp_path: Path) -> None:
    """Every thread that submits (a web worker recording a return interview, retired after it idles) shares the
    store's one kept writer: forty of them, more than the pool holds, leave at most that one checked out, and a
    unit of work after them still gets a connection at once."""
    pipeline = start_pipeline(tmp_path)
    intake, store = pipeline.services.intake, pipeline.services.store
    answers: list[int] = []
    for _ in range(40):
        worker = threading.Thread(
            target=lambda: answers.append(intake.submit(Submission(TYPE, body(attendance(AMELIA)))).status_code))
        worker.start()
        worker.join(timeout=60)
        assert store.engine.pool.checkedout() <= 1, "a finished thread still holds a pool connection"  # type: ignore[attr-defined]
    assert answers == [202] * 40
    with store.unit_of_work():
        pass
    with store.read() as session:
        assert len(session.exec(select(t.Event)).all()) == 40
    store.dispose()
