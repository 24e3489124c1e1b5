"""The process's committed child ids (pipeline/adapters/issued_children.py): an id is answered from memory once
its unit of work committed, and an id whose row was rolled back (the whole unit of work or a savepoint) is never
handed out again (on SQLite, where the id is written in the unit of work; on PostgreSQL it is issued and
committed apart, so that two workers never wait for each other's batch over a new child)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from pipeline.adapters import tables as t
from pipeline.adapters.issued_children import IssuedChildIds
from pipeline.adapters.store import Store
from tests.support.store_ports import open_backend, statements_run


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    backend = open_backend("sqlite", tmp_path)
    assert backend.sql is not None
    yield backend.sql
    backend.sql.dispose()


def stored_children(store: Store) -> dict[str, str]:
    with store.read() as session:
        return {row.person_key: row.child_id for row in session.exec(select(t.Child)).all()}


def test_a_committed_child_id_is_answered_without_a_read(store: Store) -> None:
    with store.unit_of_work() as repo:
        issued = repo.child_id("person-1")
    assert store.issued_children.get("person-1") == issued
    with store.unit_of_work() as repo, statements_run(store) as seen:
        assert repo.child_id("person-1") == issued
    assert not [sql for sql in seen if "child" in sql.lower() and "person_key" in sql.lower()]
    assert stored_children(store) == {"person-1": issued}


def test_an_id_read_from_the_store_is_kept_after_commit(store: Store) -> None:
    with store.unit_of_work() as repo:
        issued = repo.child_id("person-2")
    other = Store(store.url)  # another process's store: it learns the id by reading it
    try:
        assert other.issued_children.get("person-2") is None
        with other.unit_of_work() as repo:
            assert repo.child_id("person-2") == issued
        assert other.issued_children.get("person-2") == issued
    finally:
        other.dispose()


def test_a_rolled_back_unit_of_work_leaves_no_id_behind(store: Store) -> None:
    with pytest.raises(RuntimeError), store.unit_of_work() as repo:
        abandoned = repo.child_id("person-3")
        raise RuntimeError("the batch failed")
    assert store.issued_children.get("person-3") is None
    with store.unit_of_work() as repo:
        issued = repo.child_id("person-3")
    assert issued != abandoned
    assert stored_children(store) == {"person-3": issued}


def test_an_id_issued_in_a_rolled_back_savepoint_is_not_kept(store: Store) -> None:
    with store.unit_of_work() as repo:
        with pytest.raises(RuntimeError), repo.savepoint():
            repo.child_id("person-4")
            raise RuntimeError("one event of the batch failed")
        kept = repo.child_id("person-5")
    assert store.issued_children.get("person-4") is None
    assert stored_children(store) == {"person-5": kept}


def test_the_cache_empties_when_full_instead_of_growing() -> None:
    ids = IssuedChildIds(limit=3)
    ids.add_committed({"a": "1", "b": "2"})
    ids.add_committed({"c": "3"})
    assert len(ids) == 3
    ids.add_committed({"d": "4"})
    assert len(ids) == 1 and ids.get("d") == "4" and ids.get("a") is None


@pytest.fixture
def postgres_store(postgres_url: str) -> Iterator[Store]:
    store = Store(postgres_url)
    store.migrate()
    yield store
    store.dispose()


@pytest.mark.parametrize("asked", ["child_id", "child_ids"])
def test_on_postgresql_a_new_childs_id_does_not_wait_for_the_unit_of_work_that_issued_it(
        postgres_store: Store, asked: str) -> None:
    """Two workers' batches meeting the same new person: the second is answered at once with the first's id while
    the first is still open (the id was issued and committed apart), instead of waiting for the first's commit,
    and two such batches meeting two new people in opposite orders cannot deadlock. Whether a batch asks one
    person at a time or all of its people together (the Kafka worker's batches, ``child_ids``)."""
    answers: dict[str, str] = {}

    class Asking:
        def __init__(self, repo: Any) -> None:
            self.repo = repo

        def child_id(self, person_key: str) -> str:
            if asked == "child_ids":
                return str(self.repo.child_ids([person_key])[person_key])
            return str(self.repo.child_id(person_key))

    first_has_issued, second_done = threading.Event(), threading.Event()
    other_worker = Store(postgres_store.url)  # another worker's store: nothing of the first's ids in its memory

    def second_batch() -> None:
        first_has_issued.wait(timeout=10)
        with other_worker.unit_of_work() as unit:
            repo = Asking(unit)
            answers["b: person-2"] = repo.child_id("person-2")
            answers["b: person-1"] = repo.child_id("person-1")  # issued by the open batch a moment ago
        second_done.set()

    other = threading.Thread(target=second_batch)
    other.start()
    with pytest.raises(RuntimeError), postgres_store.unit_of_work() as unit:
        repo = Asking(unit)
        answers["a: person-1"] = repo.child_id("person-1")
        first_has_issued.set()
        assert second_done.wait(timeout=10), "the second batch waited for the first batch's commit"
        answers["a: person-2"] = repo.child_id("person-2")  # the other order: committed by the second batch
        raise RuntimeError("the first batch fails after all")
    other.join(timeout=10)
    other_worker.dispose()
    assert answers["a: person-1"] == answers["b: person-1"] and answers["a: person-2"] == answers["b: person-2"]
    # An id for a person key is no effect of the batch: kept when the batch rolls back, the same on its next try.
    with postgres_store.unit_of_work() as repo:
        assert repo.child_id("person-1") == answers["a: person-1"]
    assert stored_children(postgres_store) == {"person-1": answers["a: person-1"],
                                               "person-2": answers["b: person-2"]}


def test_on_postgresql_a_lost_issuing_connection_fails_one_call_as_sqlalchemy_does_and_the_next_reconnects(
        postgres_store: Store) -> None:
    """The database restarted under the kept connection: the call raises SQLAlchemy's OperationalError (the
    worker's batch goes again, as after any lost connection), and the next call opens a new connection."""
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    with postgres_store.unit_of_work() as repo:
        first = repo.child_id("person-6")
    issuer = postgres_store.issued_children.issuer
    assert issuer is not None
    backend = issuer._kept().connection.dbapi_connection.info.backend_pid  # type: ignore[union-attr]
    with postgres_store.engine.connect() as connection:
        assert connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend}).scalar()
    with pytest.raises(OperationalError) as raised, postgres_store.unit_of_work() as repo:
        repo.child_id("person-7")
    assert "person-7" not in str(raised.value)
    with postgres_store.unit_of_work() as repo:
        again = repo.child_id("person-7")
        assert repo.child_id("person-6") == first
    assert stored_children(postgres_store) == {"person-6": first, "person-7": again}
