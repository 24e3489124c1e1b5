"""The SQL store's economies on the hot path of every event, on SQLite and PostgreSQL: the buffered writes of a
unit of work sent together (on PostgreSQL one round trip, psycopg's pipeline mode), still failing the commit as
an ``IntegrityError`` on a clash and writing nothing then; a change to a row another writer removed meanwhile failing
it as the ORM's ``StaleDataError``, not lost in silence."""

from __future__ import annotations

import gc
import weakref
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest
from sqlalchemy import delete, func, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm.exc import StaleDataError
from sqlmodel import select

from pipeline.adapters import tables as t
from pipeline.adapters.effect_rows import DEADLINE
from pipeline.adapters.issued_children import IssuedChildIds
from pipeline.adapters.match_index import ReferenceIndex
from pipeline.adapters.repository import Repository
from pipeline.adapters.store import Store
from pipeline.domain.model import DeadlineKind, Identity, LadderStep, PlannedDeadline
from tests.support.store_ports import statements_run

NOW = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)


@pytest.fixture
def store(sql_store: Store) -> Store:
    """On SQLite, then PostgreSQL (tests/support/store_ports.py)."""
    return sql_store


def _trigger_meeting() -> PlannedDeadline:
    return PlannedDeadline(DeadlineKind.TRIGGER_MEETING, "child", NOW + timedelta(days=3), ())


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


def test_a_unit_of_work_leaves_no_reference_cycle_for_the_garbage_collector(store: Store) -> None:
    """A session and its repository are freed when the caller lets them go, not at the next collection: cyclic
    garbage made per event (about 70 objects a unit of work when each session had listeners of its own) made
    the collector's pauses part of the pipeline's latency."""
    gc.collect()
    gc.disable()
    try:
        with store.transaction() as session:  # commits at the end
            port = store.repository(session)
            port.audit(NOW, "system", "tested", "subject-1", "no cycle")
            port.add_deadline(_interview("EP-GC"), "EP-GC", NOW, event_id=None, child_id="child-gc")
            with session.begin_nested():
                port.audit(NOW, "system", "tested", "subject-1", "in a savepoint")
            gone = weakref.ref(session), weakref.ref(port)
        del session, port
        assert [ref() for ref in gone] == [None, None]
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            gc.collect()
            cyclic = [type(o).__name__ for o in gc.garbage]
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
        assert cyclic == []
    finally:
        gc.enable()
    assert _count(store, t.AuditEntry) >= 2


def test_a_repository_let_go_before_its_sessions_commit_still_writes_its_rows(store: Store) -> None:
    """``Repository(session).audit(...)`` then ``session.commit()`` (as the web pages do): the session keeps the
    repository until the commit writes what it buffered."""
    audits = _count(store, t.AuditEntry)
    with store.transaction() as session:  # commits at the end
        Repository(session, postgres=store.is_postgres).audit(NOW, "someone@example.org", "viewed", "subject-1", "")
        gc.collect()
    assert _count(store, t.AuditEntry) == audits + 1


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
    """``child_ids`` of a batch's new people is one insert, and ``child_facts`` of a pupil read ahead
    (``read_pupils_ahead``) reads no pupil again."""
    index = ReferenceIndex()
    jacob = Identity(given_name="Jacob", family_name="Merriman", date_of_birth=date(2011, 6, 6))
    keys = ["upn:A999100100001", "upn:B999100100002", "upn:G999100100008"]
    with store.unit_of_work() as port:
        port.sync_match_index(index)
        members = [c for c in index.candidates(jacob) if c.upn == "G999100100008"]
        with statements_run(store) as statements:
            ids = port.child_ids(keys)
        assert len([s for s in statements if "INSERT INTO child" in s]) == 1, statements
        with statements_run(store) as statements:
            port.read_pupils_ahead(["G999100100008", "A999100100001"])
            port.child_facts(ids["upn:G999100100008"], members, jacob, date(2026, 11, 24))
        assert len([s for s in statements if "FROM pupil" in s]) == 1, statements


def test_a_batchs_children_issued_before_by_another_process_keep_their_ids(store: Store) -> None:
    """``child_ids`` of new people mixed with one issued by another process (not in this process's memory of
    issued ids): the stored id of that one, new ids for the rest, every one stored once."""
    with store.unit_of_work() as port:
        known = port.child_id("upn:A999100100001")
    store.issued_children = IssuedChildIds(issuer=store.issued_children.issuer)  # as another process sees it
    keys = ["upn:A999100100001", "upn:B999100100002", "upn:C999100100003"]
    with store.unit_of_work() as port:
        ids = port.child_ids(keys)
        assert ids["upn:A999100100001"] == known and len(set(ids.values())) == 3
        assert all(port.child_id(key) == child_id for key, child_id in ids.items())
    with store.unit_of_work() as port:
        assert port.child_ids(keys) == ids
        assert all(port.is_known_child(child_id) for child_id in ids.values())
    assert _count(store, t.Child) == 3


