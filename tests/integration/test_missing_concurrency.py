"""Per-child rules hold under concurrency: they are database rules, not check-then-act code.

Two of one child's high-risk episodes are processed at the same moment in two transactions on real
PostgreSQL (on SQLite the store serialises writers, and the same test still holds)."""

from __future__ import annotations

import threading
import traceback
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from pipeline.adapters import tables as t
from pipeline.adapters.repository import Repository
from pipeline.domain.model import LadderStep, PlannedDeadline
from pipeline.service.dispatch import process
from tests.integration.conftest import Pipeline
from tests.integration.test_missing_api import REPORTED, reported
from tests.support.world import JACOB


def test_two_episodes_of_one_child_at_once_raise_one_trigger_meeting(pipeline: Pipeline) -> None:
    pipeline.clock.now = REPORTED
    ids = []
    for episode in ("EP-A", "EP-B"):
        event = reported(JACOB, episode, grade="HIGH")
        assert pipeline.post_event(event, "missing-reported").status_code == 202
        ids.append(event["event_id"])
    store, ctx = pipeline.services.store, pipeline.services.ctx
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}
    tracebacks: list[str] = []  # shown if the assertion fails: a worker thread's error is otherwise lost

    def work(event_id: str) -> None:
        try:
            with store.transaction() as session:
                event = session.exec(select(t.Event).where(t.Event.event_id == event_id)).one()
                barrier.wait(timeout=10)
                process(Repository(session, postgres=store.is_postgres), event, ctx, REPORTED)
            outcomes[event_id] = "committed"
        except Exception as error:  # noqa: BLE001 - recorded and asserted on below
            outcomes[event_id] = type(error).__name__
            tracebacks.append(traceback.format_exc())

    if store.is_postgres:
        threads = [threading.Thread(target=work, args=(event_id,)) for event_id in ids]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    else:  # one writer at a time: the barrier cannot be met inside two write transactions
        barrier = threading.Barrier(1)
        for event_id in ids:
            work(event_id)

    assert outcomes == dict.fromkeys(ids, "committed"), "\n".join(tracebacks)
    with store.read() as session:
        meetings = session.exec(select(t.Deadline).where(t.Deadline.kind == "trigger_meeting")).all()
        episodes = session.exec(select(t.MissingEpisode)).all()
        # Shown if it fails: a second meeting on an unlinked episode (child None) means the two workers' matches
        # differed (the shared match index); two bound to different children, that the person key gave two ids.
        seen = ([(m.subject_id, m.child_id, m.state) for m in meetings], [(e.episode_id, e.child_id) for e in episodes])
        assert len(meetings) == 1 and meetings[0].state == "open", seen
        assert {e.status for e in session.exec(select(t.Event)).all()} == {"processed"}
        assert {e.episode_id for e in episodes} == {"EP-A", "EP-B"}
        assert len({e.child_id for e in episodes}) == 1


def _deadline(kind: str, subject: str, child_id: str) -> t.Deadline:
    now = datetime(2026, 11, 24, tzinfo=UTC)
    planned = PlannedDeadline(kind, "child", now, (LadderStep(now + timedelta(days=1), ("HEAD_OF_SERVICE",),
                                                              "escalation"),))
    return t.Deadline(id=str(uuid.uuid4()), kind=kind, subject_id=subject, child_id=child_id, due_at=planned.due_at,
                      state="open", steps_json="[]", created_at=now)


def test_the_database_refuses_a_second_open_trigger_meeting_and_a_second_interview(pipeline: Pipeline) -> None:
    store = pipeline.services.store
    with store.transaction() as session:
        session.add(_deadline("trigger_meeting", "trigger:EP-1", "child-1"))
        session.add(_deadline("return_interview", "EP-1", "child-1"))
    with pytest.raises(IntegrityError), store.transaction() as session:
        session.add(_deadline("trigger_meeting", "trigger:EP-2", "child-1"))
    with pytest.raises(IntegrityError), store.transaction() as session:
        session.add(_deadline("return_interview", "EP-1", "child-1"))
    with store.transaction() as session:  # once the first is closed, a new one may be raised
        first = session.exec(select(t.Deadline).where(t.Deadline.subject_id == "trigger:EP-1")).one()
        first.state = "closed"
        session.add(first)
    with store.transaction() as session:
        session.add(_deadline("trigger_meeting", "trigger:EP-3", "child-1"))
