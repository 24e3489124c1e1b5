"""The intake's queries: which of a batch's event ids are stored already, and storing a batch of new events.

Plain Core statements over the ``event`` table, no ORM objects: the intake is the hot path of every event.
One query answers a whole batch's ids, and one multi-row insert stores its new events, in the caller's
transaction (one commit, one fsync, for a whole group of HTTP requests or a batch of ``safeguard produce``).

``intake_transaction`` and ``intake_reads`` (``Store``'s answers to the intake part of the port,
pipeline/ports/intake.py) are how the intake service reaches them without a Session or a SQLAlchemy exception: an
``IntakeUnit`` answers the batch's questions, gives the storage port for its dead letters, and the database's
refusals come back as ``EventIdTaken`` or ``StoreWriteFailed``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, bindparam, insert, select
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import Session

from pipeline.adapters import tables as t
from pipeline.adapters.driver_statements import CompiledStatement, DriverStatement, dialect_key
from pipeline.adapters.repository import Repository
from pipeline.ports.intake import NO_PORT, EventIdTaken, IntakeRow, StoreWriteFailed

if TYPE_CHECKING:
    from pipeline.adapters.store import Store
    from pipeline.ports import StorePort

EVENTS = t.Event.__table__  # type: ignore[attr-defined]
# SQLite allows up to 32,766 bound parameters a statement; a batch's ids are looked up in chunks well under it.
IDS_PER_QUERY = 900


# Built once: at a few events a second every HTTP event is a group of its own, and building the statement cost
# about as much as running it.
_STORED = select(EVENTS.c.event_id, EVENTS.c.event_type, EVENTS.c.producer_id, EVENTS.c.content_hash,
                 EVENTS.c.status).where(EVENTS.c.event_id.in_(bindparam("ids", expanding=True)))
_INSERT = insert(EVENTS)


def stored_events(connection: Connection, event_ids: Iterable[str]) -> dict[str, IntakeRow]:
    """The stored events among ``event_ids``, by id (without their record: the intake never needs it)."""
    ids = list(dict.fromkeys(event_ids))
    found: dict[str, IntakeRow] = {}
    for start in range(0, len(ids), IDS_PER_QUERY):
        rows = connection.execute(_STORED, {"ids": ids[start:start + IDS_PER_QUERY]})
        for row in rows:
            found[row.event_id] = IntakeRow.found(row)
    return found


def insert_events(connection: Connection, rows: Sequence[IntakeRow], received_at: datetime) -> None:
    """Store new events as ``accepted``, all in one statement (raises IntegrityError for a stored event_id)."""
    if not rows:
        return
    connection.execute(_INSERT, [
        {"event_id": row.event_id, "event_type": row.event_type, "producer_id": row.producer_id,
         "content_hash": row.content_hash, "record_json": row.record_json, "received_at": received_at,
         "status": "accepted", "attempts": 0}
        for row in rows])


class SqlIntakeUnit:
    """One intake transaction (or read): the batch's stored events, its new events, and the storage port for
    the dead letters and outbox rows written with them."""

    def __init__(self, session: Session, postgres: bool) -> None:
        self._session = session
        self._postgres = postgres
        self._port: Repository | None = None

    def stored_events(self, event_ids: Iterable[str]) -> dict[str, IntakeRow]:
        return stored_events(self._session.connection(), event_ids)

    def insert_events(self, rows: Sequence[IntakeRow]) -> None:
        """Store new events as ``accepted``, received now (``EventIdTaken`` from the transaction if one is
        stored already)."""
        insert_events(self._session.connection(), rows, t.utcnow())

    @property
    def port(self) -> StorePort:
        """The storage port over this transaction (made on first use: most batches have no dead letter)."""
        if self._port is None:
            self._port = Repository(self._session, postgres=self._postgres)
        return self._port


class SqliteIntakeStatements:
    """The intake's two statements for SQLite, compiled by their ``DriverStatement``s (the duplicate-id check once
    per number of ids, the insert once) to run on the DBAPI cursor of ``Store.sqlite_write``: the same SQL and the
    same stored values (``received_at`` through the driver statements' bind processing), without a Session or
    Core execution per group commit."""

    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect
        self.insert = _INSERT_DRIVER.compiled(dialect, _INSERTED)

    def stored(self, count: int) -> CompiledStatement:
        """The duplicate-id check for ``count`` ids (compiled on first use, then kept)."""
        return _STORED_DRIVER.compiled(self._dialect, expanding={"ids": count})


_INSERTED = ("event_id", "event_type", "producer_id", "content_hash", "record_json", "received_at", "status",
             "attempts")
_STORED_DRIVER = DriverStatement(_STORED)
_INSERT_DRIVER = DriverStatement(_INSERT)
_STATEMENTS: dict[tuple[Any, ...], SqliteIntakeStatements] = {}  # by ``dialect_key``


def _sqlite_statements(dialect: Dialect) -> SqliteIntakeStatements:
    key = dialect_key(dialect)
    statements = _STATEMENTS.get(key)
    if statements is None:
        statements = _STATEMENTS[key] = SqliteIntakeStatements(dialect)
    return statements


class SqliteIntakeUnit(SqlIntakeUnit):
    """An intake transaction with no dead letter on SQLite: the batch's two statements on the DBAPI cursor."""

    def __init__(self, cursor: Any, statements: SqliteIntakeStatements) -> None:
        self._cursor = cursor
        self._statements = statements

    def stored_events(self, event_ids: Iterable[str]) -> dict[str, IntakeRow]:
        ids = list(dict.fromkeys(event_ids))
        found: dict[str, IntakeRow] = {}
        for start in range(0, len(ids), IDS_PER_QUERY):
            chunk = ids[start:start + IDS_PER_QUERY]
            stored = self._statements.stored(len(chunk))
            for row in stored.rows(self._cursor.execute(stored.sql, stored.bind({"ids": chunk})).fetchall()):
                found[row.event_id] = IntakeRow.found(row)
        return found

    def insert_events(self, rows: Sequence[IntakeRow]) -> None:
        if not rows:
            return
        received_at = t.utcnow()
        insert = self._statements.insert
        bind = insert.bind
        self._cursor.executemany(insert.sql, [
            bind({"event_id": row.event_id, "event_type": row.event_type, "producer_id": row.producer_id,
                  "content_hash": row.content_hash, "record_json": row.record_json, "received_at": received_at,
                  "status": "accepted", "attempts": 0}) for row in rows])

    @property
    def port(self) -> StorePort:
        raise TypeError(NO_PORT)


@contextmanager
def intake_transaction(store: Store, dead_letters: bool = True) -> Iterator[SqlIntakeUnit]:
    """One writing transaction of the intake, committed (on disk) when the block ends; rolled back if it raises.
    A unique-constraint clash comes out as ``EventIdTaken``, any other database error as ``StoreWriteFailed``.

    Without dead letters (the usual group commit: valid events only) on SQLite, the statements run on the pooled
    DBAPI connection itself (``Store.sqlite_write``); with them, or on PostgreSQL, in a Session, whose storage port
    writes the dead letters and their outbox rows."""
    if not dead_letters and not store.is_postgres:
        try:
            with store.sqlite_write() as cursor:
                yield SqliteIntakeUnit(cursor, _sqlite_statements(store.engine.dialect))
        except sqlite3.IntegrityError as error:
            raise EventIdTaken("an event_id of this transaction was stored by another writer") from error
        except sqlite3.Error as error:
            raise StoreWriteFailed(type(error).__name__) from error
        return
    try:
        with store.transaction() as session:
            yield SqlIntakeUnit(session, store.is_postgres)
    except IntegrityError as error:
        raise EventIdTaken("an event_id of this transaction was stored by another writer") from error
    except SQLAlchemyError as error:
        raise StoreWriteFailed(type(error).__name__) from error


@contextmanager
def intake_reads(store: Store) -> Iterator[SqlIntakeUnit]:
    """A read-only look at the store (no write lock): stored events, and the port's reference reads."""
    with store.read() as session:
        yield SqlIntakeUnit(session, store.is_postgres)