def test_a_batchs_episodes_are_locked_in_two_statements_and_only_the_stored_ones_deadlines_read(store: Store) -> None:
    """``episodes_for_update`` of a batch's episodes: one read of the stored ones (locked, on PostgreSQL) and, on
    PostgreSQL, one insert of the new ones (SQLite, holding the write lock, inserts them with the commit's other
    rows), after which ``episode_for_update`` of each sends nothing; a linked pupil's ``facts_for_child`` reads no
    pupil row read ahead; the deadlines of a new episode are known without a read (none), those of a stored one
    read when its event asks, then answered from memory."""
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
        asked = len(statements)
        for episode_id in ("EP-1", "EP-2", "EP-3", "EP-1"):
            assert port.deadlines_of_subjects([episode_id, f"trigger:{episode_id}"]) == []
    expected = 2 if store.is_postgres else 1
    assert locked == expected and pupils == expected + 1, statements
    assert len(statements) == asked + 1 and "FROM deadline" in statements[asked], statements
    assert not any("FROM pupil" in " ".join(s.split()) for s in statements[pupils:]), statements
    with store.read() as session:
        assert sorted(row.episode_id for row in session.exec(select(t.MissingEpisode)).all()) == [
            "EP-1", "EP-2", "EP-3"]


def test_a_linked_pupils_facts_read_no_involvement_the_index_says_is_not_there(store: Store) -> None:
    """``facts_for_child`` of a pupil with the match index synced: no involvement read for a pupil no current
    involvement can be about (by UPN, or without one by family name and date of birth), one for a pupil with one."""
    index = ReferenceIndex()
    with store.unit_of_work() as port:
        isla, jacob = port.child_id("upn:C999100100003"), port.child_id("upn:G999100100008")
    with store.unit_of_work() as port:
        port.sync_match_index(index)
        port.read_pupils_ahead(["C999100100003", "G999100100008"])
        port.directory()  # the reference snapshot (schools, teams: read once per process and version) read first
        with statements_run(store) as statements:
            assert port.facts_for_child(isla, date(2026, 11, 24)) is not None
        assert not any("FROM involvement" in " ".join(s.split()) for s in statements), statements
        with statements_run(store) as statements:
            facts = port.facts_for_child(jacob, date(2026, 11, 24))
        assert facts is not None and [i.team for i in facts.involvements] == ["CLA_TEAM"]
        assert any("FROM involvement" in " ".join(s.split()) for s in statements), statements


def test_a_batchs_children_are_locked_in_one_statement_and_read_in_two_then_two_when_asked(store: Store) -> None:
    """``lock_children`` and ``read_children_ahead`` of a batch's children: on PostgreSQL one locked read (the rows
    locked: another connection cannot take them), then one read each of their last trigger meetings held and pupils'
    involvements, and when first asked, one of their pending trigger meetings and one of their episodes (every
    child's whose meeting is not known to be pending), after which ``lock_child``,
    ``episodes_of_child``, ``last_trigger_meeting_held`` and ``open_trigger_meeting`` send nothing and
    ``facts_for_child`` reads no pupil's involvements again; with the batch's episodes locked too
    (``episodes_for_update``) and their deadlines read (``deadlines_of_subjects``: a stored one's), a trigger meeting
    raised on one of them (``add_deadline(once=True)``, refused or buffered) sends nothing either."""
    upns = ["G999100100008", "A999100100001", "B999100100002"]
    with store.unit_of_work() as port:
        children = [port.child_id(f"upn:{upn}") for upn in upns]
        port.episode_for_update("EP-1").child_id = children[0]
        port.add_trigger_meeting(children[1], NOW, "PLAN_AGREED", "ev-1")
    with store.unit_of_work() as port:
        port.child_ids([f"upn:{upn}" for upn in upns])
        port.read_pupils_ahead(upns)
        port.episodes_for_update(["EP-1", "EP-2"])
        with statements_run(store) as statements:
            port.lock_children(children)
            locked = len(statements)
            port.read_children_ahead(children)
            read = len(statements)
            for child_id in children:
                port.lock_child(child_id)
                port.episodes_of_child(child_id)
                port.last_trigger_meeting_held(child_id)
                assert port.open_trigger_meeting(child_id) is None
                assert port.facts_for_child(child_id, date(2026, 11, 24)) is not None
            assert port.deadlines_of_subjects(["EP-1", "trigger:EP-1", "EP-2", "trigger:EP-2"]) == []
            for subject in ("trigger:EP-1", "trigger:EP-2"):
                made = port.add_deadline(_trigger_meeting(), subject, NOW, event_id="ev-2", child_id=children[0],
                                         once=True)
                assert (made is None) == (subject == "trigger:EP-2")  # the child's first one is pending
        if store.is_postgres:
            with store.engine.connect() as other, pytest.raises(OperationalError):
                other.execute(select(t.Child.child_id).where(t.Child.child_id == children[2])
                              .with_for_update(nowait=True)).all()
    if store.is_postgres:
        assert (locked, read) == (1, 3), statements
    rest = [" ".join(s.split()) for s in statements[read:]]
    assert not any("FOR UPDATE" in s or "FROM triggermeeting" in s or "INTO deadline" in s for s in rest), rest
    assert sum("FROM missingepisode" in s for s in rest) == 1, rest  # the three children's, at the first question
    # The children's pending meetings (one statement, when first asked) and the stored episode's deadlines.
    assert sum("FROM deadline" in s for s in rest) == 2, rest
    assert not any("involvement.upn IS NULL AND involvement.family_key" in s for s in rest), rest


