"""A reference reload reaches a running faust worker's in-memory copy before its next batch: the worker holds
schools and team contacts in memory (pipeline/adapters/reference_cache.py); `safeguard load schools` in another
process changes a school's DSL; the next record's DSL alert goes to the new address, from the same worker
process, never restarted (the embedded runtime's version: tests/integration/test_reference_reload.py)."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime

from sqlmodel import select

from pipeline.adapters import tables as t
from pipeline.domain.model import DSL_ROLE
from tests.kafka.conftest import CLI, Deployment
from tests.support.world import AMELIA, SCHOOLS, attendance

OLD_DSL, NEW_DSL = "dsl@riverside.sch.example", "new.dsl@riverside.sch.example"


def _dsl_alert_address(deployment: Deployment, event_id: str) -> str | None:
    with deployment.store.read() as session:
        row = session.exec(select(t.Notification).where(t.Notification.event_id == event_id,
                                                        t.Notification.recipient_role == DSL_ROLE)).first()
    return None if row is None else row.contact_email


def test_a_schools_reload_reaches_the_running_worker_before_its_next_batch(deployment: Deployment) -> None:
    worker = deployment.start_worker()
    producer = deployment.producer()
    before = attendance(AMELIA, arrived_at=datetime.now(UTC))
    deployment.send(producer, "self-harm-attendance", before, key=before["attendance_id"].encode())
    producer.flush()
    # Processed by the running worker: its in-memory copy now holds Riverside's DSL as loaded.
    deployment.wait_for(lambda: _dsl_alert_address(deployment, before["event_id"]) is not None)
    assert _dsl_alert_address(deployment, before["event_id"]) == OLD_DSL

    # `safeguard load` in another process changes the DSL while the worker keeps running.
    schools = deployment.tmp / "schools.csv"
    schools.write_text(SCHOOLS.replace(OLD_DSL, NEW_DSL))
    subprocess.run([*CLI, "load", "schools", str(schools)], env=deployment.env, check=True, capture_output=True)

    after = attendance(AMELIA, arrived_at=datetime.now(UTC))
    deployment.send(producer, "self-harm-attendance", after, key=after["attendance_id"].encode())
    producer.flush()
    deployment.wait_for(lambda: _dsl_alert_address(deployment, after["event_id"]) is not None)
    assert _dsl_alert_address(deployment, after["event_id"]) == NEW_DSL
    assert worker.poll() is None  # the same process, never restarted
