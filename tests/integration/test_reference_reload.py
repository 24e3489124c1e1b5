"""A reference reload reaches a running process's in-memory copy before its next batch: `safeguard run` as a real
child process holds schools and team contacts in memory (pipeline/adapters/reference_cache.py); `safeguard load`
in another process changes a school's DSL; the next event's DSL alert goes to the new address, with no restart."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from sqlmodel import select

from pipeline.adapters import tables as t
from pipeline.adapters.store import Store
from pipeline.domain.model import DSL_ROLE
from tests.support.runtime import Runner
from tests.support.world import AMELIA, SCHOOLS, attendance

OLD_DSL, NEW_DSL = "dsl@riverside.sch.example", "new.dsl@riverside.sch.example"


def _dsl_alert_address(store: Store, event_id: str, timeout: float = 20) -> str | None:
    """The contact address of the event's DSL alert, once the running process has stored it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with store.read() as session:
            row = session.exec(select(t.Notification).where(t.Notification.event_id == event_id,
                                                            t.Notification.recipient_role == DSL_ROLE)).first()
        if row is not None:
            return row.contact_email
        time.sleep(0.05)
    raise AssertionError("the running process stored no DSL alert for the event in time")


def test_a_schools_reload_reaches_the_running_process_before_its_next_batch(tmp_path: Path) -> None:
    runner = Runner(tmp_path)
    token, store = runner.prepare()
    try:
        runner.start()
        with httpx.Client(base_url=f"http://127.0.0.1:{runner.port}", timeout=10,
                          headers={"Authorization": f"Bearer {token}"}) as client:
            before = attendance(AMELIA)
            assert client.post("/api/events/self-harm-attendance", json=before).status_code == 202
            # Processed by the running process: its in-memory copy now holds Riverside's DSL as loaded.
            assert _dsl_alert_address(store, str(before["event_id"])) == OLD_DSL

            # `safeguard load` in another process (this one) changes the DSL while `safeguard run` keeps running.
            (tmp_path / "schools.csv").write_text(SCHOOLS.replace(OLD_DSL, NEW_DSL))
            runner.load("schools", tmp_path / "schools.csv")

            after = attendance(AMELIA)
            assert client.post("/api/events/self-harm-attendance", json=after).status_code == 202
            assert _dsl_alert_address(store, str(after["event_id"])) == NEW_DSL
        assert runner.process is not None and runner.process.poll() is None  # the same process, never restarted
        assert runner.terminate() == 0
    finally:
        store.dispose()
        runner.cleanup()