def test_a_child_with_a_pending_meeting_is_left_out_of_the_batchs_read_of_episodes(store: Store) -> None:
    """Once the batch's pending trigger meetings are known, the first ``episodes_of_child`` reads, in one statement,
    the episodes of every child read ahead except those with a meeting pending (the pathway asks for none of theirs);
    asking for one of those afterwards sends one statement more, and answers in full."""
    upns = ["G999100100008", "A999100100001", "B999100100002"]
    with store.unit_of_work() as port:
        children = [port.child_id(f"upn:{upn}") for upn in upns]
        for n, child_id in enumerate(children):
            port.episode_for_update(f"EP-{n}").child_id = child_id
        assert port.add_deadline(_trigger_meeting(), "trigger:EP-0", NOW, event_id="ev-1", child_id=children[0],
                                 once=True) is not None
    with store.unit_of_work() as port:
        port.lock_children(children)
        port.read_children_ahead(children)
        assert port.open_trigger_meeting(children[0]) is not None
        with statements_run(store) as statements:
            assert [e.episode_id for e in port.episodes_of_child(children[1])] == ["EP-1"]
            assert [e.episode_id for e in port.episodes_of_child(children[2])] == ["EP-2"]
            first = sum("FROM missingepisode" in s for s in statements)
            assert [e.episode_id for e in port.episodes_of_child(children[0])] == ["EP-0"]
            assert [e.episode_id for e in port.episodes_of_child(children[1])] == ["EP-1"]
    assert (first, sum("FROM missingepisode" in s for s in statements)) == (1, 2), statements


def _behind_its_back(store: Store, port: Repository, statement: Any) -> None:
    """``statement`` run by another writer while ``port``'s unit of work is open. PostgreSQL: another connection,
    committed (the unit of work read the row without a lock). SQLite has one writer at a time, and the unit of work
    holds the write lock: the statement runs on its own connection, leaving the row as a writer before it would."""
    if store.is_postgres:
        with store.engine.begin() as other:
            assert other.execute(statement).rowcount == 1
    else:
        assert port.session.connection().execute(statement).rowcount == 1


def _stored_deadline(store: Store, subject: str) -> str:
    with store.unit_of_work() as port:
        deadline = port.add_deadline(_interview(subject), subject, NOW, event_id=None, child_id="child-9")
        assert deadline is not None
        return deadline.id


@pytest.mark.parametrize("removed", ["deleted", "re-keyed"])
def test_a_change_to_a_row_another_writer_removed_fails_the_commit_and_writes_nothing(store: Store,
                                                                                      removed: str) -> None:
    deadline_id = _stored_deadline(store, "EP-9")
    audits = _count(store, t.AuditEntry)
    gone = (delete(DEADLINE).where(DEADLINE.c.id == deadline_id) if removed == "deleted" else
            update(DEADLINE).where(DEADLINE.c.id == deadline_id).values(id="someone-elses"))
    with pytest.raises(StaleDataError, match="expected to update 1 row"), store.unit_of_work() as port:
        deadline = port.deadline(deadline_id)
        assert deadline is not None
        deadline.state = "closed"  # written back at the commit (on PostgreSQL inside the pipeline)
        port.audit(NOW, "system", "tested", "subject-1", "written with the lost change")
        _behind_its_back(store, port, gone)
    assert _count(store, t.AuditEntry) == audits  # nothing of the unit of work committed
    if not store.is_postgres:  # the removal rolled back with the unit of work
        expected = [(deadline_id, "open")]
    else:  # the other writer's removal, committed; the lost change not written anywhere
        expected = [] if removed == "deleted" else [("someone-elses", "open")]
    with store.read() as session:
        assert [(d.id, d.state) for d in session.exec(select(t.Deadline)).all()] == expected


