"""The embedded consumer's commit watch (``CommitWatch``, SQLite's ``PRAGMA data_version``) failing does not stop
the consumer: events are still processed at the poll, and the thread keeps running (nothing would restart it,
and events would be accepted but never processed)."""

from __future__ import annotations

import json
import sqlite3
import threading
import time

import pytest
from sqlalchemy import func
from sqlmodel import select

from consumers.intake_consumer import IntakeConsumer
from pipeline.adapters import tables as t
from pipeline.adapters.event_queue import CommitWatch
from pipeline.adapters.store import Store
from pipeline.service.intake import Intake, Submission
from tests.integration.conftest import Pipeline
from tests.support.world import AMELIA, OLIVER, attendance

pytestmark = pytest.mark.integration


def processed(store: Store) -> int:
    with store.read() as session:
        return int(session.exec(select(func.count()).select_from(t.Event)
                                .where(t.Event.status != "accepted")).one())


def test_a_failing_commit_watch_leaves_the_consumer_processing_at_its_poll(
        sqlite_pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    looks: list[int] = []

    def unavailable(self: CommitWatch) -> bool:
        looks.append(1)
        raise sqlite3.OperationalError("unable to open database file")

    monkeypatch.setattr(CommitWatch, "changed", unavailable)
    consumer = IntakeConsumer(sqlite_pipeline.services.store, sqlite_pipeline.services.ctx, sqlite_pipeline.clock)
    stop = threading.Event()
    thread = threading.Thread(target=consumer.run_forever, args=(stop,),
                              kwargs={"poll_seconds": 0.05, "watch_seconds": 0.01}, daemon=True)
    thread.start()
    other = Store(sqlite_pipeline.services.store.url)  # another process's store: its commits wake nothing here
    try:
        for child in (AMELIA, OLIVER):
            submission = Submission("self-harm-attendance", json.dumps(attendance(child)).encode(), source="cli")
            assert Intake(other).submit_many([submission])[0].status_code == 202
            deadline = time.monotonic() + 20
            while processed(other) < (1 if child is AMELIA else 2) and time.monotonic() < deadline:
                time.sleep(0.05)
        assert processed(other) == 2
        assert thread.is_alive()
        assert looks  # the watch was tried, and failed every time
    finally:
        stop.set()
        consumer.wake.set()
        thread.join(timeout=10)
        other.dispose()
