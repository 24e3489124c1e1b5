"""The HTTP intake's group commit on SQLite runs its statements on the pooled DBAPI connection itself
(``Store.sqlite_write``): what the Session path guaranteed still holds there. A commit is on disk
(synchronous=FULL on that connection too); an event_id another writer stored between the group's check and its
insert rolls the whole group back and each event is answered alone (202 with its status for the same content,
409 for different content), every event stored once; a group with a dead letter stores both."""

from __future__ import annotations

import json
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
