"""The process's in-memory reference data (pipeline/adapters/reference_cache.py) and its version check: the
snapshot answers exactly what the queries answer, the version is read once per unit of work, a snapshot is read
again only when a load changed the version (and then only its changed parts), and loads take turns so the
version can be trusted (PostgreSQL)."""

from __future__ import annotations

import threading
import time
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlmodel import col, select

from pipeline.adapters import tables as t
from pipeline.adapters.match_index import ReferenceIndex
from pipeline.adapters.reference_cache import ReferenceCache, reference_version
from pipeline.adapters.repository import Repository
from pipeline.adapters.store import Store
from pipeline.domain.model import Identity
from pipeline.service.reference import load
from tests.support.store_ports import copy_of_postgres_database, open_backend, statements_run
from tests.support.world import INVOLVEMENTS, PUPILS, SCHOOLS, TEAMS

NOW = datetime.fromisoformat("2026-11-24T20:00:00+00:00")
PEOPLE = [("worker", "sam.worker@northshire.gov.example"), ("worker", "erin.helper@northshire.gov.example"),
          ("team_manager", "cla.manager@northshire.gov.example"), ("team_manager", "eh.manager@northshire.gov.example"),
          ("iro", "iro@northshire.gov.example"), ("worker", "nobody@northshire.gov.example"),
          ("dsl", "dsl@riverside.sch.example"), ("iro", "sam.worker@northshire.gov.example")]
URNS = ["100001", "100002", "100003", "100004", "100005", "999999"]


def _store(tmp_path: Path) -> Store:
    backend = open_backend("sqlite", tmp_path)
    assert backend.sql is not None
    return backend.sql


def _load(store: Store, kind: str, text: str) -> None:
    with store.unit_of_work() as port:
        load(port, kind, text, NOW)


def _answers(repo: Repository) -> tuple[Any, ...]:
    return ([repo.school(urn) for urn in URNS], repo.directory(),
            [repo.team_of_person(role, email) for role, email in PEOPLE])


def test_the_snapshot_answers_what_the_queries_answer_ended_rows_included(tmp_path: Path) -> None:
    store = _store(tmp_path)
    # Quiet Lane ended (gone from the file), a team ended, an involvement ended: none of them current.
    _load(store, "schools", "\n".join(line for line in SCHOOLS.splitlines() if not line.startswith("100005")) + "\n")
    _load(store, "teams", "\n".join(line for line in TEAMS.splitlines() if not line.startswith("LA_888")) + "\n")
    _load(store, "involvements", INVOLVEMENTS.splitlines()[0] + "\n" + INVOLVEMENTS.splitlines()[1] + "\n")
    for _ in range(2):
        with store.transaction() as session:
            queried = _answers(Repository(session))  # no cache: the queries, as a one-off request asks them
            cached = _answers(store.repository(session))
        assert cached == queried
        schools, directory, teams = cached
        assert schools[4] is None and schools[5] is None and schools[0] is not None
        assert "LA_888" not in directory.teams and directory.team("SCIES") is not None
        assert teams == ["CLA_TEAM", None, "CLA_TEAM", None, "CLA_TEAM", None, None, None]
    assert store.reference.reads == 1
    store.dispose()


def test_the_version_is_read_once_per_unit_of_work_and_the_snapshot_once_per_version(tmp_path: Path) -> None:
    store = _store(tmp_path)
    index = ReferenceIndex()
    amelia = Identity(given_name="Amelia", family_name="Hartley", date_of_birth=date(2013, 5, 14))
    with store.unit_of_work() as port:  # the first: the snapshot and the index built
        port.sync_match_index(index)
        port.school("100001")
    for _ in range(3):  # a batch's worth of events in each unit of work
        with statements_run(store) as statements, store.unit_of_work() as port:
            for _event in range(5):
                port.sync_match_index(index)
                port.newest_match_parameters(None)
                port.school("100001")
                port.directory()
                port.team_of_person("worker", "sam.worker@northshire.gov.example")
                assert index.candidates(amelia)
        reads = [s for s in statements if "SELECT" in s.upper()]
        assert len([s for s in reads if "referencechange" in s.lower()]) == 1, reads  # the version check
        assert len([s for s in reads if "matchmodel" in s.lower()]) == 1, reads  # the model's version
        assert not [s for s in reads if any(name in s.lower() for name in ("school", "teamcontact", "involvement"))]
    assert store.reference.reads == 1
    store.dispose()