def test_a_change_to_a_removed_row_fails_at_a_write_before_a_read_too(store: Store) -> None:
    deadline_id = _stored_deadline(store, "EP-10")
    with pytest.raises(StaleDataError), store.unit_of_work() as port:
        deadline = port.deadline(deadline_id)
        assert deadline is not None
        deadline.state = "closed"
        _behind_its_back(store, port, delete(DEADLINE).where(DEADLINE.c.id == deadline_id))
        port.deadlines_of_subject("EP-10")  # a read of the table writes the unit of work's changes first
    with store.read() as session:
        stored = session.get(t.Deadline, deadline_id)
    if store.is_postgres:
        assert stored is None  # the other writer's delete, committed
    else:
        assert stored is not None and stored.state == "open"  # the delete rolled back with the unit of work



@pytest.mark.parametrize("others_removed", [0, 1])
def test_the_count_of_a_many_row_update_is_the_sum_of_its_rows(store: Store, others_removed: int) -> None:
    """Three deadlines changed alike in one unit of work go in one UPDATE (an executemany; on PostgreSQL one statement
    over the rows as JSON): its count must be the rows of all three (a driver reporting only the last statement's, or
    none, would fail every such write, or none)."""
    ids = [_stored_deadline(store, f"EP-{20 + n}") for n in range(3)]
    audits = _count(store, t.AuditEntry)

    def close_all() -> None:
        with store.unit_of_work() as port:
            deadlines = [port.deadline(deadline_id) for deadline_id in ids]  # all read before any change:
            for deadline in deadlines:  # a read of the table would write the changes made before it
                assert deadline is not None
                deadline.state = "closed"
            port.audit(NOW, "system", "tested", "subject-1", "three closed")
            if others_removed:
                _behind_its_back(store, port, delete(DEADLINE).where(DEADLINE.c.id == ids[1]))

    if not others_removed:
        with statements_run(store) as statements:
            close_all()
        updates = [s for s in statements if s.startswith("UPDATE deadline")]
        assert len(updates) == 1, updates  # on PostgreSQL one statement for all three rows, not one each
        assert ("json_populate_recordset" in updates[0]) == store.is_postgres, updates
        assert _count(store, t.AuditEntry) == audits + 1
        with store.read() as session:
            assert sorted(d.state for d in session.exec(select(t.Deadline)).all()) == ["closed"] * 3
        return
    with pytest.raises(StaleDataError, match="expected to update 3 row"):
        close_all()
    assert _count(store, t.AuditEntry) == audits  # nothing of the unit of work committed
    with store.read() as session:
        assert "closed" not in {d.state for d in session.exec(select(t.Deadline)).all()}


def test_a_batchs_event_look_up_brings_the_version_check_with_it(store: Store) -> None:
    """``batch_events`` finds (and locks) the events as ``events_by_id`` does, and reads the reference and matcher
    versions in the same go (on PostgreSQL one pipeline with the BEGIN): the version check after it runs nothing."""
    with store.unit_of_work() as port:
        port.store_event("self-harm-attendance", "EV-batch-1", "{}", "hash-1", NOW)
    with store.unit_of_work() as port:
        with statements_run(store) as statements:
            found = port.batch_events(["EV-batch-1", "EV-batch-2", "EV-batch-1"])
        assert [event.event_id for event in found] == ["EV-batch-1"]
        assert len(statements) == (2 if store.is_postgres else 1)
        with statements_run(store) as statements:
            version = port.reference_version()
        assert statements == ([] if store.is_postgres else statements)
        assert version == Repository(port.session).reference_version()


