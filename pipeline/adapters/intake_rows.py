"""The intake's queries: which of a batch's event ids are stored already, and storing a batch of new events.

Plain Core statements over the ``event`` table, no ORM objects: the intake is the hot path of every event.
One query answers a whole batch's ids, and one multi-row insert stores its new events, in the caller's
transaction (one commit, one fsync, for a whole group of HTTP requests or a batch of ``safeguard produce``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, insert, select

from pipeline.adapters import tables as t

EVENTS = t.Event.__table__  # type: ignore[attr-defined]
# SQLite allows up to 32,766 bound parameters a statement; a batch's ids are looked up in chunks well under it.
IDS_PER_QUERY = 900


@dataclass(frozen=True)
class IntakeRow:
    """An event as the intake stores it, or as it finds it stored (then ``status`` is the current one)."""

    event_id: str
    event_type: str
    producer_id: int | None
    content_hash: str
    record_json: str = ""
    status: str = "accepted"


def stored_events(connection: Connection, event_ids: Iterable[str]) -> dict[str, IntakeRow]:
    """The stored events among ``event_ids``, by id (without their record: the intake never needs it)."""
    ids = list(dict.fromkeys(event_ids))
    found: dict[str, IntakeRow] = {}
    for start in range(0, len(ids), IDS_PER_QUERY):
        rows = connection.execute(select(EVENTS.c.event_id, EVENTS.c.event_type, EVENTS.c.producer_id,
                                         EVENTS.c.content_hash, EVENTS.c.status)
                                  .where(EVENTS.c.event_id.in_(ids[start:start + IDS_PER_QUERY])))
        for row in rows:
            found[row.event_id] = IntakeRow(row.event_id, row.event_type, row.producer_id, row.content_hash,
                                             status=row.status)
    return found


def insert_events(connection: Connection, rows: Sequence[IntakeRow], received_at: datetime) -> None:
    """Store new events as ``accepted``, all in one statement (raises IntegrityError for a stored event_id)."""
    if not rows:
        return
    connection.execute(insert(EVENTS), [
        {"event_id": row.event_id, "event_type": row.event_type, "producer_id": row.producer_id,
         "content_hash": row.content_hash, "record_json": row.record_json, "received_at": received_at,
         "status": "accepted", "attempts": 0}
        for row in rows])
