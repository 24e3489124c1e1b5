"""The embedded consumer resolves a batch's children and episodes together before handling its events (as the
Kafka worker does): a handful of statements for the whole batch where each event asked one by one, and the same
effects as handling the same events one batch each."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlmodel import select

from consumers.intake_consumer import IntakeConsumer
from pipeline.adapters import tables as t
from tests.integration.conftest import Pipeline, start_pipeline
from tests.integration.test_missing_api import REPORTED, found, reported
from tests.support.store_ports import statements_run
from tests.support.world import AMELIA, ISLA, JACOB, OLIVER, attendance


def _events() -> list[tuple[str, dict[str, Any]]]:
    """Self-harm attendances (one child twice) and missing reports (one high risk), and a found event of an episode
    reported earlier in the same batch."""
    return [("self-harm-attendance", attendance(AMELIA)), ("missing-reported", reported(JACOB, "EP-A", grade="HIGH")),
            ("self-harm-attendance", attendance(ISLA)), ("missing-reported", reported(OLIVER, "EP-B")),
            ("self-harm-attendance", attendance(AMELIA)),
            ("missing-found", found("EP-B", REPORTED + timedelta(hours=3)))]


def _post_all(pipeline: Pipeline) -> None:
    for event_type, event in _events():
        assert pipeline.post_event(event, event_type).status_code == 202


def _effects(pipeline: Pipeline) -> tuple[Counter[tuple[Any, ...]], Counter[tuple[Any, ...]], list[str]]:
    with pipeline.services.store.read() as session:
        notifications = Counter((n.pathway, n.kind, n.recipient_role, n.recipient_ref, n.reason, n.status)
                                for n in session.exec(select(t.Notification)).all())
        deadlines = Counter((d.kind, d.state, d.due_at, d.child_id is None)
                            for d in session.exec(select(t.Deadline)).all())
        statuses = sorted(e.status for e in session.exec(select(t.Event)).all())
    return notifications, deadlines, statuses


def test_a_batch_resolves_its_children_and_episodes_in_a_few_statements(pipeline: Pipeline) -> None:
    _post_all(pipeline)
    store = pipeline.services.store
    pipeline.services.ctx.warm_up(store)  # the match index built (reads every pupil), as at start-up
    with statements_run(store) as statements:
        handled = IntakeConsumer(store, pipeline.services.ctx, pipeline.clock).run_once(64)
    assert handled == len(_events())
    flat = [" ".join(statement.split()) for statement in statements]
    assert len([s for s in flat if s.startswith("INSERT INTO child ")]) == 1, flat
    assert len([s for s in flat if s.startswith("INSERT INTO missingepisode")]) == 1, flat
    assert len([s for s in flat if s.startswith("SELECT") and " FROM pupil " in f"{s} "]) == 1, flat
    assert _effects(pipeline)[2] == ["processed"] * len(_events())


def test_a_batch_has_the_effects_of_its_events_handled_one_by_one(tmp_path: Path) -> None:
    for name in ("together", "one-by-one"):
        (tmp_path / name).mkdir()
    together, one_by_one = start_pipeline(tmp_path / "together"), start_pipeline(tmp_path / "one-by-one")
    for pipeline in (together, one_by_one):
        _post_all(pipeline)
    IntakeConsumer(together.services.store, together.services.ctx, together.clock).run_once(64)
    alone = IntakeConsumer(one_by_one.services.store, one_by_one.services.ctx, one_by_one.clock)
    while alone.run_once(1):
        pass
    assert _effects(together) == _effects(one_by_one)
    notifications, deadlines, _ = _effects(together)
    assert sum(notifications.values()) > 6 and sum(deadlines.values()) > 3
    for pipeline in (together, one_by_one):
        pipeline.services.store.dispose()
