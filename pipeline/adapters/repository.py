"""The storage port's SQL adapter (SQLite and PostgreSQL): reads reference facts for the rules and writes
their effects.

One ``Repository`` wraps one transaction (a SQLModel ``Session``) and implements ``pipeline.ports.StorePort``
(the in-memory fake, pipeline/adapters/memory_store.py, implements the same port; the contract suite holds them
to the same answers). Handlers and the sweep talk only to the port; the rules never see it. The rows it returns
are the tables' ORM rows, which satisfy the record Protocols of pipeline/ports/records.py as they are.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import psycopg
from sqlalchemy import Row, Table, and_, bindparam, event, func, or_
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, col, select

from pipeline.adapters import event_queue
from pipeline.adapters import tables as t
from pipeline.adapters.accounts import AccountQueries
from pipeline.adapters.deliveries import DeliveryQueries, team_of_person
from pipeline.adapters.driver_statements import DriverStatement, plain_rows, rows_by_keys
from pipeline.adapters.effect_rows import (
    DEADLINE,
    EPISODE,
    NOTIFICATION,
    CreatedRows,
    DeadlineRow,
    NotificationRow,
)
from pipeline.adapters.event_queue import EventRow, EventRows
from pipeline.adapters.issued_children import IssuedChildIds
from pipeline.adapters.record_ids import new_child_id, new_id
from pipeline.adapters.reference_cache import ReferenceCache, ReferenceSnapshot, school_of_row
from pipeline.adapters.reference_store import ReferenceDataQueries
from pipeline.adapters.repository_missing import EpisodeQueries
from pipeline.domain.delivery import DeliveryState
from pipeline.domain.fellegi_sunter import Parameters
from pipeline.domain.matching import exact_identity
from pipeline.domain.missing import episode_of_subject
from pipeline.domain.model import (
    Candidate,
    ChildFacts,
    Contact,
    DeadlineKind,
    DeadlineState,
    Directory,
    Enrolment,
    Identity,
    Involvement,
    PlannedDeadline,
    PlannedNotification,
    School,
    ladder_json,
    latest_enrolment_first,
    roll_on,
)
from pipeline.json_text import text_encoder
from pipeline.ports.records import SYSTEM  # noqa: F401 - re-exported: older callers import it from here

if TYPE_CHECKING:
    from pipeline.adapters.match_index import ReferenceIndex
    from pipeline.ports import StorePort

SCHOOL: Table = t.School.__table__  # type: ignore[attr-defined]
TEAM_CONTACT: Table = t.TeamContact.__table__  # type: ignore[attr-defined]
PUPIL: Table = t.Pupil.__table__  # type: ignore[attr-defined]
INVOLVEMENT: Table = t.Involvement.__table__  # type: ignore[attr-defined]
EHE: Table = t.EheRecord.__table__  # type: ignore[attr-defined]
CHILD: Table = t.Child.__table__  # type: ignore[attr-defined]
MODEL: Table = t.MatchModel.__table__  # type: ignore[attr-defined]
CHANGE: Table = t.ReferenceChange.__table__  # type: ignore[attr-defined]
# Inline: no generated key read back (nothing reads them), so they can go in a pipeline (``pipelined``).
AUDIT_INSERT = DriverStatement(t.AuditEntry.__table__.insert().inline())  # type: ignore[attr-defined]
OUTBOX_INSERT = DriverStatement(t.Outbox.__table__.insert().inline())  # type: ignore[attr-defined]
DELIVERY_INSERT = DriverStatement(t.Delivery.__table__.insert().inline())  # type: ignore[attr-defined]
# A new delivery row's columns the caller does not give, at the table class's defaults.
NEW_DELIVERY = {"position": 0, "attempts": 0, "ambiguous_resends": 0, "provider": None, "provider_ref": None,
                "last_outcome": None, "last_error": None, "last_attempt_at": None}


# ``json.dumps(value, default=str)``: values JSON has no type for, such as dates, as their text.
_encode_loosely = text_encoder(default=str)


def unknown_children(session: Session, child_ids: Sequence[str]) -> set[str]:
    """Those of ``child_ids`` the pipeline never issued."""
    known = session.exec(select(t.Child.child_id).where(col(t.Child.child_id).in_(child_ids))).all()
    return set(child_ids) - set(known)


def latest_model_version(connection: Any) -> str | None:
    """The newest stored matcher parameters' version (``connection``: a SQLAlchemy Connection)."""
    row = connection.execute(sa_select(MODEL.c.version).order_by(MODEL.c.created_at.desc()).limit(1)).first()
    return str(row.version) if row else None


# The version check of a unit of work in one round trip: the reference change log's newest sequence number and
# the newest stored matcher parameters' version.
_VERSIONS = DriverStatement(sa_select(
    sa_select(func.max(CHANGE.c.seq)).scalar_subquery().label("reference"),
    sa_select(MODEL.c.version).order_by(MODEL.c.created_at.desc()).limit(1).scalar_subquery().label("model")))
_BY_ID_DRIVER = DriverStatement(event_queue.BY_ID[(True, True)])  # PostgreSQL's, locking (batch_events)


def load_parameters(connection: Any, version: str) -> Parameters | None:
    row = connection.execute(sa_select(MODEL.c.parameters_json).where(MODEL.c.version == version)).first()
    return Parameters.from_json(row.parameters_json) if row else None


def _pupil_identity(row: Any) -> Identity:
    return Identity(given_name=row.given_name, family_name=row.family_name, date_of_birth=row.date_of_birth,
                    sex=getattr(row, "sex", None), nhs_number=row.nhs_number,
                    postcode=getattr(row, "postcode", None))


# The per-event reads and the guarded insert, built once (building a statement cost as much as running it).
def _involvements_of(by_upn: bool, by_nhs: bool) -> Any:
    clauses = [INVOLVEMENT.c.row_key.in_(bindparam("keys", expanding=True))]
    if by_upn:
        clauses.append(INVOLVEMENT.c.upn.in_(bindparam("upns", expanding=True)))
    if by_nhs:
        clauses.append(INVOLVEMENT.c.nhs_number.in_(bindparam("nhs", expanding=True)))
    return sa_select(INVOLVEMENT).where(INVOLVEMENT.c.ended_at.is_(None), or_(*clauses)).order_by(INVOLVEMENT.c.row_key)


_PUPILS_BY_UPN = sa_select(PUPIL).where(PUPIL.c.upn.in_(bindparam("upns", expanding=True)),
                                        PUPIL.c.ended_at.is_(None)).order_by(PUPIL.c.upn)
