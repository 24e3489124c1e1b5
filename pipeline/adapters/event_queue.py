"""Queries over stored events waiting to be processed: new ones, ones due to be tried again, held ones.

An accepted event is processed from its row. A handler failure leaves it ``accepted`` with
``next_attempt_at`` set (tried again then) or, after the last try, ``held_at`` set (run again only by
``safeguard events retry``). On PostgreSQL, rows are claimed with ``FOR UPDATE SKIP LOCKED`` so any number of
consumers (embedded, Kafka workers' retry timers, the retry command) process each event once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, and_, bindparam, or_
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from pipeline.adapters import tables as t

EVENT = t.Event.__table__  # type: ignore[attr-defined]

_DUE_AGAIN = and_(EVENT.c.next_attempt_at.is_not(None), EVENT.c.next_attempt_at <= bindparam("now"))
_WAITING = sa_select(EVENT.c.seq).where(EVENT.c.status == "accepted", EVENT.c.held_at.is_(None))
# Built once: the consumer asks after every commit and on every poll, and building the statement cost more
# than running it.
_DUE = _WAITING.where(or_(EVENT.c.next_attempt_at.is_(None), _DUE_AGAIN)).order_by(EVENT.c.seq) \
    .limit(bindparam("limit"))
_DUE_AGAIN_ONLY = _WAITING.where(_DUE_AGAIN).order_by(EVENT.c.seq).limit(bindparam("limit"))


def due_event_seqs(connection: Connection, now: datetime, limit: int, *, retries_only: bool = False) -> list[int]:
    """Accepted, not held events to process now, oldest first: new ones (unless ``retries_only``: on Kafka
    the agents bring new ones) and failed ones whose next attempt is due."""
    query = _DUE_AGAIN_ONLY if retries_only else _DUE
    return [seq for seq in connection.execute(query, {"now": now, "limit": limit}).scalars() if seq is not None]


_CLAIM = select(t.Event).where(col(t.Event.seq).in_(bindparam("seqs", expanding=True)), t.Event.status == "accepted")
_CLAIM_SKIP_LOCKED = _CLAIM.with_for_update(skip_locked=True)
_DUE_NOW = or_(col(t.Event.next_attempt_at).is_(None), col(t.Event.next_attempt_at) <= bindparam("now"))
_DUE_AGAIN_NOW = and_(col(t.Event.next_attempt_at).is_not(None), col(t.Event.next_attempt_at) <= bindparam("now"))
_CLAIM_WAITING = select(t.Event).where(t.Event.status == "accepted", col(t.Event.held_at).is_(None))
_CLAIM_DUE = {
    (retries_only, postgres): (lambda query: query.with_for_update(skip_locked=True) if postgres else query)(
        _CLAIM_WAITING.where(_DUE_AGAIN_NOW if retries_only else _DUE_NOW).order_by(col(t.Event.seq))
        .limit(bindparam("limit")))
    for retries_only in (False, True) for postgres in (False, True)
}


def claim_events(session: Session, seqs: Sequence[int], *, postgres: bool) -> dict[int, t.Event]:
    """The still-accepted events among ``seqs``, locked for this transaction (PostgreSQL: rows another
    consumer holds are skipped; it is processing them)."""
    query = _CLAIM_SKIP_LOCKED if postgres else _CLAIM
    return {event.seq: event for event in session.exec(query, params={"seqs": list(seqs)})
            if event.seq is not None}


def claim_due_events(session: Session, now: datetime, limit: int, *, retries_only: bool = False,
                     postgres: bool) -> list[t.Event]:
    """What ``due_event_seqs`` finds, claimed at once in the caller's transaction, oldest first: one query where
    finding then claiming took two (and a connection of their own), which at a few events a second, each its
    own batch, was a tenth of the consumer's work. PostgreSQL: rows another consumer holds are skipped."""
    query = _CLAIM_DUE[(retries_only, postgres)]
    return [event for event in session.exec(query, params={"now": now, "limit": limit}) if event.seq is not None]


def events_by_id(session: Session, event_ids: Sequence[str], *, postgres: bool, lock: bool = True) -> list[t.Event]:
    """Stored events with these ids (PostgreSQL: locked until the transaction ends, waiting for another
    transaction that holds one)."""
    query = select(t.Event).where(col(t.Event.event_id).in_(event_ids))
    if postgres and lock:
        query = query.with_for_update()
    return list(session.exec(query).all())


def held_event_ids(session: Session) -> list[str]:
    """Every held event's id, oldest first."""
    return [event.event_id for event in held_events_in_order(session)]


def held_events_in_order(session: Session) -> list[t.Event]:
    """Every held event, oldest first."""
    return list(session.exec(select(t.Event).where(
        t.Event.status == "accepted", col(t.Event.held_at).is_not(None)).order_by(col(t.Event.seq))).all())
