"""The missing pathway through the HTTP API: report, ladder, found, return interview, trigger meeting."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import select

from pipeline.adapters import tables as t
from tests.integration.conftest import Pipeline
from tests.support.world import AMELIA, JACOB

REPORTED = datetime(2026, 11, 24, 18, 0, tzinfo=UTC)  # a Tuesday evening in term


def reported(child: dict[str, Any], episode: str, at: datetime = REPORTED, grade: str = "MEDIUM",
             flags: list[str] | None = None, last_seen: datetime | None = None) -> dict[str, Any]:
    return {"event_id": str(uuid.uuid4()), "episode_id": episode, "force_code": "NS01", "reported_at": at.isoformat(),
            "last_seen_at": (last_seen or at - timedelta(hours=2)).isoformat(), "child": dict(child),
            "risk_grade": grade, "missing_from": "CARE", "exploitation_flags": flags or []}


def found(episode: str, at: datetime) -> dict[str, Any]:
    return {"event_id": str(uuid.uuid4()), "episode_id": episode, "found_at": at.isoformat(),
            "returned_to": "PLACEMENT", "safe_and_well_at": None}


def interview(episode: str, at: datetime, outcome: str = "COMPLETED", **extra: Any) -> dict[str, Any]:
    return {"event_id": str(uuid.uuid4()), "episode_id": episode, "recorded_at": at.isoformat(), "outcome": outcome,
            "held_at": at.isoformat(), "by_role": "RHI_PROVIDER", "attempts": [], "reason": None, **extra}


def roles(pipeline: Pipeline) -> list[str]:
    with pipeline.services.store.read() as session:
        return sorted(n.recipient_role for n in session.exec(select(t.Notification).where(
            t.Notification.pathway == "missing")).all())


def deadlines(pipeline: Pipeline) -> dict[str, tuple[str, int]]:
    with pipeline.services.store.read() as session:
        return {d.kind: (d.state, d.escalation_level) for d in session.exec(select(t.Deadline)).all()}


def test_high_risk_looked_after_child_from_report_to_return_interview(pipeline: Pipeline) -> None:
    pipeline.clock.now = REPORTED
    assert pipeline.post_event(reported(JACOB, "EP-1", grade="HIGH"), "missing-reported").status_code == 202
    pipeline.run()
    told = set(roles(pipeline))
    assert {"MISSING_COORDINATOR", "worker", "LA_888", "iro", "HEAD_OF_SERVICE", "dsl"} <= told
    assert deadlines(pipeline)["still_missing"] == ("open", 0)
    assert "strategy_discussion" in deadlines(pipeline)
    assert deadlines(pipeline)["trigger_meeting"][0] == "open"

    pipeline.clock.now = REPORTED + timedelta(hours=6)  # high risk: team manager at 6 hours
    pipeline.run()
    assert deadlines(pipeline)["still_missing"] == ("open", 1)
    assert "team_manager" in roles(pipeline)

    pipeline.clock.now = REPORTED + timedelta(hours=8)
    assert pipeline.post_event(found("EP-1", REPORTED + timedelta(hours=7)), "missing-found").status_code == 202
    pipeline.run()
    assert deadlines(pipeline)["still_missing"][0] == "closed"
    pipeline.clock.now = REPORTED + timedelta(hours=30)
    pipeline.run()
    assert deadlines(pipeline)["still_missing"] == ("closed", 1)  # a closed deadline never escalates

    child_id = _child_id(pipeline, "EP-1")
    episodes = pipeline.get(f"/api/children/{child_id}/episodes", "worker").json()
    assert episodes[0]["state"] == "found"
    assert {d["kind"] for d in episodes[0]["deadlines"]} >= {"return_interview", "still_missing"}
    assert pipeline.get(f"/api/children/{child_id}/episodes", "worker_other").status_code == 404
    assert pipeline.get(f"/api/children/{child_id}/episodes", "dsl").status_code == 403

    bad = interview("EP-1", pipeline.clock.now, outcome="NOT_POSSIBLE")
    response = pipeline.post_event(bad, "return-interview-recorded")
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "attempts"
    assert pipeline.post_event(interview("EP-1", pipeline.clock.now), "return-interview-recorded").status_code == 202
    pipeline.run()
    assert deadlines(pipeline)["return_interview"] == ("closed", 0)

    meeting = {"event_id": str(uuid.uuid4()), "child_id": child_id, "held_at": pipeline.clock.now.isoformat(),
               "outcome": "safety plan agreed"}
    assert pipeline.post_event(meeting, "trigger-meeting-recorded").status_code == 202
    pipeline.run()
    assert deadlines(pipeline)["trigger_meeting"][0] == "closed"


def _child_id(pipeline: Pipeline, episode: str) -> str:
    with pipeline.services.store.read() as session:
        row = session.get(t.MissingEpisode, episode)
        assert row is not None and row.child_id is not None
        return row.child_id


def test_found_before_reported_runs_the_interview_clock_from_the_found_time(pipeline: Pipeline) -> None:
    found_at = REPORTED + timedelta(hours=3)
    pipeline.clock.now = found_at + timedelta(hours=1)
    pipeline.post_event(found("EP-2", found_at), "missing-found")
    pipeline.run()
    pipeline.post_event(reported(AMELIA, "EP-2"), "missing-reported")
    pipeline.post_event(reported(AMELIA, "EP-2"), "missing-reported")  # a duplicate with a new event id
    pipeline.run()
    with pipeline.services.store.read() as session:
        rhi = session.exec(select(t.Deadline).where(t.Deadline.kind == "return_interview")).all()
        assert len(rhi) == 1 and rhi[0].due_at == found_at + timedelta(hours=72)
        still = session.exec(select(t.Deadline).where(t.Deadline.kind == "still_missing")).all()
        assert still == []
    told = roles(pipeline)
    assert told.count("MISSING_COORDINATOR") == 2  # reported once, found once, never twice