def test_a_load_moves_the_version_and_only_the_changed_parts_are_read_again(tmp_path: Path) -> None:
    store = _store(tmp_path)
    with store.unit_of_work() as port:
        port.directory()
    first = store.reference.version
    assert first is not None
    with store.transaction() as session:
        first_snapshot = store.reference.snapshot(session.connection(), first)

    _load(store, "teams", TEAMS.replace("scies@northshire", "scies.duty@northshire"))
    with store.unit_of_work() as port:
        assert port.directory().team("SCIES") is not None
        assert port.directory().teams["SCIES"].email == "scies.duty@northshire.gov.example"
    with store.transaction() as session:
        second = store.reference.snapshot(session.connection(), reference_version(session.connection()))
    assert second.version > first and store.reference.reads == 2
    assert second.schools is first_snapshot.schools and second.people is first_snapshot.people  # not read again

    _load(store, "pupils", PUPILS + "Z999100100010,,Zara,Quill,2014-02-02,F,NS1 2AB,100001,,\n")
    with store.transaction() as session:
        third = store.reference.snapshot(session.connection(), reference_version(session.connection()))
    assert third.version > second.version and store.reference.reads == 3
    assert third.directory is second.directory and third.schools is second.schools and third.people is second.people

    _load(store, "teams", TEAMS.replace("scies@northshire", "scies.duty@northshire"))  # the same file: no change
    with store.transaction() as session:
        assert reference_version(session.connection()) == third.version
    store.dispose()


def test_an_older_transactions_version_never_replaces_the_newer_snapshot(tmp_path: Path) -> None:
    store = _store(tmp_path)
    with store.transaction() as session:
        older = reference_version(session.connection())
    _load(store, "teams", TEAMS.replace("scies@northshire", "scies.duty@northshire"))
    cache = ReferenceCache()
    with store.transaction() as session:
        newer = reference_version(session.connection())
        assert cache.snapshot(session.connection(), newer).version == newer
        assert cache.snapshot(session.connection(), older).version == older  # answered, read whole, not kept
    assert cache.version == newer and cache.reads == 2
    store.dispose()


def test_the_match_index_passes_over_changes_it_does_not_hold(tmp_path: Path) -> None:
    store = _store(tmp_path)
    index = ReferenceIndex()
    amelia = Identity(given_name="Amelia", family_name="Hartley", date_of_birth=date(2013, 5, 14))
    with store.unit_of_work() as port:
        port.sync_match_index(index)
    found = [c.record_key for c in index.candidates(amelia)]
    _load(store, "teams", TEAMS.replace("scies@northshire", "scies.duty@northshire"))
    with store.unit_of_work() as port:
        port.sync_match_index(index)
    with store.transaction() as session:
        assert index.seq == reference_version(session.connection())  # applied up to the teams load
    assert [c.record_key for c in index.candidates(amelia)] == found and index.live > 0
    store.dispose()


def test_loads_take_turns_on_postgresql(real_services: dict[str, str], postgres_reference_template: str) -> None:
    """A load waits for one under way to commit, so change-log numbers follow commit order: a process that read
    the newest number has seen every change numbered below it."""
    with copy_of_postgres_database(real_services, postgres_reference_template) as url:
        store = Store(url)
        second_started, second_done = threading.Event(), threading.Event()

        def second_load() -> None:
            second_started.set()
            _load(store, "schools", SCHOOLS.replace("dsl@hilltop", "new.dsl@hilltop"))
            second_done.set()

        try:
            with store.unit_of_work() as port:
                load(port, "teams", TEAMS.replace("scies@northshire", "scies.duty@northshire"), NOW)
                worker = threading.Thread(target=second_load)
                worker.start()
                second_started.wait(5)
                time.sleep(0.5)
                assert not second_done.is_set()  # waiting for this transaction
            worker.join(10)
            assert second_done.is_set()
            with store.read() as session:
                changes = session.exec(select(t.ReferenceChange).order_by(col(t.ReferenceChange.seq))).all()
            kinds = [c.kind for c in changes]
            assert kinds[-2:] == ["teams", "schools"]  # committed first, numbered first
        finally:
            store.dispose()
