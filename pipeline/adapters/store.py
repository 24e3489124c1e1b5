"""The store: engine set-up, migrations and transactions (SQLite embedded, PostgreSQL at scale).

``Store.transaction()`` is the unit of work: everything an event causes (notifications, deadlines,
audit entries, outbox rows and the processed-event mark) commits together or not at all. SQLite runs
in WAL mode with ``synchronous=FULL``, so a commit is on disk when it returns.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from types import MappingProxyType
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event, exc
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, create_engine

from pipeline.adapters import intake_rows
from pipeline.adapters.accounts import TokenLookup
from pipeline.adapters.child_id_issuer import ChildIdIssuer
from pipeline.adapters.intake_rows import SqlIntakeUnit
from pipeline.adapters.issued_children import IssuedChildIds
from pipeline.adapters.reference_cache import ReferenceCache
from pipeline.adapters.repository import Repository
from pipeline.adapters.wal_checkpoint import WalCheckpointer
from pipeline.domain.delivery import DeliveryState, Outcome
from pipeline.domain.model import (
    DeadlineKind,
    DeadlineState,
    EventStatus,
    MatchOutcome,
    NotificationKind,
    NotificationStatus,
    Role,
)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


# A callable of one argument that returns None, in C (an empty mapping's ``get``, read-only): the adapter of ``None``.
_NOTHING: MappingProxyType[object, None] = MappingProxyType({})
_NULL = _NOTHING.get


def _register_sqlite_adapters() -> None:
    """The sqlite3 module binds a value of exactly ``int``, ``float`` or ``str`` as it is, but any other (``None``, an
    enumeration's member, a ``bool``) goes through its adaptation protocol first: it looks for an adapter registered
    for the value's exact type, then asks for ``__adapt__`` and ``__conform__``, and each of those two failed lookups
    formats an AttributeError's message. Bound NULLs and enumerations cost 3.4% of the consumer's instructions,
    about 70 values an event (callgrind, bench/results/intake.md). An adapter registered for each such type is
    found at the first step. What is stored is unchanged: NULL, a member's string value, a bool's 0 or 1."""
    sqlite3.register_adapter(type(None), _NULL)
    for enumeration in (DeadlineKind, DeadlineState, DeliveryState, EventStatus, MatchOutcome, NotificationKind,
                        NotificationStatus, Outcome, Role):
        sqlite3.register_adapter(enumeration, str)
    sqlite3.register_adapter(bool, int)


_register_sqlite_adapters()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the sqlite3 module, say when transactions begin (see _sqlite_begin).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    # Speed only, durability unchanged: a larger page cache per connection, temporary b-trees in memory.
    cursor.execute("PRAGMA cache_size=-32768")
    cursor.execute("PRAGMA temp_store=MEMORY")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    # A writing unit of work takes the write lock up front, so two writers never deadlock upgrading a
    # read lock; readers stay deferred and, under WAL, never wait for a writer.
    immediate = connection.get_execution_options().get("sqlite_immediate", False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


# A pooled PostgreSQL connection idle for longer than this is pinged before it is handed out (see _pinging_if_idle).
PING_IDLE_SECONDS = 1.0


def _checked_in(_dbapi_connection: Any, record: Any) -> None:
    record.info["checked_in_at"] = time.monotonic()


def _pinging_if_idle(dialect: Any) -> Any:
    """The pool's check-out hook for PostgreSQL: SQLAlchemy's pre-ping, for a connection that sat in the pool over
    ``PING_IDLE_SECONDS`` only (the database may have restarted or dropped it meanwhile): a dead one is replaced, the
    connections pooled before it with it, before anything runs on it. One checked in a moment ago is handed out
    without the ping's round trip: a Kafka worker takes a connection for every batch, and at 50 events/s the ping was
    one of a lone record's nine sequential round trips, each a wake-up of the worker on a busy core. What that leaves
    is a database that went away within the last second: the first statement on such a connection fails as any
    statement on a lost connection does (SQLAlchemy invalidates the pool), and the caller's next try gets a new one
    (a worker's batch goes again at once, record by record: consumers/kafka_records.py), the window pre-ping itself
    leaves between its ping and the statement, made longer."""

    def ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("checked_in_at")
        if idle_since is None or time.monotonic() - idle_since < PING_IDLE_SECONDS:
            return  # fresh from connect(), or back from use a moment ago
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as error:
            if dialect.is_disconnect(error, dbapi_connection, None):
                raise exc.InvalidatePoolError() from error  # as pre-ping: reconnect, the older ones too
            raise

    return ping_if_idle


def sqlite_file(url: str) -> Path | None:
    """The file an SQLite URL names, which opening the store creates if need be (None for another database or an
    in-memory one)."""
    if not url.startswith("sqlite"):
        return None
    path = url.split("///", 1)[-1]
    return Path(path) if path and path != ":memory:" else None


def make_engine(url: str) -> Engine:
    # hide_parameters: SQLAlchemy's error text would otherwise carry a statement's values (children's details)
    # into whatever logs the error.
    if url.startswith("sqlite"):
        if (path := sqlite_file(url)) is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, hide_parameters=True)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    # pool_use_lifo: the connection checked in last is handed out next, so a busy process keeps reusing the one it
    # just used (no ping) while its others sit idle and are pinged when next taken.
    # A database that cannot be reached fails a connect in seconds (a start, a scrape), not after the OS's minutes.
    engine = create_engine(url, pool_size=10, max_overflow=10, pool_use_lifo=True, hide_parameters=True,
                           connect_args={"connect_timeout": 10})
    event.listen(engine, "checkin", _checked_in)
    event.listen(engine, "checkout", _pinging_if_idle(engine.dialect))
    return engine


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration; the only way tables are created."""
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


class Store:
    """Owns the engine; hands out one transaction per unit of work."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        # SQLite has one writer at a time, and its busy handler waits by sleeping in growing steps; queueing
        # this process's writers on a lock instead hands the database over the moment it is free.
        self._write_lock = threading.Lock() if self.engine.dialect.name == "sqlite" else None
        # The process's in-memory reference data (schools, team contacts, people's teams), checked against the
        # stored version once per unit of work: shared by every unit of work of this store.
        self.reference = ReferenceCache()
        # Child ids already committed, by person key (issued once, never changed): shared the same way.
        # On PostgreSQL new ones are issued apart from the unit of work (pipeline/adapters/child_id_issuer.py).
        self.issued_children = IssuedChildIds(issuer=ChildIdIssuer(self.engine) if self.is_postgres else None)
        # The bearer token of every API request, looked up afresh each time on a connection kept for it.
        self.tokens = TokenLookup(self.engine)
        # The one DBAPI connection kept for ``sqlite_write``, used only under the write lock (None until then).
        self._writer: Any = None

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def migrate(self) -> None:
        migrate(self.engine)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        if self._write_lock is None:
            with self._transaction() as session:
                yield session
            return
        with self._write_lock, self._transaction() as session:
            yield session

    @contextmanager
    def sqlite_write(self) -> Iterator[Any]:
        """A write transaction on an SQLite store's DBAPI connection itself, for a few prepared statements on the
        hot path (the intake's group commit) with no Session or Core execution around them: under the process's
        write lock, ``BEGIN IMMEDIATE``, and ``COMMIT`` when the block ends (on disk: the connection runs with
        synchronous=FULL, as every other), ``ROLLBACK`` if it raises. Yields a DBAPI cursor, closed when the block
        ends, however it ends.

        The store keeps one connection from the pool for it (its pragmas and check-out hooks applied once), used
        by whichever thread holds the write lock, so a group commit pays no pool check-out and check-in, and
        threads that come and go (a web worker recording a return interview) hold no pool slot of their own. One
        whose transaction ended in an error goes back to the pool (which rolls it back); the next call takes
        another."""
        assert self._write_lock is not None, "only an SQLite store"
        with self._write_lock:
            if self._writer is None:
                self._writer = self.engine.raw_connection()
            connection = self._writer
            try:
                cursor = connection.cursor()
                try:
                    cursor.execute("BEGIN IMMEDIATE")
                    try:
                        yield cursor
                    except BaseException:
                        if connection.in_transaction:  # some errors (a full disk) have rolled it back already
                            cursor.execute("ROLLBACK")
                        raise
                    cursor.execute("COMMIT")
                finally:
                    cursor.close()  # on every path: the kept connection outlives its cursors
            except BaseException:
                self._writer = None
                connection.close()  # back to the pool, which rolls back whatever is left
                raise

    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session:
            session.connection(execution_options={"sqlite_immediate": True})
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def take_over_wal_checkpoints(self, every_seconds: float = 1.0, restart_pages: int = 8_000
                                  ) -> WalCheckpointer | None:
        """For a long-running process: this store's connections stop checkpointing inside their commits (up to a
        safety bound) and the returned checkpointer, run in a thread of its own, does it instead
        (pipeline/adapters/wal_checkpoint.py). None when the database is not an SQLite file."""
        path = self.engine.url.database
        if self.engine.dialect.name != "sqlite" or not path or path == ":memory:":
            return None
        checkpointer = WalCheckpointer(self.engine, self._write_lock, every_seconds=every_seconds,
                                       restart_pages=restart_pages, safety_pages=2 * restart_pages)

        def on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
            # Once per pooled connection, those opened before this call included.
            if record.info.get("wal_autocheckpoint") != checkpointer.safety_pages:
                cursor = dbapi_connection.cursor()
                cursor.execute(f"PRAGMA wal_autocheckpoint={checkpointer.safety_pages}")
                cursor.close()
                record.info["wal_autocheckpoint"] = checkpointer.safety_pages

        event.listen(self.engine, "checkout", on_checkout)
        return checkpointer

    def repository(self, session: Session) -> Repository:
        """The storage port over ``session`` (one of this store's transactions), reading reference data from the
        process's snapshot."""
        return Repository(session, postgres=self.is_postgres, reference=self.reference,
                          issued_children=self.issued_children)

    def intake_transaction(self, dead_letters: bool = True) -> AbstractContextManager[SqlIntakeUnit]:
        """The intake's writing transaction (``pipeline.ports.intake.IntakeStore``; pipeline/adapters/intake_rows.py
        says how)."""
        return intake_rows.intake_transaction(self, dead_letters)

    def intake_reads(self) -> AbstractContextManager[SqlIntakeUnit]:
        """A read of the intake's (no write lock)."""
        return intake_rows.intake_reads(self)

    @contextmanager
    def unit_of_work(self) -> Iterator[Repository]:
        """A transaction behind the storage port (``pipeline.ports.UnitsOfWork``)."""
        with self.transaction() as session:
            yield self.repository(session)

    @contextmanager
    def read_connection(self) -> Iterator[Connection]:
        """A plain connection for a read of Core rows: no Session, no identity map; rolled back at the end."""
        with self.engine.connect() as connection:
            yield connection

    @contextmanager
    def read(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session:
            yield session

    def dispose(self) -> None:
        self.tokens.close()
        if self.issued_children.issuer is not None:
            self.issued_children.issuer.close()
        with self._write_lock or nullcontext():  # no group commit is under way on the kept connection
            writer, self._writer = self._writer, None
            if writer is not None:
                writer.close()
        self.engine.dispose()
