"""A replay into the embedded runtime: `safeguard produce` stores a file in batches of whatever it validated while
it waited for the write lock (bad lines dead-lettered, reported by line number, never stopping the run; a batch
the database refused tried again), and the running consumer takes a backlog in growing batches and sees events
another connection committed at once, not at its next poll."""

from __future__ import annotations

import itertools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func
from sqlalchemy.engine import make_url
from sqlmodel import select

import consumers.intake_consumer as consumer_module
import producers.cli_producer as producer
from consumers.intake_consumer import IntakeConsumer
from pipeline.adapters import tables as t
from pipeline.adapters.store import Store
from pipeline.ports.intake import StoreWriteFailed
from pipeline.service.intake import Intake, Prepared, Submission
from tests.integration.conftest import Pipeline, make_settings
from tests.support.world import AMELIA, OLIVER, attendance

TYPE = "self-harm-attendance"


def counts_at(url: str) -> tuple[int, int]:
    """Events and dead letters stored in the database at ``url`` (a store opened for the question, then closed)."""
    store = Store(url)
    try:
        return counts(store)
    finally:
        store.dispose()


def counts(store: Store) -> tuple[int, int]:
    with store.read() as session:
        return (int(session.exec(select(func.count()).select_from(t.Event)).one()),
                int(session.exec(select(func.count()).select_from(t.DeadLetter)).one()))


def write_lines(path: Path, events: list[dict[str, Any]], bad: dict[int, str]) -> None:
    lines = [json.dumps(event) for event in events]
    for index, line in sorted(bad.items()):
        lines.insert(index, line)
    path.write_text("\n".join(lines) + "\n\n", encoding="utf-8")


