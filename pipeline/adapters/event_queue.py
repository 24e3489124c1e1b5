"""Stored events waiting to be processed (new ones, ones due to be tried again, held ones), as plain records.

An accepted event is processed from its row. A handler failure leaves it ``accepted`` with
``next_attempt_at`` set (tried again then) or, after the last try, ``held_at`` set (run again only by
``safeguard events retry``). On PostgreSQL, rows are claimed with ``FOR UPDATE SKIP LOCKED`` so any number of
consumers (embedded, Kafka workers' retry timers, the retry command) process each event once.

The SQL adapter (pipeline/adapters/repository.py) reads events with Core statements built once here and hands
them out as ``EventRow`` records, not ORM objects: loading a batch of ORM rows, then flushing the processed
marks set on them through the ORM's unit of work, cost more than the rest of the batch's writes. What a service
sets on a record (processed, failed with its next try, held, the match decision) is written at the next write
point as UPDATEs of only the changed columns, one executemany per set of changed columns (``EventRows``, the
``CreatedRows`` of effect_rows.py keyed by ``event_id``); an event the Kafka worker stores itself is buffered and
inserted, as it is by then, with the batch's other new events in one statement.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, and_, bindparam, or_
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine

from pipeline.adapters import tables as t
from pipeline.adapters.driver_statements import DriverStatement
from pipeline.adapters.effect_rows import CreatedRows, _Watched
from pipeline.adapters.store_records import Event

EVENT: Table = t.Event.__table__  # type: ignore[attr-defined]


class EventRow(_Watched, Event):
    """An event this unit of work claimed, read or stored, watched for changes (``seq`` is None for one it
    stores until it is read again: the database numbers it)."""


class EventRows(CreatedRows):
    """The events of one unit of work, by event id: new ones inserted together (the database numbers them), read
    ones written back as UPDATEs of their changed columns."""

    def __init__(self) -> None:
        super().__init__(EVENT, key="event_id", numbered_by_database=("seq",))

    def read(self, rows: Any) -> list[EventRow]:
        """Rows read with Core, each as this unit of work's record of it (``CreatedRows.loaded``), made without
        ``EventRow.__init__``: a record's sixteen assignments each went through ``_Watched.__setattr__``, and a
        batch's claim made 64 of them."""
        records = []
        by_id = self.by_id
        for row in rows:
            values = row._asdict()
            key = values["event_id"]
            record = by_id.get(key)
            if record is None:
                record = object.__new__(EventRow)
                record.__dict__.update(values, _watcher=self.as_watcher)
                by_id[key] = record
                self._order.append(key)
                self._stored[key] = values
            records.append(record)
        return records


_DUE_AGAIN = and_(EVENT.c.next_attempt_at.is_not(None), EVENT.c.next_attempt_at <= bindparam("now"))
_DUE_NEW_OR_AGAIN = or_(EVENT.c.next_attempt_at.is_(None), _DUE_AGAIN)
_WAITING = sa_select(EVENT.c.seq).where(EVENT.c.status == "accepted", EVENT.c.held_at.is_(None))
# Built once: the consumer asks after every commit and on every poll, and building the statement cost more
# than running it.
_DUE = _WAITING.where(_DUE_NEW_OR_AGAIN).order_by(EVENT.c.seq).limit(bindparam("limit"))
_DUE_AGAIN_ONLY = _WAITING.where(_DUE_AGAIN).order_by(EVENT.c.seq).limit(bindparam("limit"))


def due_event_seqs(connection: Connection, now: datetime, limit: int, *, retries_only: bool = False) -> list[int]:
    """Accepted, not held events to process now, oldest first: new ones (unless ``retries_only``: on Kafka
    the agents bring new ones) and failed ones whose next attempt is due."""
    query = _DUE_AGAIN_ONLY if retries_only else _DUE
    return [seq for seq in connection.execute(query, {"now": now, "limit": limit}).scalars() if seq is not None]


def _locked(query: Any, postgres: bool, *, skip_locked: bool) -> Any:
    return query.with_for_update(skip_locked=skip_locked) if postgres else query


_CLAIM = sa_select(EVENT).where(EVENT.c.seq.in_(bindparam("seqs", expanding=True)), EVENT.c.status == "accepted") \
    .order_by(EVENT.c.seq)
