"""Queries over stored events waiting to be processed: new ones, ones due to be tried again, held ones.

An accepted event is processed from its row. A handler failure leaves it ``accepted`` with
``next_attempt_at`` set (tried again then) or, after the last try, ``held_at`` set (run again only by
``safeguard events retry``). On PostgreSQL, rows are claimed with ``FOR UPDATE SKIP LOCKED`` so any number of
consumers (embedded, Kafka workers' retry timers, the retry command) process each event once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, or_
from sqlmodel import Session, col, select

from pipeline.adapters import tables as t


def due_event_seqs(session: Session, now: datetime, limit: int, *, retries_only: bool = False) -> list[int]:
    """Accepted, not held events to process now, oldest first: new ones (unless ``retries_only``: on Kafka
    the agents bring new ones) and failed ones whose next attempt is due."""
    due_again = and_(col(t.Event.next_attempt_at).is_not(None), col(t.Event.next_attempt_at) <= now)
    waiting = due_again if retries_only else or_(col(t.Event.next_attempt_at).is_(None), due_again)
    rows = session.exec(select(t.Event.seq).where(t.Event.status == "accepted", col(t.Event.held_at).is_(None),
                                                  waiting).order_by(col(t.Event.seq)).limit(limit)).all()
    return [seq for seq in rows if seq is not None]


def claim_events(session: Session, seqs: Sequence[int], *, postgres: bool) -> dict[int, t.Event]:
    """The still-accepted events among ``seqs``, locked for this transaction (PostgreSQL: rows another
    consumer holds are skipped; it is processing them)."""
    query = select(t.Event).where(col(t.Event.seq).in_(seqs), t.Event.status == "accepted")
    if postgres:
        query = query.with_for_update(skip_locked=True)
    return {event.seq: event for event in session.exec(query) if event.seq is not None}


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
