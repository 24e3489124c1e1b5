"""The embedded consumer: a batch shares a transaction, but a failing event is rolled back alone."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import select

from pipeline.adapters import tables as t
from pipeline.service import dispatch
from tests.integration.conftest import Pipeline
from tests.support.world import AMELIA, ISLA, attendance


def test_a_handler_failure_dead_letters_that_event_and_the_batch_commits(pipeline: Pipeline,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    good_before, poison, good_after = attendance(AMELIA), attendance(ISLA), attendance(AMELIA)
    real = dispatch.HANDLERS["self-harm-attendance"]

    def sometimes_broken(repo: Any, event: t.Event, record: dict[str, Any], ctx: Any, now: Any) -> None:
        real(repo, event, record, ctx, now)  # writes effects first, so the rollback has something to undo
        if event.event_id == poison["event_id"]:
            raise RuntimeError("simulated bug")

    monkeypatch.setitem(dispatch.HANDLERS, "self-harm-attendance", sometimes_broken)
    for event in (good_before, poison, good_after):
        assert pipeline.post_event(event).status_code == 202
    pipeline.run()

    with pipeline.services.store.read() as session:
        statuses = {e.event_id: e.status for e in session.exec(select(t.Event)).all()}
        assert statuses == {good_before["event_id"]: "processed", poison["event_id"]: "dead_lettered",
                            good_after["event_id"]: "processed"}
        assert session.exec(select(t.Notification).where(t.Notification.event_id == poison["event_id"])).all() == []
        letters = session.exec(select(t.DeadLetter).where(t.DeadLetter.source == "handler")).all()
        assert [letter.reason for letter in letters] == ["handler failed: RuntimeError"]
        assert len(session.exec(select(t.Notification).where(
            t.Notification.event_id == good_after["event_id"])).all()) == 2