# One UPN (a linked pupil, nearly every event): no expanding parameter, so it runs on the driver's cursor.
# The per-event statements below are DriverStatements (pipeline/adapters/driver_statements.py).
_CURRENT_PUPILS_OF_UPN = DriverStatement(sa_select(PUPIL).where(PUPIL.c.upn == bindparam("upn"),
                                                           PUPIL.c.ended_at.is_(None)))
_INVOLVEMENTS_OF = {(by_upn, by_nhs): _involvements_of(by_upn, by_nhs)
                    for by_upn in (False, True) for by_nhs in (False, True)}
_HOME_EDUCATED = sa_select(EHE.c.row_key).where(EHE.c.nhs_number.in_(bindparam("nhs", expanding=True)),
                                                EHE.c.ended_at.is_(None)).limit(1)
_PERSON_OF_CHILD = DriverStatement(sa_select(CHILD.c.person_key).where(CHILD.c.child_id == bindparam("child_id")))
_PUPILS_OF_UPN = DriverStatement(sa_select(PUPIL).where(PUPIL.c.upn == bindparam("upn")))
_INVOLVEMENTS_OF_PUPIL = DriverStatement(sa_select(INVOLVEMENT).where(INVOLVEMENT.c.ended_at.is_(None), or_(
    INVOLVEMENT.c.upn == bindparam("upn"),
    and_(INVOLVEMENT.c.upn.is_(None), INVOLVEMENT.c.family_key == bindparam("family_key"),
         INVOLVEMENT.c.date_of_birth == bindparam("date_of_birth")))).order_by(INVOLVEMENT.c.row_key))
_INVOLVEMENTS_BY_NHS = DriverStatement(sa_select(INVOLVEMENT).where(INVOLVEMENT.c.nhs_number == bindparam("nhs"))
                                       .order_by(INVOLVEMENT.c.row_key))
_INVOLVEMENT_BY_KEY = DriverStatement(sa_select(INVOLVEMENT).where(INVOLVEMENT.c.row_key == bindparam("key")))
_EHE_BY_NHS = DriverStatement(sa_select(EHE).where(EHE.c.nhs_number == bindparam("nhs")).order_by(EHE.c.row_key))
_EHE_BY_KEY = DriverStatement(sa_select(EHE).where(EHE.c.row_key == bindparam("key")))
_CHILD_OF_PERSON = DriverStatement(sa_select(CHILD.c.child_id).where(CHILD.c.person_key == bindparam("person_key")))
# A batch's new children on SQLite (``Repository._insert_children``): inserted together, then, if some were issued
# before, all of their ids read in one statement.
_CHILD_INSERT_IF_NEW = DriverStatement(sqlite_insert(CHILD).on_conflict_do_nothing())
_CHILDREN_OF_PEOPLE = sa_select(CHILD.c.child_id, CHILD.c.person_key).where(
    CHILD.c.person_key.in_(bindparam("person_keys", expanding=True)))
_LOCK_CHILD = DriverStatement(sa_select(CHILD.c.child_id).where(CHILD.c.child_id == bindparam("child_id"))
                              .with_for_update())
_LOCK_CHILDREN = sa_select(CHILD.c.child_id).where(CHILD.c.child_id.in_(bindparam("child_ids", expanding=True))) \
    .order_by(CHILD.c.child_id).with_for_update()
# The involvements ``facts_for_child`` gives several pupils (``_INVOLVEMENTS_OF_PUPIL`` of each), read together: those
# with one of the UPNs, and those without a UPN in one of the family keys (sorted out by date of birth after).
_INVOLVEMENTS_OF_PUPILS = sa_select(INVOLVEMENT).where(INVOLVEMENT.c.ended_at.is_(None), or_(
    INVOLVEMENT.c.upn.in_(bindparam("upns", expanding=True)),
    and_(INVOLVEMENT.c.upn.is_(None), INVOLVEMENT.c.family_key.in_(bindparam("family_keys", expanding=True))))) \
    .order_by(INVOLVEMENT.c.row_key)


# A batch's new children in one statement (PostgreSQL): the ids issued (RETURNING), then the ids another
# transaction issued for the rest in one read.


@functools.cache
def _column_keys(table: Table) -> tuple[str, ...]:
    return tuple(column.key for column in table.columns)


@functools.cache
def _guarded_insert(table: Table, postgres: bool) -> DriverStatement:
    """``INSERT ... ON CONFLICT DO NOTHING RETURNING <primary key>`` into ``table``, per dialect."""
    return DriverStatement((pg_insert if postgres else sqlite_insert)(table).on_conflict_do_nothing()
                           .returning(*table.primary_key.columns))


_UNREAD: Any = object()  # a version not read yet in this unit of work


def _sent(connection: Connection, driver: Any, sql: str, parameters: Any) -> Any:
    """``sql`` executed on a new cursor of ``driver`` (``connection``'s DBAPI connection, in a psycopg pipeline: sent
    with the pipeline, its rows there once the pipeline has synced), the engine's cursor listeners told as for any
    statement; the cursor."""
    for listener in connection.dispatch.before_cursor_execute:
        sql, parameters = listener(connection, None, sql, parameters, None, False)
    cursor = driver.cursor()
    cursor.execute(sql, parameters)
    return cursor


@contextmanager
def pipelined(connection: Connection, postgres: bool) -> Iterator[None]:
    """Statements executed inside are sent to PostgreSQL together (psycopg's pipeline mode) and their results
    taken at the end, in one round trip: only for statements whose results nobody reads (inserts and updates
    without RETURNING). A failure among them raises at the end, as SQLAlchemy's exception for it (an
    ``IntegrityError`` for a unique violation), and the transaction is then aborted as after any failed
    statement. Elsewhere (SQLite) a plain block."""
    driver = connection.connection.driver_connection if postgres else None
    if driver is None or not hasattr(driver, "pipeline"):
        yield
        return
    try:
        with driver.pipeline():
            yield
    except psycopg.Error as error:
        raise DBAPIError.instance(None, None, error, psycopg.Error) from error


# ``session.info`` key: the repositories made over a session, in the order made.
_REPOSITORIES = "pipeline.repositories"


def _repositories(session: OrmSession) -> list[Repository]:
    # ``info`` is made on first use: a session no repository was made over has none.
    return session.info.get(_REPOSITORIES, []) if "info" in session.__dict__ else []


