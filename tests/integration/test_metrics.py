"""``GET /metrics`` says what waits, read afresh at each scrape: events accepted and not yet processed, events held
after their handler kept failing, and open deadlines already due; the delivery counters ride along."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from tests.integration.conftest import Pipeline
from tests.support.world import AMELIA, OLIVER, attendance

pytestmark = pytest.mark.integration


def waiting(pipeline: Pipeline) -> dict[str, float]:
    text = pipeline.client.get("/metrics").text
    return {what: float(value) for what, value in re.findall(r'^safeguard_work_waiting\{what="(\w+)"\} (\S+)$', text,
                                                           re.MULTILINE)}


def test_the_metrics_say_what_waits(pipeline: Pipeline) -> None:
    for child in (AMELIA, OLIVER):
        assert pipeline.post_event(attendance(child)).status_code == 202
    assert waiting(pipeline) == {"events_waiting": 2.0, "events_held": 0.0, "deadlines_overdue": 0.0}
    pipeline.run()
    assert waiting(pipeline)["events_waiting"] == 0.0
    pipeline.clock.now = datetime(2026, 11, 25, 12, 1, tzinfo=UTC)  # past the DSLs' acknowledgement deadlines
    assert waiting(pipeline)["deadlines_overdue"] >= 1.0
    assert "safeguard_outbox_relay_failures_total" in pipeline.client.get("/metrics").text
