"""The demo hospital of ``safeguard run --demo``: it sends attendances of pupils on an in-area roll through the
intake, and the pipeline links each to its pupil."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlmodel import select

from pipeline.adapters import tables as t
from producers.demo_events import DemoHospital
from tests.integration.conftest import start_pipeline

pytestmark = pytest.mark.integration


def test_the_demo_hospital_sends_attendances_the_pipeline_links_to_pupils(tmp_path: Path) -> None:
    pipeline = start_pipeline(tmp_path, web_passwords=False)
    stop = threading.Event()
    try:
        DemoHospital(pipeline.services, stop, every_seconds=0.01).start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with pipeline.services.store.read() as session:
                if len(session.exec(select(t.Event)).all()) >= 3:
                    break
            time.sleep(0.05)
        stop.set()
        time.sleep(0.1)  # an attendance being stored as the loop stopped
        pipeline.run()
        with pipeline.services.store.read() as session:
            events = session.exec(select(t.Event)).all()
        assert len(events) >= 3
        assert {event.event_type for event in events} == {"self-harm-attendance"}
        assert {event.status for event in events} <= {"processed", "withheld"}  # the demo refuses consent at times
        assert {event.match_outcome for event in events} == {"linked"}
    finally:
        stop.set()
        pipeline.services.store.dispose()