# The repositories' session events, listened to once for every session rather than per session: the five listeners
# added to each session cost about 100 us a session and made dispatch objects of their own, which with the
# repository's bound methods formed a cycle (session, dispatch, repository) left for the garbage collector, about
# 70 objects each time.
@event.listens_for(OrmSession, "before_commit")
def _before_commit(session: OrmSession) -> None:
    for repository in _repositories(session):
        if repository.postgres:
            repository._write_and_commit()  # noqa: SLF001 - the repository's own listener
        else:
            repository._write_rows()  # noqa: SLF001


@event.listens_for(OrmSession, "after_soft_rollback")
def _after_soft_rollback(session: OrmSession, previous: Any) -> None:
    for repository in _repositories(session):
        repository._discard_rows(previous)  # noqa: SLF001


@event.listens_for(OrmSession, "after_transaction_create")
def _after_transaction_create(session: OrmSession, transaction: Any) -> None:
    if transaction.nested:
        for repository in _repositories(session):
            repository._savepoint_begins(transaction)  # noqa: SLF001


@event.listens_for(OrmSession, "after_transaction_end")
def _after_transaction_end(session: OrmSession, transaction: Any) -> None:
    if transaction.nested:
        for repository in _repositories(session):
            repository._savepoint_ends(transaction)  # noqa: SLF001


@event.listens_for(OrmSession, "after_commit")
def _after_commit(session: OrmSession) -> None:
    for repository in _repositories(session):
        repository._children_committed()  # noqa: SLF001


