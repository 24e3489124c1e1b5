"""The SQL store's economies on the hot path of every event, on SQLite and PostgreSQL: the buffered writes of a
unit of work sent together (on PostgreSQL one round trip, psycopg's pipeline mode), still failing the commit as
an ``IntegrityError`` on a clash and writing nothing then."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from pipeline.adapters import tables as t
from pipeline.adapters.match_index import ReferenceIndex
from pipeline.adapters.store import Store
from pipeline.domain.model import Identity, LadderStep, PlannedDeadline
from tests.support.store_ports import statements_run

NOW = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)


@pytest.fixture
def store(sql_store: Store) -> Store:
    """On SQLite, then PostgreSQL (tests/support/store_ports.py)."""
    return sql_store


def _interview(subject: str) -> PlannedDeadline:
    return PlannedDeadline("return_interview", "event", NOW + timedelta(hours=72),
                           (LadderStep(NOW + timedelta(hours=72), ("HEAD_OF_SERVICE",), "escalation"),))


def _count(store: Store, table: Any) -> int:
    with store.read() as session:
        return int(session.exec(select(func.count()).select_from(table)).one())


def test_one_row_of_each_buffered_kind_commits_together(store: Store) -> None:
    with store.unit_of_work() as port:
        port.audit(NOW, "system", "tested", "subject-1", "one of each")
        port.outbox(NOW, "pathway-notifications", "key-1", {"n": 1})
        deadline = port.add_deadline(_interview("EP-1"), "EP-1", NOW, event_id=None, child_id="child-1")
        assert deadline is not None
    with store.read() as session:
        assert [a.action for a in session.exec(select(t.AuditEntry)).all()] == ["tested"]
        assert [o.key for o in session.exec(select(t.Outbox)).all()] == ["key-1"]
        assert [d.subject_id for d in session.exec(select(t.Deadline)).all()] == ["EP-1"]


def test_a_clash_among_the_buffered_writes_fails_the_commit_and_writes_none_of_them(store: Store) -> None:
    audits = _count(store, t.AuditEntry)
    with pytest.raises(IntegrityError), store.unit_of_work() as port:
        port.audit(NOW, "system", "tested", "subject-1", "written with the clash")
        port.add_deadline(_interview("EP-2"), "EP-2", NOW, event_id=None, child_id="child-2")
        port.add_deadline(_interview("EP-2"), "EP-2", NOW, event_id=None, child_id="child-2")  # same kind, subject
    assert _count(store, t.AuditEntry) == audits
    assert _count(store, t.Deadline) == 0
    with store.unit_of_work() as port:  # the store is usable after it
        port.audit(NOW, "system", "tested", "subject-1", "after the clash")
    assert _count(store, t.AuditEntry) == audits + 1


def test_a_batchs_children_take_one_insert_and_its_pupils_one_read(store: Store) -> None:
    """``child_ids`` of a batch's new people is one statement on PostgreSQL (one each on SQLite, where statements
    cost microseconds), and ``child_facts`` of a pupil read ahead (``read_pupils_ahead``) reads no pupil again."""
    index = ReferenceIndex()
    jacob = Identity(given_name="Jacob", family_name="Merriman", date_of_birth=date(2011, 6, 6))
    keys = ["upn:A999100100001", "upn:B999100100002", "upn:G999100100008"]
    with store.unit_of_work() as port:
        port.sync_match_index(index)
        members = [c for c in index.candidates(jacob) if c.upn == "G999100100008"]
        with statements_run(store) as statements:
            ids = port.child_ids(keys)
        assert len([s for s in statements if "INSERT INTO child" in s]) == (1 if store.is_postgres else 3)
        with statements_run(store) as statements:
            port.read_pupils_ahead(["G999100100008", "A999100100001"])
            port.child_facts(ids["upn:G999100100008"], members, jacob, date(2026, 11, 24))
        assert len([s for s in statements if "FROM pupil" in s]) == 1, statements


def test_a_batchs_episodes_are_locked_in_two_statements(store: Store) -> None:
    """``episodes_for_update`` of a batch's episodes on PostgreSQL: one locked read of the stored ones and one
    insert of the new ones, after which ``episode_for_update`` of each sends nothing; a linked pupil's
    ``facts_for_child`` reads no pupil row read ahead."""
    with store.unit_of_work() as port:
        port.episode_for_update("EP-1")
        child_id = port.child_id("upn:G999100100008")
    with store.unit_of_work() as port, statements_run(store) as statements:
        port.episodes_for_update(["EP-1", "EP-2", "EP-3"])
        locked = len(statements)
        for episode_id in ("EP-3", "EP-1", "EP-2"):
            port.episode_for_update(episode_id)
        port.read_pupils_ahead(["G999100100008"])
        pupils = len(statements)
        assert port.facts_for_child(child_id, date(2026, 11, 24)) is not None
    if store.is_postgres:
        assert locked == 2 and pupils == 3, statements
        assert not any("FROM pupil" in " ".join(s.split()) for s in statements[pupils:]), statements
