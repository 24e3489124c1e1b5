"""Issuing a new child's id on PostgreSQL apart from the unit of work that meets the child, as a sequence hands
out numbers.

Inside a batch's transaction the child row's insert held its unique-index entry until the whole batch committed:
a second worker's batch meeting the same new person waited for all of it, and two batches meeting two new people
in opposite orders deadlocked, were rolled back and went again record by record (two workers drained a backlog at
a tenth of one worker's rate; bench/results/kafka.md). Issued apart, the row is committed at once and nobody waits
longer than one insert.

An id for a person key is no effect of the event: a batch that rolls back leaves it, and the batch's next try
(by this worker or another) gets the same id. One connection per store, kept and used under a lock (one short
statement each), in autocommit mode: the insert ``ON CONFLICT DO NOTHING`` is its own transaction, one round
trip, no pool check-out, BEGIN or COMMIT around it. It is never handed back to the pool (invalidated instead).

The connection commits asynchronously (``synchronous_commit = off`` for it alone; the server's setting stays on),
and this loses nothing that was acknowledged: a child row matters only to a unit of work that stores the child's
id, and that unit of work's own commit is synchronous, which flushes the write-ahead log up to its commit record,
the earlier commit of the child row included (PostgreSQL writes and flushes the log in order). A crash before that
loses the batch as well, and its records come again from Kafka.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import Table, bindparam
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection, Engine

from pipeline.adapters import tables as t
from pipeline.adapters.driver_statements import DriverStatement, json_value

CHILD: Table = t.Child.__table__  # type: ignore[attr-defined]
_ISSUE = DriverStatement(pg_insert(CHILD).on_conflict_do_nothing().returning(CHILD.c.child_id))
_ISSUED = DriverStatement(sa_select(CHILD.c.child_id).where(CHILD.c.person_key == bindparam("person_key")))
# A batch's new children in one statement (one JSON document, the same text every time, so prepared once), and
# those another worker issued first read back in one more.
_ISSUE_MANY = ("INSERT INTO child (child_id, person_key, created_at) SELECT child_id, person_key, created_at"
               " FROM json_populate_recordset(NULL::child, %s::json) ORDER BY person_key"
               " ON CONFLICT DO NOTHING RETURNING child_id")
_ISSUED_MANY = "SELECT person_key, child_id FROM child WHERE person_key = ANY(%s)"


class ChildIdIssuer:
    """``issue(child_id, person_key, now)``: the id stored for ``person_key``, ``child_id`` if it is new; committed
    when it returns."""

    def __init__(self, engine: Engine) -> None:
        assert engine.dialect.name == "postgresql", "SQLite has one writer: its ids are issued in the unit of work"
        self._engine = engine
        self._lock = threading.Lock()
        self._connection: Connection | None = None

    def issue(self, child_id: str, person_key: str, now: datetime) -> str:
        with self._lock:
            connection = self._kept()
            try:
                row = _ISSUE.first(connection, {"child_id": child_id, "person_key": person_key, "created_at": now})
                if row is None:  # issued before (or by another worker a moment ago, committed by now): theirs
                    row = _ISSUED.first(connection, {"person_key": person_key})
            except Exception:
                self._discard()  # a lost connection (the database restarted): the next call opens another
                raise
        return str(row.child_id)

    def issue_many(self, fresh: Mapping[str, str], now: datetime) -> dict[str, str]:
        """``issue`` of each person key in ``fresh`` (the id to give it if new as its value), together: the id stored
        for each, committed when it returns."""
        rows = [{"child_id": child_id, "person_key": key, "created_at": now} for key, child_id in fresh.items()]
        with self._lock:
            connection = self._kept()
            try:
                inserted = {row[0] for row in connection.exec_driver_sql(
                    _ISSUE_MANY, (json.dumps(rows, default=json_value),))}
                theirs = [key for key, child_id in fresh.items() if child_id not in inserted]
                before: dict[str, str] = {}
                if theirs:
                    before = dict(connection.exec_driver_sql(_ISSUED_MANY, (theirs,)).all())
            except Exception:
                self._discard()
                raise
        return {key: child_id if child_id in inserted else str(before[key]) for key, child_id in fresh.items()}

    def _kept(self) -> Connection:
        """The connection kept for issuing, in autocommit mode: each statement is its own transaction."""
        if self._connection is None:
            connection = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            connection.exec_driver_sql("SET synchronous_commit = off")
            self._connection = connection
        return self._connection

    def _discard(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.invalidate()  # never back to the pool: its session commits asynchronously
            connection.close()

    def close(self) -> None:
        with self._lock:
            self._discard()
