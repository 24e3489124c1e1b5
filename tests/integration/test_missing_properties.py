"""Property: whatever the interleaving, duplication and delay of one child's missing-episode events, the
pipeline ends in the same state, never notifies twice, never escalates a closed deadline, keeps one
return-interview deadline per found episode and at most one pending trigger meeting."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import select

from pipeline.adapters import tables as t
from tests.integration.conftest import Pipeline, start_pipeline
from tests.integration.test_missing_api import REPORTED, found, interview, reported
from tests.support.world import JACOB


def episode_events(index: int, spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    episode = f"EP-{index}"
    start = REPORTED + timedelta(days=3 * index)
    events: list[tuple[str, dict[str, Any]]] = [
        ("missing-reported", reported(JACOB, episode, at=start, grade=spec["grade"]))]
    if spec["regrade"]:
        events.append(("missing-updated", {"event_id": f"00000000-0000-4000-8000-{index:012d}", "episode_id": episode,
                                           "updated_at": (start + timedelta(hours=2)).isoformat(),
                                           "risk_grade": "HIGH", "exploitation_flags": ["CCE"]}))
    if spec["found_after"] is not None:
        found_at = start + timedelta(hours=spec["found_after"])
        events.append(("missing-found", found(episode, found_at)))
        if spec["interview"]:
            events.append(("return-interview-recorded", interview(episode, found_at + timedelta(hours=30))))
    return events


episodes = st.lists(st.fixed_dictionaries({
    "grade": st.sampled_from(["LOW", "MEDIUM", "HIGH"]), "regrade": st.booleans(),
    "found_after": st.none() | st.integers(min_value=1, max_value=40), "interview": st.booleans(),
}), min_size=1, max_size=3)


def replay(pipeline: Pipeline, batches: list[list[tuple[str, dict[str, Any]]]], step_hours: int) -> None:
    for batch in batches:
        for event_type, event in batch:
            assert pipeline.post_event(event, event_type).status_code == 202
        pipeline.clock.advance(hours=step_hours)
        pipeline.run()
        with pipeline.services.store.read() as session:
            open_meetings = session.exec(select(t.Deadline).where(t.Deadline.kind == "trigger_meeting",
                                                                  t.Deadline.state == "open")).all()
            assert len(open_meetings) <= 1
    pipeline.clock.advance(days=12)
    pipeline.run()


def final_state(pipeline: Pipeline) -> dict[str, Any]:
    with pipeline.services.store.read() as session:
        return {row.episode_id: (row.reported_at, row.last_seen_at, row.risk_grade, row.exploitation_flags,
                                 row.found_at, row.returned_to, row.return_interview_outcome)
                for row in session.exec(select(t.MissingEpisode)).all()}


def check_invariants(pipeline: Pipeline) -> None:
    with pipeline.services.store.read() as session:
        deadlines = session.exec(select(t.Deadline)).all()
        notifications = session.exec(select(t.Notification).where(t.Notification.pathway == "missing")).all()
        episodes_found = {e.episode_id for e in session.exec(select(t.MissingEpisode)).all() if e.found_at}
    interviews = Counter(d.subject_id for d in deadlines if d.kind == "return_interview")
    assert set(interviews) == episodes_found and set(interviews.values()) <= {1}
    by_id = {d.id: d for d in deadlines}
    for note in notifications:
        deadline = by_id.get(note.deadline_id or "")
        if deadline is not None and deadline.closed_at is not None and note.kind in ("reminder", "escalation"):
            assert note.created_at <= deadline.closed_at, f"{deadline.kind} escalated after it closed"
    keys = Counter((n.plan_key, n.recipient_role, n.recipient_ref) for n in notifications
                   if n.kind == "alert")
    assert set(keys.values()) <= {1}, [k for k, v in keys.items() if v > 1]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(specs=episodes, data=st.data())
def test_any_order_same_outcome(specs: list[dict[str, Any]], data: st.DataObject,
                                tmp_path_factory: pytest.TempPathFactory) -> None:
    events = [event for index, spec in enumerate(specs) for event in episode_events(index, spec)]
    shuffled = data.draw(st.permutations(events))
    duplicates = data.draw(st.lists(st.sampled_from(events), max_size=3))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(shuffled)), max_size=3)))
    mixed = shuffled + duplicates
    batches = [mixed[a:b] for a, b in zip([0, *cuts], [*cuts, len(mixed)], strict=True)]

    canonical = start_pipeline(Path(tmp_path_factory.mktemp("canonical")))
    replay(canonical, [events], step_hours=1)
    check_invariants(canonical)

    reordered = start_pipeline(Path(tmp_path_factory.mktemp("reordered")))
    replay(reordered, batches, step_hours=data.draw(st.integers(0, 30)))
    check_invariants(reordered)
    assert final_state(reordered) == final_state(canonical)
    for pipeline in (canonical, reordered):
        pipeline.services.store.dispose()