def test_a_pooled_connection_used_a_moment_ago_is_not_pinged_and_an_idle_dead_one_is_replaced(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL's pool pings a connection only once it sat idle over ``PING_IDLE_SECONDS``: one checked in a moment
    ago is handed out as it is, and one whose server end went away while it was idle is replaced before use."""
    if not store.is_postgres:
        return  # SQLite has no server to lose
    from pipeline.adapters import store as store_module

    with store.engine.connect() as connection:
        first = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
    with statements_run(store) as statements, store.engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT pg_backend_pid()").scalar() == first  # the same, kept (LIFO)
    assert len(statements) == 1  # no ping before it
    url = store.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as other:  # not from the pool, which would hand out ``first``
        other.execute("SELECT pg_terminate_backend(%s)", (first,))
    monkeypatch.setattr(store_module, "PING_IDLE_SECONDS", 0.0)  # every pooled connection counts as idle
    with store.engine.connect() as connection:
        again = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
    assert again != first


def test_a_savepoint_rolled_back_keeps_the_rows_another_repository_of_the_session_buffered_before_it(
        store: Store) -> None:
    """Two repositories over one session: a savepoint taken through one and rolled back drops only what was
    buffered inside it, not the other repository's rows buffered before it began."""
    audits = _count(store, t.AuditEntry)
    with store.transaction() as session:  # commits at the end
        first, second = store.repository(session), store.repository(session)
        first.audit(NOW, "system", "tested", "subject-1", "before the savepoint, first repository")
        with pytest.raises(RuntimeError), second.savepoint():
            second.audit(NOW, "system", "tested", "subject-1", "inside the savepoint")
            raise RuntimeError("rolled back")
    with store.read() as session:
        reasons = [a.reason for a in session.exec(select(t.AuditEntry)).all()]
    assert _count(store, t.AuditEntry) == audits + 1
    assert "before the savepoint, first repository" in reasons and "inside the savepoint" not in reasons


def test_a_meeting_held_while_a_batch_waits_for_its_childs_lock_is_read_as_held(store: Store) -> None:
    """A trigger meeting raised on an episode is closed by whoever holds its child's lock (the meeting held), not the
    episode's: the batch's deadlines read ahead are read once its children are locked, so a meeting held between
    its episodes' lock and its children's is seen closed, and the next episode of the child raises its own."""
    with store.unit_of_work() as port:
        child = port.child_id("upn:A999100100001")
        port.episode_for_update("EP-1").child_id = child
        port.episode_for_update("EP-2").child_id = child
        raised = port.add_deadline(_trigger_meeting(), "trigger:EP-1", NOW, event_id="ev-1", child_id=child, once=True)
        assert raised is not None
        raised_id = raised.id
    with store.unit_of_work() as port:
        port.episodes_for_update(["EP-1", "EP-2"])
        _behind_its_back(store, port, update(DEADLINE).where(DEADLINE.c.id == raised_id).values(state="closed"))
        port.lock_children([child])
        port.read_children_ahead([child])
        assert port.open_trigger_meeting(child) is None
        assert [d.state for d in port.deadlines_of_subjects(["trigger:EP-1"])] == ["closed"]
        made = port.add_deadline(_trigger_meeting(), "trigger:EP-2", NOW, event_id="ev-2", child_id=child, once=True)
        assert made is not None


def test_a_meeting_another_writer_raises_after_the_read_ahead_fails_the_batch_not_the_rule(postgres_url: str) -> None:
    """On PostgreSQL a writer that takes no child lock (the sweep raising a trigger meeting) may store the child's
    pending meeting after the batch read its children ahead: the batch's own then clashes with it at the write, the
    unique index refuses it and the unit of work fails (the consumers then take the batch one event at a time,
    without the read-ahead, where the guarded insert leaves the other's standing). SQLite has one writer at a time."""
    store = Store(postgres_url)
    store.migrate()
    with store.unit_of_work() as port:
        child = port.child_id("upn:A999100100001")
        port.episode_for_update("EP-1").child_id = child
    with pytest.raises(IntegrityError, match="uq_deadline_open_trigger_meeting"), store.unit_of_work() as port:
        port.episodes_for_update(["EP-1"])
        port.lock_children([child])
        port.read_children_ahead([child])
        assert port.open_trigger_meeting(child) is None
        assert port.deadlines_of_subjects(["EP-1", "trigger:EP-1"]) == []  # as the handler reads them first
        with store.unit_of_work() as sweep:  # another connection, committed
            assert sweep.add_deadline(_trigger_meeting(), "trigger:EP-0", NOW, event_id=None, child_id=child,
                                      once=True) is not None
        assert port.add_deadline(_trigger_meeting(), "trigger:EP-1", NOW, event_id="ev-1", child_id=child,
                                 once=True) is not None
    with store.unit_of_work() as port:  # one event at a time, as the consumers then go: the guarded insert
        assert port.add_deadline(_trigger_meeting(), "trigger:EP-1", NOW, event_id="ev-1", child_id=child,
                                 once=True) is None
        pending = port.open_trigger_meeting(child)
        assert pending is not None and pending.subject_id == "trigger:EP-0"
    store.dispose()