def test_produce_stores_what_it_validated_in_bounded_batches_and_reports_bad_lines(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(producer, "CHUNK", 2)
    monkeypatch.setattr(producer, "MAX_BATCH", 5)
    batches: list[int] = []
    store_prepared = Intake.store_prepared

    def recorded(intake: Intake, prepared: list[Prepared]) -> Any:
        batches.append(sum(len(p) for p in prepared))
        return store_prepared(intake, prepared)

    monkeypatch.setattr(Intake, "store_prepared", recorded)
    events = [attendance(AMELIA if n % 2 else OLIVER) for n in range(12)]
    events.append(events[3])  # the same event again: known, answered as accepted
    path = tmp_path / "events.jsonl"
    write_lines(path, events, {4: "{not json", 9: json.dumps({**attendance(AMELIA), "consent": "PERHAPS"})})
    settings = make_settings(tmp_path)

    assert producer.produce_file(settings, TYPE, path) == 1
    out, err = capsys.readouterr()
    assert out.strip().endswith("13 accepted, 2 rejected")
    assert "line 5: line: body is not valid JSON" in err
    assert "line 10: consent: must be one of" in err
    assert "PERHAPS" not in err  # reasons name fields, never values
    assert sum(batches) == 15 and max(batches) <= 5
    assert counts_at(settings.database_url) == (12, 2)


def refuse_stores(monkeypatch: pytest.MonkeyPatch, refused: Callable[[int], bool]) -> None:
    """``Intake.store_prepared`` refuses (``StoreWriteFailed``, as a database that stays locked) each call whose
    number, counted from 0, ``refused`` picks; the others store as usual."""
    store_prepared = Intake.store_prepared
    calls = itertools.count()

    def maybe_refused(intake: Intake, prepared: list[Prepared]) -> Any:
        if refused(next(calls)):
            raise StoreWriteFailed("OperationalError")
        return store_prepared(intake, prepared)

    monkeypatch.setattr(Intake, "store_prepared", maybe_refused)


def test_a_batch_the_database_refused_is_tried_again_and_stored_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(producer, "RETRY_PAUSE_SECONDS", 0)
    refuse_stores(monkeypatch, lambda call: call == 0)  # locked once
    path = tmp_path / "events.jsonl"
    write_lines(path, [attendance(AMELIA) for _ in range(7)], {})
    settings = make_settings(tmp_path)

    assert producer.produce_file(settings, TYPE, path) == 0
    out, err = capsys.readouterr()
    assert out.strip().endswith("7 accepted, 0 rejected")
    assert "the database refused a batch (OperationalError); trying it again" in err
    assert counts_at(settings.database_url) == (7, 0)


def test_a_database_that_keeps_refusing_stops_the_run_with_what_was_stored_and_what_to_do(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(producer, "RETRY_PAUSE_SECONDS", 0)
    monkeypatch.setattr(producer, "CHUNK", 2)
    monkeypatch.setattr(producer, "MAX_BATCH", 3)
    refuse_stores(monkeypatch, lambda call: call > 0)  # every batch after the first
    path = tmp_path / "events.jsonl"
    write_lines(path, [attendance(AMELIA) for _ in range(9)], {})
    settings = make_settings(tmp_path)

    assert producer.produce_file(settings, TYPE, path) == 1
    _, err = capsys.readouterr()
    assert "2 accepted, 0 rejected before the database refused a batch 20 times (OperationalError); the lines " \
           "after line 2 were not stored: send the file again" in err
    assert counts_at(settings.database_url) == (2, 0)


def run_consumer(pipeline: Pipeline, **options: Any) -> tuple[IntakeConsumer, threading.Event, threading.Thread]:
    consumer = IntakeConsumer(pipeline.services.store, pipeline.services.ctx, pipeline.clock)
    stop = threading.Event()
    thread = threading.Thread(target=consumer.run_forever, args=(stop,), kwargs=options, daemon=True)
    thread.start()
    return consumer, stop, thread


def wait_processed(store: Store, count: int, timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with store.read() as session:
            done = session.exec(select(func.count()).select_from(t.Event).where(t.Event.status != "accepted")).one()
        if done >= count:
            return True
        time.sleep(0.05)
    return False


def test_the_running_consumer_sees_events_another_connection_committed_at_once(sqlite_pipeline: Pipeline) -> None:
    """Another store over the same file (its own engine and connections, as `safeguard produce` has) stores an
    event: its commit wakes nothing in this process, and the poll is a minute, so only the commit watch explains
    a prompt result."""
    consumer, stop, thread = run_consumer(sqlite_pipeline, poll_seconds=60, watch_seconds=0.01)
    other = Store(sqlite_pipeline.services.store.url)
    try:
        time.sleep(0.3)  # the consumer has found nothing and waits
        submission = Submission(TYPE, json.dumps(attendance(AMELIA)).encode(), source="cli")
        assert Intake(other).submit_many([submission])[0].status_code == 202
        assert wait_processed(other, 1, timeout=10)
    finally:
        stop.set()
        consumer.wake.set()
        thread.join(timeout=10)
        other.dispose()


def test_a_backlog_is_taken_in_batches_that_grow_to_the_bound_and_shrink_after(
        sqlite_pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(consumer_module, "BATCH", 2)
    monkeypatch.setattr(consumer_module, "BACKLOG_BATCH", 8)
    monkeypatch.setattr(consumer_module, "BATCH_HOLD_SECONDS", 60.0)  # however loaded the machine, never too long
    limits: list[int] = []
    run_once = IntakeConsumer.run_once

    def recorded(consumer: IntakeConsumer, limit: int = 2) -> int:
        limits.append(limit)
        return run_once(consumer, limit)

    monkeypatch.setattr(IntakeConsumer, "run_once", recorded)
    intake = sqlite_pipeline.services.intake
    results = intake.submit_many([Submission(TYPE, json.dumps(attendance(AMELIA)).encode(), source="cli")
                                  for _ in range(25)])
    assert all(result.accepted for result in results)
    consumer, stop, thread = run_consumer(sqlite_pipeline, poll_seconds=0.05)
    try:
        assert wait_processed(sqlite_pipeline.services.store, 25)
        deadline = time.monotonic() + 10
        while len(limits) < 6 and time.monotonic() < deadline:  # the next poll's batch
            time.sleep(0.02)
    finally:
        stop.set()
        consumer.wake.set()
        thread.join(timeout=10)
    # 2 + 4 + 8 + 8 = 22, then 3 of a batch of 8 (not full: back to 2 and wait), then polls of 2.
    assert limits[:6] == [2, 4, 8, 8, 8, 2]


def test_a_producer_killed_between_its_batches_mid_file_keeps_those_batches_and_a_second_run_stores_the_rest_once(
        tmp_path: Path) -> None:
    """SIGKILL `safeguard produce` while the test holds SQLite's write lock after some of its batches committed
    (so it is provably mid-file: it cannot commit another batch): what is stored is whole events, and sending the
    same file again stores the rest, each event once (the stored ones answer as accepted)."""
    total = 12_000  # at least six transactions (``MAX_BATCH`` lines each at most): gaps between them to take
    settings = make_settings(tmp_path)
    store = Store(settings.database_url)
    store.migrate()
    path = tmp_path / "events.jsonl"
    write_lines(path, [attendance(AMELIA if n % 2 else OLIVER) for n in range(total)], {})
    env = {**os.environ, "SAFEGUARD_DATABASE_URL": settings.database_url}
    env.pop("SAFEGUARD_CONFIG", None)
    command = [sys.executable, "-m", "pipeline.entrypoints.cli", "produce", TYPE, str(path)]
    database = make_url(settings.database_url).database
    assert database
    holder = sqlite3.connect(database, timeout=0, isolation_level=None)
    count_events = f"SELECT count(*) FROM {t.Event.__tablename__}"
    try:
        killed = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while holder.execute(count_events).fetchone()[0] == 0:  # the first batch, without taking the lock
            assert killed.poll() is None and time.monotonic() < deadline, "the producer ended before a batch"
            time.sleep(0.005)
        while True:  # the write lock, between two of the producer's batches
            assert killed.poll() is None and time.monotonic() < deadline, "the producer ended before the lock"
            try:
                holder.execute("BEGIN IMMEDIATE")
                break
            except sqlite3.OperationalError:  # the producer is writing a batch
                continue
        stored_before = holder.execute(count_events).fetchone()[0]
        killed.send_signal(signal.SIGKILL)  # the lock is still ours: the producer cannot have committed since
        killed.communicate(timeout=30)
        holder.execute("ROLLBACK")
        assert killed.returncode == -signal.SIGKILL
        assert 0 < stored_before < total
        assert counts(store)[0] == stored_before
        again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert again.returncode == 0, again.stderr
        assert f"{total} accepted, 0 rejected" in again.stdout
        with store.read() as session:
            ids = session.exec(select(t.Event.event_id)).all()
        assert len(ids) == len(set(ids)) == total
        assert counts(store) == (total, 0)
    finally:
        holder.close()
        store.dispose()


def test_a_backlog_batch_that_holds_the_write_lock_too_long_does_not_grow(
        sqlite_pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(consumer_module, "BATCH", 2)
    monkeypatch.setattr(consumer_module, "BACKLOG_BATCH", 8)
    monkeypatch.setattr(consumer_module, "BATCH_HOLD_SECONDS", 0.0)  # every batch takes longer than that
    limits: list[int] = []
    run_once = IntakeConsumer.run_once

    def recorded(consumer: IntakeConsumer, limit: int = 2) -> int:
        limits.append(limit)
        return run_once(consumer, limit)

    monkeypatch.setattr(IntakeConsumer, "run_once", recorded)
    results = sqlite_pipeline.services.intake.submit_many(
        [Submission(TYPE, json.dumps(attendance(AMELIA)).encode(), source="cli") for _ in range(9)])
    assert all(result.accepted for result in results)
    consumer, stop, thread = run_consumer(sqlite_pipeline, poll_seconds=0.05)
    try:
        assert wait_processed(sqlite_pipeline.services.store, 9)
    finally:
        stop.set()
        consumer.wake.set()
        thread.join(timeout=10)
    assert limits[:5] == [2, 2, 2, 2, 2]