_CLAIM_WAITING = sa_select(EVENT).where(EVENT.c.status == "accepted", EVENT.c.held_at.is_(None))
# Per (retries_only, postgres): PostgreSQL skips rows another consumer holds (it is processing them). Run on the
# driver's cursor (``DriverStatement``): one claim per batch, so at a few events a second (each its own batch)
# Core's execution around the query cost about as much as the query.
_CLAIM_DUE = {
    (retries_only, postgres): DriverStatement(_locked(
        _CLAIM_WAITING.where(_DUE_AGAIN if retries_only else _DUE_NEW_OR_AGAIN).order_by(EVENT.c.seq)
        .limit(bindparam("limit")), postgres, skip_locked=True))
    for retries_only in (False, True) for postgres in (False, True)
}
CLAIM = {postgres: _locked(_CLAIM, postgres, skip_locked=True) for postgres in (False, True)}
_BY_ID = sa_select(EVENT).where(EVENT.c.event_id.in_(bindparam("ids", expanding=True)))
# Per (postgres, lock): PostgreSQL waits for a transaction that holds one of them.
BY_ID = {(postgres, lock): _locked(_BY_ID, postgres and lock, skip_locked=False)
         for postgres in (False, True) for lock in (False, True)}
HELD_IDS = sa_select(EVENT.c.event_id).where(EVENT.c.status == "accepted", EVENT.c.held_at.is_not(None)) \
    .order_by(EVENT.c.seq)


def claim_due_events(connection: Connection, events: EventRows, now: datetime, limit: int, *,
                     retries_only: bool = False, postgres: bool) -> list[EventRow]:
    """What ``due_event_seqs`` finds, claimed at once in the caller's transaction, oldest first: one query where
    finding then claiming took two (and a connection of their own), which at a few events a second, each its
    own batch, was a tenth of the consumer's work. PostgreSQL: rows another consumer holds are skipped."""
    events.write(connection)  # the unit of work's own changes first, so the query sees them
    return events.read(_CLAIM_DUE[(retries_only, postgres)].rows(connection, {"now": now, "limit": limit}))


class CommitWatch:
    """Whether another connection committed to an SQLite database since the last look: ``PRAGMA data_version`` on
    a connection kept for it, outside any transaction (no lock, no snapshot held), a few microseconds a look. The
    embedded consumer looks every few milliseconds while idle, so events another process stores (``safeguard
    produce``) are seen at once, without a query for due events (let alone a write transaction) every time."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._connection: Any = None
        self._version: int | None = None

    @classmethod
    def over(cls, engine: Engine) -> CommitWatch | None:
        """A watch over ``engine``'s database, or None when it is not an SQLite file."""
        path = engine.url.database
        if engine.dialect.name != "sqlite" or not path or path == ":memory:":
            return None
        return cls(engine)

    def changed(self) -> bool:
        if self._connection is None:
            self._connection = self.engine.raw_connection()
        cursor = self._connection.cursor()
        try:
            version = int(cursor.execute("PRAGMA data_version").fetchone()[0])
        finally:
            cursor.close()
        changed = version != self._version
        self._version = version
        return changed

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def claim_events(connection: Connection, events: EventRows, seqs: Sequence[int], *,
                 postgres: bool) -> list[EventRow]:
    """The still-accepted events among ``seqs``, oldest first, locked for this transaction (PostgreSQL: rows
    another consumer holds are skipped; it is processing them)."""
    events.write(connection)
    return events.read(connection.execute(CLAIM[postgres], {"seqs": list(seqs)}))


def events_by_id(connection: Connection, events: EventRows, event_ids: Sequence[str], *, postgres: bool,
                 lock: bool = True) -> list[EventRow]:
    """Stored events with these ids (PostgreSQL: locked until the transaction ends, waiting for another
    transaction that holds one), and those this unit of work stores and has not written yet. An event this unit
    of work already holds is that record, as it holds it."""
    wanted = list(dict.fromkeys(event_ids))
    found = events.read(connection.execute(BY_ID[(postgres, lock)], {"ids": wanted}))
    seen = {event.event_id for event in found}
    found += [events.by_id[event_id] for event_id in wanted if event_id not in seen and event_id in events.by_id]
    return found


def held_event_ids(connection: Connection, events: EventRows) -> list[str]:
    """Every held event's id, oldest first."""
    events.write(connection)
    return [str(event_id) for event_id in connection.execute(HELD_IDS).scalars()]