class Repository(EpisodeQueries, AccountQueries, ReferenceDataQueries, DeliveryQueries):
    """One unit of work. With ``reference`` (the process's ``ReferenceCache``: ``Store.repository`` and
    ``Store.unit_of_work`` pass it) schools, team contacts and people's teams are answered from the in-memory
    snapshot of the version this unit of work sees; without it (a one-off request's session), by queries."""

    def __init__(self, session: Session, *, postgres: bool = False, reference: ReferenceCache | None = None,
                 issued_children: IssuedChildIds | None = None) -> None:
        # The session keeps its repositories (``session.info``: its events reach them through the listeners
        # below) and a repository refers back to its session weakly, so that neither makes a reference cycle:
        # both are freed as soon as the caller lets the session go, not at the next garbage collection.
        self._session = weakref.ref(session)
        self.postgres = postgres
        self._cache = reference
        # The process's committed child ids (``Store.issued_children``), and the ones this unit of work saw: added
        # to the process's after the commit, forgotten on any rollback.
        self._issued = issued_children
        self._children_seen: dict[str, str] = {}
        self._snapshot: ReferenceSnapshot | None = None
        self._version: int | None = None  # the reference version, read once per unit of work
        self._synced_index: ReferenceIndex | None = None
        self._model_version: str | None = _UNREAD
        # Children this unit of work resolved (id -> person key), and those it created: a child created here
        # has nothing else stored about it yet (no episode, no trigger meeting) until this unit of work commits.
        self._person_of_child: dict[str, str] = {}
        self._new_children: set[str] = set()
        self._directory: Directory | None = None
        self._schools: dict[str, School | None] = {}
        # Current pupil rows by UPN read ahead for a batch (``read_pupils_ahead``): reference data, kept whatever
        # rolls back.
        self._pupils_ahead: dict[str, list[Any]] = {}
        # The current involvements ``facts_for_child`` gives a pupil read ahead, by UPN (``read_children_ahead``):
        # reference data too.
        self._pupil_involvements: dict[str, list[Any]] = {}
        # Children locked in this unit of work (PostgreSQL), those whose last trigger meeting held was read ahead
        # (``read_children_ahead``), and those meetings; the children read ahead whose stored episodes are still to
        # read (at the first ``episodes_of_child`` that needs them), and those whose stored episodes are all among
        # ``_episodes``: forgotten on any rollback, as the locks taken since a savepoint are released with it.
        self._locked_children: set[str] = set()
        self._children_ahead: set[str] = set()
        self._meetings_held: dict[str, datetime | None] = {}
        self._episodes_to_read: set[str] = set()
        self._episodes_ahead: set[str] = set()
        # Append-only rows (audit entries, outbox rows, new delivery rows) are buffered and written as one
        # multi-row insert per table when the transaction or savepoint they belong to commits; a rollback
        # discards them with it.
        # Several repositories may share a session: a savepoint writes all their buffered rows before it begins.
        self._audit_rows: list[dict[str, Any]] = []
        self._outbox_rows: list[dict[str, Any]] = []
        self._delivery_rows: list[dict[str, Any]] = []
        # Notifications and deadlines this unit of work creates: plain records, not ORM objects (effect_rows.py).
        self._notifications = CreatedRows(NOTIFICATION)
        self._new_keys: dict[str, NotificationRow] = {}  # dedupe keys of notifications buffered as new
        self._deadlines = CreatedRows(DEADLINE, indexed_by=("subject_id", "child_id"))
        # Subjects whose every stored deadline is among ``_deadlines`` (of an episode this unit of work created, or
        # read by ``deadlines_of_subjects`` with the episode locked), and children whose open trigger meeting, if
        # they have one, is (read ahead with the children, locked): ``add_deadline(once=True)`` then decides from
        # them what its guarded insert would (the unique indexes still stand behind it at the write), and
        # ``deadlines_of_subjects`` and ``open_trigger_meeting`` send nothing. Forgotten on any rollback, as the
        # locks are.
        self._subjects_known: set[str] = set()
        self._meetings_known: set[str] = set()
        self._meetings_to_read: set[str] = set()  # read when first asked about (``_read_meetings_ahead``)
        self._kinds_buffered: set[str] = set()  # kinds of the deadlines buffered in this unit of work, ever
        # Missing episodes read or created in this unit of work (plain records too), and those locked in it.
        self._episodes = CreatedRows(EPISODE, key="episode_id", indexed_by=("child_id",))
        self._locked_episodes: set[str] = set()
        # Events claimed, read or stored in this unit of work (plain records: pipeline/adapters/event_queue.py).
        self._events = EventRows()
        session.info.setdefault(_REPOSITORIES, []).append(self)

    @property
    def session(self) -> Session:
        """The session this unit of work runs in, which the caller holds (``with store.transaction() as session``,
        ``store.unit_of_work()``): a repository used after its session was let go raises rather than opening a
        transaction nobody commits."""
        session = self._session()
        if session is None:
            raise RuntimeError("the repository's session is gone: its unit of work has ended")
        return session

    def _savepoint_begins(self, transaction: Any) -> None:
        self._notifications.mark(transaction)
        self._deadlines.mark(transaction)
        self._episodes.mark(transaction)
        self._events.mark(transaction)

    def _savepoint_ends(self, transaction: Any) -> None:
        self._notifications.release(transaction)
        self._deadlines.release(transaction)
        self._episodes.release(transaction)
        self._events.release(transaction)

    def _write_created(self) -> None:
        """Write the created notifications and deadlines (new ones, then changes): before a read of their tables,
        a guarded insert that may clash with them, a savepoint and the commit."""
        if self._notifications or self._deadlines:
            connection = self.session.connection()
            self._notifications.write(connection)
            self._deadlines.write(connection)

    def _write_and_commit(self) -> None:
        """Before the commit, on PostgreSQL: the buffered writes, and when they are inserts only (no UPDATE whose
        count must be checked before the commit) and the session has no ORM object of its own to flush after this,
        the COMMIT in the same pipeline: one round trip (and the commit's fsync) for the unit of work's writes and
        its commit, instead of two. SQLAlchemy's own commit then finds the transaction over (psycopg sends nothing
        for it). A failure of a write or of the COMMIT raises from the pipeline, as without it, and the session rolls
        back; a COMMIT after a failed write is never run (the server skips a pipeline's statements after an error).
        Also called for a savepoint's release, which it leaves to ``_write_rows``."""
        session = self.session
        commit = not (session.in_nested_transaction() or session.new or session.dirty or session.deleted
                      or any(rows.changed for rows in (self._notifications, self._deadlines, self._episodes,
                                                       self._events)))
        self._write_rows(commit=commit)

    def _write_rows(self, *, commit: bool = False) -> None:
        """The buffered writes, before a savepoint and the commit. They read nothing back, so on PostgreSQL they go
        in one round trip (``pipelined``) instead of one per table; with ``commit`` (``_write_and_commit``), the
        COMMIT after them in the same round trip."""
        if not (self._notifications or self._deadlines or self._episodes or self._events or self._audit_rows
                or self._outbox_rows or self._delivery_rows):
            return
        connection = self.session.connection()
        with pipelined(connection, self.postgres):
            self._write_created()
            self._write_episodes()
            self._events.write(connection)
            if self._audit_rows:
                rows, self._audit_rows = self._audit_rows, []
                AUDIT_INSERT.run_many(connection, rows)
            if self._outbox_rows:
                rows, self._outbox_rows = self._outbox_rows, []
                OUTBOX_INSERT.run_many(connection, rows)
            if self._delivery_rows:
                rows, self._delivery_rows = self._delivery_rows, []
                DELIVERY_INSERT.run_many(connection, rows)
            driver = connection.connection.driver_connection
            if commit and driver is not None:
                driver.execute("COMMIT", prepare=False)
        # The UPDATEs' counts, in once the pipeline has synced: a row another writer removed fails the unit of work.
        for rows_of_table in (self._notifications, self._deadlines, self._episodes, self._events):
            rows_of_table.verify()

    def _children_committed(self) -> None:
        if self._issued is None:
            return  # a one-off request's repository: its children stay seen while it lasts
        self._issued.add_committed(self._children_seen)
        self._children_seen = {}

    def _discard_rows(self, previous: Any) -> None:
        self._audit_rows, self._outbox_rows, self._delivery_rows = [], [], []
        # PostgreSQL releases row locks taken since the savepoint: an episode is locked again on its next use.
        self._locked_episodes.clear()
        self._locked_children.clear()
        self._children_ahead.clear()
        self._meetings_held.clear()
        self._episodes_to_read.clear()
        self._episodes_ahead.clear()
        self._subjects_known.clear()
        self._meetings_known.clear()
        self._meetings_to_read.clear()
        self._person_of_child.clear()
        self._new_children.clear()
        self._children_seen = {}  # a rolled-back savepoint may have issued one of them
        if previous.nested:
            self._notifications.roll_back_to(previous)
            self._deadlines.roll_back_to(previous)
            self._episodes.roll_back_to(previous)
            self._events.roll_back_to(previous)
        else:
            self._notifications.clear()
            self._deadlines.clear()
            self._episodes.clear()
            self._events.clear()
        kept = self._notifications.by_id
        self._new_keys = {key: row for key, row in self._new_keys.items() if kept.get(row.id) is row}

    # ---- reference facts -------------------------------------------------------------------------
    # Reference reads are plain rows, not ORM objects: nothing here changes them, and this is the hot path of
    # every event (loading ORM objects cost more than the queries themselves).
    def _rows(self, statement: Any) -> Sequence[Row[Any]]:
        return self.session.connection().execute(statement).all()

    def _read_versions(self) -> None:
        row = _VERSIONS.rows(self.session.connection())[0]
        self._version = int(row.reference or 0)
        self._model_version = None if row.model is None else str(row.model)

    def reference_version(self) -> int:
        """The version check: the stored reference data's version, read once per unit of work (a batch), in the
        same statement as the newest matcher parameters' version (``newest_match_parameters``)."""
        if self._version is None:
            self._read_versions()
        assert self._version is not None
        return self._version

    def _forget_reference_reads(self) -> None:
        """This unit of work changed the reference data or stored new matcher parameters: what it read of them
        (the versions, the snapshot, the index synced, schools and contacts, pupils read ahead) is read again when
        next asked, so its own later questions see the change, as the fake's do."""
        self._version, self._model_version = None, _UNREAD
        self._snapshot = self._synced_index = self._directory = None
        self._schools, self._pupils_ahead, self._pupil_involvements = {}, {}, {}

    def _reference(self) -> ReferenceSnapshot | None:
        if self._cache is None:
            return None
        if self._snapshot is None:
            self._snapshot = self._cache.snapshot(self.session.connection(), self.reference_version())
        return self._snapshot

    def school(self, urn: str) -> School | None:
        if (snapshot := self._reference()) is not None:
            return snapshot.school(urn)
        if urn not in self._schools:
            rows = self._rows(sa_select(SCHOOL).where(SCHOOL.c.urn == urn, SCHOOL.c.ended_at.is_(None)))
            self._schools[urn] = school_of_row(rows[0]) if rows else None
        return self._schools[urn]

    def directory(self) -> Directory:
        if (snapshot := self._reference()) is not None:
            return snapshot.directory
        if self._directory is None:
            rows = self._rows(sa_select(TEAM_CONTACT).where(TEAM_CONTACT.c.ended_at.is_(None)))
            self._directory = Directory({row.team: Contact(row.email, row.phone) for row in rows})
        return self._directory

    def child_facts(self, child_id: str, members: list[Candidate], identity: Identity, day: date) -> ChildFacts:
        """Everything the routing table needs about one linked person."""
        return self._child_facts(child_id, members, identity, day)

    def _child_facts(self, child_id: str, members: list[Candidate], identity: Identity, day: date,
                     pupils: Sequence[Any] | None = None) -> ChildFacts:
        """``child_facts``; ``pupils``: the members' current pupil rows when the caller has just read them."""
        upns = {m.upn for m in members if m.upn}
        nhs = {m.identity.nhs_number for m in members if m.identity.nhs_number}
        enrolments: tuple[Enrolment, ...] = ()
        latest: Identity | None = None
        if upns:
            if pupils is None and self._pupils_ahead and all(upn in self._pupils_ahead for upn in upns):
                pupils = [row for upn in sorted(upns) for row in self._pupils_ahead[upn]]
            if pupils is None:
                # The session's connection asked for only when there is something to read.
                pupils = rows_by_keys(self.session.connection(), sorted(upns), _CURRENT_PUPILS_OF_UPN, "upn",
                                      _PUPILS_BY_UPN, "upns")
            enrolments, latest = roll_on(pupils, self.school, _pupil_identity, day)
        involvement_keys = sorted(m.record_key for m in members if m.source == "involvement")
        # The index brought to this unit of work's reference version holds every current involvement and
        # home-education record's UPN and NHS number: a table none of the child's numbers is in is not read.
        index = self._synced_index
        involvements: list[Involvement] = []
        if involvement_keys or index is None or index.may_hold("involvements", upns, nhs):
            involvements = [
                Involvement(row.status, row.worker_email, row.team, row.manager_email, row.placing_la, row.iro_email)
                for row in self.session.connection().execute(_INVOLVEMENTS_OF[bool(upns), bool(nhs)],
                                              {"keys": involvement_keys, "upns": sorted(upns), "nhs": sorted(nhs)})
            ]
        home_educated = any(m.source == "ehe" for m in members)
        if not home_educated and nhs and (index is None or index.may_hold("ehe", (), nhs)):
            home_educated = self.session.connection().execute(_HOME_EDUCATED, {"nhs": sorted(nhs)}).first() is not None
        best = latest or next((m.identity for m in members if m.source == "pupil"),
                              members[0].identity if members else identity)
        return ChildFacts(child_id, best, enrolments, home_educated, tuple(involvements))

    def child_id(self, person_key: str) -> str:
        """The opaque id for a person key, created on first sight."""
        if self._issued is not None and (issued := self._issued.get(person_key)) is not None:
            self._person_of_child[issued] = person_key
            return issued
        if (seen := self._children_seen.get(person_key)) is not None:  # resolved in this unit of work already
            return seen
        if self._issued is not None and self._issued.issuer is not None:
            # Issued and committed apart (pipeline/adapters/child_id_issuer.py): another worker's batch meeting the
            # same new person does not wait for this one. Visible to every worker at once, so the child is not
            # taken as having nothing stored yet (``_new_children``).
            child_id = self._issued.issue(new_child_id(), person_key, t.utcnow())
            self._children_seen[person_key] = child_id
            self._person_of_child[child_id] = person_key
            return child_id
        # Inserted first: a person key this process has not seen committed is most often a new child (one
        # statement); one issued before (by an earlier process or another worker) costs the read after it.
        child_id = new_child_id()
        if self._insert_guarded(CHILD, {"child_id": child_id, "person_key": person_key, "created_at": t.utcnow()}):
            self._new_children.add(child_id)
        else:  # issued before, or by another transaction a moment ago: theirs
            connection = self.session.connection()
            child_id = str(_CHILD_OF_PERSON.rows(connection, {"person_key": person_key})[0].child_id)
        self._children_seen[person_key] = child_id
        self._person_of_child[child_id] = person_key
        return child_id

    def child_ids(self, person_keys: Sequence[str]) -> dict[str, str]:
        """``child_id`` of each person key. On PostgreSQL the keys neither this process nor this unit of work knows
        are issued apart together (``ChildIdIssuer.issue_many``: two statements for them all, committed at once, so
        another worker's batch meeting the same people never waits for this one) instead of one or two each; on
        SQLite the new ones are inserted together (``_insert_children``)."""
        if self._issued is None or self._issued.issuer is None:
            if not self.postgres:
                self._insert_children([key for key in dict.fromkeys(person_keys) if self._unresolved(key)])
            return {key: self.child_id(key) for key in dict.fromkeys(person_keys)}
        found: dict[str, str] = {}
        fresh: dict[str, str] = {}
        for key in dict.fromkeys(person_keys):
            if (issued := self._issued.get(key)) is not None:
                self._person_of_child[issued] = key
                found[key] = issued
            elif (seen := self._children_seen.get(key)) is not None:
                found[key] = seen
            else:
                fresh[key] = new_child_id()
        if fresh:
            for key, child_id in self._issued.issue_many(fresh, t.utcnow()).items():
                self._children_seen[key] = child_id
                self._person_of_child[child_id] = key
                found[key] = child_id
        return found

    def _unresolved(self, person_key: str) -> bool:
        """Neither this process (committed) nor this unit of work knows the child id of ``person_key``."""
        return (self._issued is None or self._issued.get(person_key) is None) and person_key not in self._children_seen

    def _insert_children(self, person_keys: Sequence[str]) -> None:
        """SQLite: the child rows of people this unit of work has not resolved, inserted in one executemany
        (``ON CONFLICT DO NOTHING``), where ``child_id`` of each would insert them one by one. When every row went
        in (the count of the rows written), each is a new child; otherwise (some issued before) the stored ids of
        all of them are read in one statement, and those that are this unit of work's own are its new children."""
        if not person_keys:
            return
        now = t.utcnow()
        made = {key: new_child_id() for key in person_keys}
        connection = self.session.connection()
        written = _CHILD_INSERT_IF_NEW.run_many(connection, [
            {"child_id": child_id, "person_key": key, "created_at": now} for key, child_id in made.items()]).count()
        stored = made if written == len(made) else {
            str(row.person_key): str(row.child_id)
            for row in connection.execute(_CHILDREN_OF_PEOPLE, {"person_keys": list(made)})}
        for person_key, child_id in stored.items():
            if child_id == made[person_key]:
                self._new_children.add(child_id)
            self._children_seen[person_key] = child_id
            self._person_of_child[child_id] = person_key

    def read_pupils_ahead(self, upns: Sequence[str]) -> None:
        """The current pupil rows of ``upns`` in one statement, kept for this unit of work's ``child_facts``."""
        wanted = sorted(set(upns).difference(self._pupils_ahead))
        if not wanted:
            return
        read: dict[str, list[Any]] = {upn: [] for upn in wanted}
        for row in rows_by_keys(self.session.connection(), wanted, _CURRENT_PUPILS_OF_UPN, "upn", _PUPILS_BY_UPN,
                                "upns"):
            read[row.upn].append(row)
        for upn, rows in read.items():
            if len(rows) > 1:  # a child on two schools' rolls: the latest enrolment first, as facts_for_child takes it
                read[upn] = latest_enrolment_first(rows)
        self._pupils_ahead.update(read)

    # ---- effects ---------------------------------------------------------------------------------
    def audit(self, at: datetime, actor: str, action: str, subject_id: str, reason: str = "") -> None:
        self._audit_rows.append({"at": at, "actor": actor, "action": action, "subject_id": subject_id,
                                 "reason": reason})

    def outbox(self, at: datetime, topic: str, key: str, body: dict[str, Any],
               notification_id: str | None = None) -> None:
        self._outbox_rows.append({"topic": topic, "key": key, "body_json": _encode_loosely(body),
                                  "notification_id": notification_id, "created_at": at, "relayed_at": None})

    def add_deadline(self, planned: PlannedDeadline, subject_id: str, now: datetime, *, event_id: str | None,
                     child_id: str | None, once: bool = False) -> DeadlineRow | None:
        """Store a deadline. With ``once``, an existing (kind, subject) or a second open trigger meeting for the
        child is left as it is and None returned: a closed deadline is never re-opened. Without, it is written
        with the transaction's other new deadlines (a clash then fails the commit)."""
        row = DeadlineRow.new(
            id=new_id(), kind=str(planned.kind), subject_id=subject_id, event_id=event_id, child_id=child_id,
            school_urn=planned.school_urn, due_at=planned.due_at, state=str(DeadlineState.OPEN), escalation_level=0,
            next_step_at=planned.steps[0].at if planned.steps else None, steps_json=ladder_json(planned.steps),
            created_at=now,
        )
        if once:
            self._read_meetings_ahead()
            if self._known_to_clash(row):
                return None
        if not once or self._guard_known(row):
            self._deadlines.buffer(row)
            self._kinds_buffered.add(row.kind)
            return row
        # The guard's unique indexes are about deadlines: new and changed ones of this kind are written first. None
        # is pending unless one of this kind was buffered or some deadline changed: then the pending are looked at.
        if (row.kind in self._kinds_buffered or self._deadlines.changed) and \
                any(pending.kind == row.kind for pending in self._deadlines.pending()):
            self._deadlines.write(self.session.connection())
        if not self._insert_guarded(DEADLINE, row):
            return None
        self._deadlines.stored(row)
        return row

    def _guard_known(self, row: DeadlineRow) -> bool:
        """Whether every stored deadline the unique indexes would hold against ``row`` is among ``_deadlines``."""
        return row.subject_id in self._subjects_known and (
            row.kind != DeadlineKind.TRIGGER_MEETING or row.child_id is None or row.child_id in self._meetings_known)

    def _known_to_clash(self, row: DeadlineRow) -> bool:
        """Whether a deadline among ``_deadlines`` holds the unique indexes against ``row`` (one of the same kind
        and subject, or the child's pending trigger meeting: ``uq_deadline_kind_subject``,
        ``uq_deadline_open_trigger_meeting``): the guarded insert would refuse it too, as they are written first.
        Where ``_guard_known``, False is the guarded insert's answer as well."""
        if any(d.kind == row.kind for d in self._deadlines.with_value("subject_id", row.subject_id)):
            return True
        return row.kind == DeadlineKind.TRIGGER_MEETING and row.child_id is not None and \
            self._pending_meeting_in_memory(row.child_id) is not None

    def _insert_guarded(self, table: Table, record: Any) -> bool:
        """``INSERT ... ON CONFLICT DO NOTHING RETURNING <key>`` of a record (or a dict of its columns): False
        (nothing written) if a unique constraint or unique index (partial ones included) already holds such a row."""
        values = record if isinstance(record, dict) else {key: getattr(record, key) for key in _column_keys(table)}
        return _guarded_insert(table, self.postgres).first(self.session.connection(), values) is not None

    def facts_for_child(self, child_id: str, day: date) -> ChildFacts | None:
        """Reference facts for a known child id, from its person key (plain rows, as ``child_facts`` reads them:
        the missing pathway asks this for every event of a linked child)."""
        person_key = self._person_of_child.get(child_id)
        if person_key is None:
            person_key = _PERSON_OF_CHILD.scalar(self.session.connection(), {"child_id": child_id})
            if person_key is None:
                return None
            self._person_of_child[child_id] = person_key
        kind, _, value = str(person_key).partition(":")
        members: list[Candidate] = []
        pupils: list[Any] | None = None
        if kind == "upn":
            # The current rows of this UPN (one per enrolment), read ahead; else every row of it, ended or not.
            ahead = self._pupils_ahead.get(value)
            rows = ahead if ahead else latest_enrolment_first(_PUPILS_OF_UPN.rows(self.session.connection(),
                                                                                  {"upn": value}))
            # The members' UPNs are this pupil's alone: child_facts needs no second read of them.
            pupils = [row for row in rows if row.ended_at is None]
            if rows:
                pupil = rows[0]  # the latest enrolment: the child's identity
                members.append(Candidate("pupil", pupil.row_key, _pupil_identity(pupil), upn=pupil.upn,
                                         school_urn=pupil.school_urn))
                # Involvements recorded without a UPN but with exactly this pupil's identity are theirs too: read
                # ahead for the batch, else read now, unless the index brought to this unit of work's reference
                # version knows no current involvement carries the UPN or, without one, the pupil's family key and
                # date of birth.
                involvements = self._pupil_involvements.get(value) if ahead else None
                if involvements is None:
                    index = self._synced_index
                    involvements = _INVOLVEMENTS_OF_PUPIL.rows(self.session.connection(), {
                        "upn": value, "family_key": pupil.family_key, "date_of_birth": pupil.date_of_birth}) \
                        if index is None or index.may_hold("involvements", (value,), ()) or \
                        index.may_hold_unnumbered(pupil.family_key, pupil.date_of_birth) else []
                members += [Candidate("involvement", inv.row_key, _pupil_identity(inv), upn=inv.upn)
                            for inv in involvements
                            if inv.upn == value or exact_identity(_pupil_identity(inv)) ==
                            exact_identity(_pupil_identity(pupil))]
        elif kind == "nhs":
            members += [Candidate("involvement", inv.row_key, _pupil_identity(inv))
                        for inv in _INVOLVEMENTS_BY_NHS.rows(self.session.connection(), {"nhs": value})]
            members += [Candidate("ehe", ehe.row_key, _pupil_identity(ehe))
                        for ehe in _EHE_BY_NHS.rows(self.session.connection(), {"nhs": value})]
        elif kind == "ehe":
            members += [Candidate("ehe", ehe.row_key, _pupil_identity(ehe))
                        for ehe in _EHE_BY_KEY.rows(self.session.connection(), {"key": value})]
        elif kind == "involvement":
            members += [Candidate("involvement", inv.row_key, _pupil_identity(inv), upn=inv.upn)
                        for inv in _INVOLVEMENT_BY_KEY.rows(self.session.connection(), {"key": value})]
        if not members:
            return None
        return self._child_facts(child_id, members, members[0].identity, day, pupils)

    def _read_pupil_involvements_ahead(self, child_ids: Sequence[str]) -> None:
        """For the children linked to a pupil read ahead (``read_pupils_ahead``), the involvements ``facts_for_child``
        reads for that pupil (``_INVOLVEMENTS_OF_PUPIL``), read for them all in one statement."""
        pupils: dict[str, Any] = {}
        for child_id in child_ids:
            kind, _, upn = self._person_of_child.get(child_id, "").partition(":")
            ahead = self._pupils_ahead.get(upn) if kind == "upn" else None
            if ahead and upn not in self._pupil_involvements:
                pupils[upn] = ahead[0]
        if not pupils:
            return
        family_keys = sorted({pupil.family_key for pupil in pupils.values() if pupil.family_key is not None})
        read: dict[str, list[Any]] = {upn: [] for upn in pupils}
        by_family: dict[tuple[Any, Any], list[str]] = {}
        for upn, pupil in pupils.items():
            if pupil.family_key is not None and pupil.date_of_birth is not None:
                by_family.setdefault((pupil.family_key, pupil.date_of_birth), []).append(upn)
        connection = self.session.connection()
        if len(pupils) == 1:  # a batch of one event: ``facts_for_child``'s own statement, on the driver's cursor
            ((upn, pupil),) = pupils.items()
            rows = _INVOLVEMENTS_OF_PUPIL.rows(connection, {"upn": upn, "family_key": pupil.family_key,
                                                            "date_of_birth": pupil.date_of_birth})
        else:
            rows = plain_rows(connection.execute(_INVOLVEMENTS_OF_PUPILS, {"upns": sorted(pupils),
                                                                           "family_keys": family_keys}))
        for row in rows:
            if row.upn is not None:
                if row.upn in read:
                    read[row.upn].append(row)
            else:  # as ``_INVOLVEMENTS_OF_PUPIL`` matches it: the same family key and date of birth
                for upn in by_family.get((row.family_key, row.date_of_birth), ()):
                    read[upn].append(row)
        self._pupil_involvements.update(read)

    def lock_child(self, child_id: str) -> None:
        """Serialise per-child rules across workers (PostgreSQL row lock; SQLite writers are already serial)."""
        # Core on the session's connection: a lock, not an ORM load (and no flush)
        if self.postgres and child_id not in self._locked_children \
                and _LOCK_CHILD.rows(self.session.connection(), {"child_id": child_id}):
            self._locked_children.add(child_id)

    def lock_children(self, child_ids: Sequence[str]) -> None:
        """``lock_child`` of each, on PostgreSQL in one statement for those this unit of work has not locked yet, in
        child id order (the order every worker takes them in)."""
        wanted = sorted(set(child_ids).difference(self._locked_children))
        if self.postgres and wanted:
            self._locked_children.update(row.child_id for row in self.session.connection().execute(
                _LOCK_CHILDREN, {"child_ids": wanted}))

    def deadline_rows(self, *where: Any, order: bool = False, limit: int | None = None,
                      skip_locked: bool = False) -> list[DeadlineRow]:
        """Deadlines read with one Core query, as this unit of work's records (changes written back at commit);
        what it created or changed is written first, so the query sees it."""
        self._write_created()
        query = sa_select(DEADLINE).where(*where)
        if order:
            query = query.order_by(DEADLINE.c.created_at, DEADLINE.c.id)
        if limit is not None:
            query = query.limit(limit)
        if skip_locked and self.postgres:
            query = query.with_for_update(skip_locked=True)
        return self._deadlines.loaded(self._rows(query), DeadlineRow)

    def open_deadlines_due(self, now: datetime, limit: int) -> list[DeadlineRow]:
        self._write_created()
        query = (sa_select(DEADLINE)
                 .where(DEADLINE.c.state == DeadlineState.OPEN, DEADLINE.c.next_step_at <= now)
                 .order_by(DEADLINE.c.next_step_at, DEADLINE.c.id).limit(limit))
        if self.postgres:
            query = query.with_for_update(skip_locked=True)
        return self._deadlines.loaded(self._rows(query), DeadlineRow)

    due_deadlines = open_deadlines_due  # the name bench/bench_sweep.py and older callers use

    def deadline(self, deadline_id: str) -> DeadlineRow | None:
        known = self._deadlines.by_id.get(deadline_id)
        if known is not None:
            return known
        found = self.deadline_rows(DEADLINE.c.id == deadline_id)
        return found[0] if found else None

    def deadlines_of_subject(self, subject_id: str) -> list[DeadlineRow]:
        return self.deadline_rows(DEADLINE.c.subject_id == subject_id, order=True)

    def deadlines_of_subjects(self, subject_ids: Sequence[str]) -> list[DeadlineRow]:
        if not subject_ids:
            return []
        if all(subject_id in self._subjects_known for subject_id in subject_ids):
            found = {d.id: d for subject_id in subject_ids
                     for d in self._deadlines.with_value("subject_id", subject_id)}
            return sorted(found.values(), key=lambda d: (d.created_at, d.id))
        read = self.deadline_rows(DEADLINE.c.subject_id.in_(list(subject_ids)), order=True)
        # Every deadline of these subjects is now among ``_deadlines``; on PostgreSQL that stays so while no other
        # worker can add one: an episode's own and its trigger meeting's, the episode locked by this unit of work.
        self._subjects_known.update(subject_id for subject_id in subject_ids
                                    if not self.postgres or episode_of_subject(subject_id) in self._locked_episodes)
        return read

    # ---- notifications, deliveries, dead letters ------------------------------------------------------
    def add_notification(self, event_id: str, pathway: str, item: PlannedNotification, status: str, now: datetime,
                         *, dedupe_key: str | None = None, deadline_id: str | None = None,
                         key_is_new: bool = False) -> NotificationRow | None:
        """A notification as a plain record: with a ``dedupe_key`` inserted at once (``ON CONFLICT DO NOTHING``),
        otherwise, or with a key the caller knows is new (``key_is_new``: checked against this unit of work's
        own keys only), written with the transaction's other new notifications in one multi-row insert."""
        row = NotificationRow.new(
            id=new_id(), event_id=event_id, pathway=pathway, kind=str(item.kind), plan_key=item.key,
            recipient_role=item.recipient_role, recipient_ref=item.recipient_ref, school_urn=item.school_urn,
            contact_email=item.contact.email, contact_phone=item.contact.phone, urgency=item.urgency,
            reason=item.reason, status=str(status), content_json=_encode_loosely(item.content),
            created_at=now, dedupe_key=dedupe_key, deadline_id=deadline_id,
        )
        if dedupe_key is None:
            self._notifications.buffer(row)
            return row
        if dedupe_key in self._new_keys:
            return None
        if key_is_new:
            self._new_keys[dedupe_key] = row
            self._notifications.buffer(row)
            return row
        if not self._insert_guarded(NOTIFICATION, row):
            return None
        self._notifications.stored(row)
        return row

    def notification(self, notification_id: str) -> Any:
        created = self._notifications.by_id.get(notification_id)
        return created if created is not None else self.session.get(t.Notification, notification_id)

    def add_delivery(self, notification_id: str, channel: str, now: datetime) -> None:
        """A new delivery row: written with the transaction's other append-only rows (nothing in the unit of work
        that adds one reads it back; the relay claims it in a later transaction)."""
        self._delivery_rows.append({**NEW_DELIVERY, "id": new_id(), "notification_id": notification_id,
                                    "channel": channel, "state": DeliveryState.NEW, "next_attempt_at": now,
                                    "created_at": now})

    def add_dead_letter(self, now: datetime, source: str, event_type: str | None, reason: str, payload: bytes, *,
                        producer_id: int | None = None, event_id: str | None = None) -> t.DeadLetter:
        letter = t.DeadLetter(id=new_id(), received_at=now, source=source, event_type=event_type, reason=reason,
                              payload=payload, producer_id=producer_id, event_id=event_id)
        self.session.add(letter)
        return letter

    # ---- events ----------------------------------------------------------------------------------------
    def events_by_id(self, event_ids: Sequence[str], *, lock: bool = True) -> list[EventRow]:
        return event_queue.events_by_id(self.session.connection(), self._events, event_ids, postgres=self.postgres,
                                        lock=lock)

    def batch_events(self, event_ids: Sequence[str]) -> list[EventRow]:
        """``events_by_id`` (locked) as a Kafka batch's unit of work begins it, with the version check it makes next
        (``reference_version``, and the matcher's version with it): on PostgreSQL, both statements and the
        transaction's BEGIN sent together (psycopg's pipeline), one round trip instead of three. Elsewhere, or once
        the versions are read, ``events_by_id``."""
        if not self.postgres or self._version is not None:
            return self.events_by_id(event_ids)
        connection = self.session.connection()
        wanted = list(dict.fromkeys(event_ids))
        versions = _VERSIONS.compiled(connection.dialect)
        events = _BY_ID_DRIVER.compiled(connection.dialect, None, {"ids": len(wanted)})
        driver = connection.connection.driver_connection
        with pipelined(connection, self.postgres):
            read_versions = _sent(connection, driver, versions.sql, versions.bind({}))
            read_events = _sent(connection, driver, events.sql, events.bind({"ids": wanted}))
        row = versions.rows(read_versions.fetchall())[0]
        self._version = int(row.reference or 0)
        self._model_version = None if row.model is None else str(row.model)
        found = self._events.read(events.rows(read_events.fetchall()))
        read_versions.close()
        read_events.close()
        return found

    def held_event_ids(self) -> list[str]:
        return event_queue.held_event_ids(self.session.connection(), self._events)

    def claim_due_events(self, now: datetime, limit: int, *, retries_only: bool = False) -> list[EventRow]:
        return event_queue.claim_due_events(self.session.connection(), self._events, now, limit,
                                            retries_only=retries_only, postgres=self.postgres)

    def claim_events(self, seqs: Sequence[int]) -> list[EventRow]:
        return event_queue.claim_events(self.session.connection(), self._events, seqs, postgres=self.postgres)

    def store_event(self, event_type: str, event_id: str, record_json: str, content_hash: str, now: datetime, *,
                    producer_id: int | None = None) -> EventRow:
        """An accepted event this unit of work stores (the Kafka worker's record sent straight to its topic):
        inserted at the next write point, with the unit of work's other new events, as it is by then."""
        row = EventRow(event_id=event_id, event_type=event_type, content_hash=content_hash, record_json=record_json,
                       received_at=now, producer_id=producer_id)
        self._events.buffer(row)
        return row

    # ---- reference reads the port adds -------------------------------------------------------------------
    def is_known_child(self, child_id: str) -> bool:
        return bool(self._rows(sa_select(CHILD.c.child_id).where(CHILD.c.child_id == child_id)))

    def team_of_person(self, role: str, email: str) -> str | None:
        if (snapshot := self._reference()) is not None:
            return snapshot.team_of_person(role, email)
        return team_of_person(self.session, role, email)

    def sync_match_index(self, index: ReferenceIndex) -> None:
        """Once per unit of work: the index brought to the version this unit of work sees."""
        if self._synced_index is not index:
            index.refresh(self.session.connection(), self.reference_version())
            self._synced_index = index

    def newest_match_parameters(self, current_version: str | None) -> Parameters | None:
        if self._model_version is _UNREAD:  # the newest model's version, read once per unit of work
            self._read_versions()
        latest = self._model_version
        if latest is None or latest == current_version:
            return None
        return load_parameters(self.session.connection(), latest)

    # ---- the unit of work --------------------------------------------------------------------------------
    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A SAVEPOINT: on an exception everything since is rolled back and the session's rows are expired
        (read again on next use), and the exception propagates."""
        # Rows buffered so far belong to the enclosing transaction: every repository's on this session, not only
        # this one's, or a rollback of the savepoint would take another repository's earlier rows with it.
        for repository in _repositories(self.session):
            repository._write_rows()  # noqa: SLF001 - a repository of the same session
        try:
            with self.session.begin_nested():
                yield
        except BaseException:
            self.session.expire_all()
            raise


if TYPE_CHECKING:
    def _implements_the_port(repo: Repository) -> StorePort:
        return repo
