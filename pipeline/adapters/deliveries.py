"""Queries on delivery rows (one per notification and channel) for the relay, the callbacks and the API.

On PostgreSQL the relay claims due rows with ``FOR UPDATE SKIP LOCKED``, so several workers never claim one
row together; on SQLite the store's single writer does the same.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from pipeline.adapters import tables as t
from pipeline.domain.delivery import DeliveryState


def claim_due(session: Session, now: datetime, limit: int, *, postgres: bool) -> list[t.Delivery]:
    """Rows to work on now: new ones (to resolve), pending ones whose time has come, and ``sending`` ones whose
    lease ran out (a relay died mid-send: ambiguous)."""
    # New rows are written due at once, so one range on the (state, next_attempt_at) index finds them all.
    query = (select(t.Delivery)
             .where(col(t.Delivery.state).in_((DeliveryState.NEW, DeliveryState.PENDING, DeliveryState.SENDING)),
                    col(t.Delivery.next_attempt_at) <= now)
             .order_by(col(t.Delivery.next_attempt_at)).limit(limit))
    if postgres:
        query = query.with_for_update(skip_locked=True)
    return list(session.exec(query).all())


def rows_of(session: Session, notification_ids: Iterable[str]) -> dict[str, list[t.Delivery]]:
    ids = set(notification_ids)
    found: dict[str, list[t.Delivery]] = {i: [] for i in ids}
    if ids:
        for row in session.exec(select(t.Delivery).where(col(t.Delivery.notification_id).in_(ids))).all():
            found[row.notification_id].append(row)
    return found


def by_ids(session: Session, ids: Iterable[str]) -> list[t.Delivery]:
    wanted = list(ids)
    return list(session.exec(select(t.Delivery).where(col(t.Delivery.id).in_(wanted))).all()) if wanted else []


def by_provider_ref(session: Session, provider: str, reference: str, *, postgres: bool) -> t.Delivery | None:
    query = select(t.Delivery).where(t.Delivery.provider == provider, t.Delivery.provider_ref == reference)
    if postgres:
        query = query.with_for_update()
    return session.exec(query).first()


def for_notification(session: Session, notification_id: str) -> list[t.Delivery]:
    return list(session.exec(select(t.Delivery).where(t.Delivery.notification_id == notification_id)
                             .order_by(col(t.Delivery.position), col(t.Delivery.channel))).all())


def team_of_person(session: Session, role: str, email: str) -> str | None:
    """The allocated team of a worker, team manager or IRO, from the open involvements naming them."""
    column = {"worker": t.Involvement.worker_email, "team_manager": t.Involvement.manager_email,
              "iro": t.Involvement.iro_email}.get(role)
    if column is None:
        return None
    return session.exec(select(t.Involvement.team).where(col(column) == email, col(t.Involvement.ended_at).is_(None),
                                                         col(t.Involvement.team).is_not(None))
                        .order_by(col(t.Involvement.team)).limit(1)).first()


def waiting_retries(session: Session) -> int:
    return int(session.exec(select(func.count()).select_from(t.Delivery).where(
        col(t.Delivery.state) == DeliveryState.PENDING, col(t.Delivery.attempts) > 0)).one())


def summary(session: Session, notification_id: str) -> list[dict[str, object]]:
    """What the notification's detail shows: each channel's state, attempts and last attempt (no address)."""
    return [{"channel": row.channel, "status": row.state, "attempts": row.attempts,
             "last_attempt_at": row.last_attempt_at.isoformat() if row.last_attempt_at else None}
            for row in for_notification(session, notification_id)]
