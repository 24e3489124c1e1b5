"""Queries on notifications by who asks: the contract's scope rules as WHERE clauses, one notification in a
caller's scope, a page of them, an event's notifications and those told about a deadline.

A DSL sees its own school's notifications; a worker their caseload (notifications addressed to them); a team
user its team's; a manager the partnership's. A withheld notification has not been sent: only managers see it
until the front door releases it. Anything out of scope is answered exactly as if it did not exist.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import and_, false, or_, true
from sqlmodel import Session, col, select

from pipeline.adapters import paging as keysets
from pipeline.adapters import tables as t
from pipeline.domain.model import CASELOAD_ROLES, SCHOOL_ROLES, Role
from pipeline.ports.records import UserRecord


def notification_scope(user: UserRecord) -> Any:
    """A WHERE clause selecting the notifications this user may see."""
    if user.role == Role.MANAGER:
        return true()
    sent = col(t.Notification.status) != "withheld"
    if user.role == Role.DSL:
        return and_(sent, col(t.Notification.recipient_role).in_(SCHOOL_ROLES),
                    col(t.Notification.school_urn) == user.school_urn)
    if user.role == Role.WORKER:
        return and_(sent, col(t.Notification.recipient_role).in_(CASELOAD_ROLES),
                    col(t.Notification.recipient_ref) == user.email)
    if user.role == Role.TEAM:
        return and_(sent, col(t.Notification.recipient_role) == user.team,
                    col(t.Notification.recipient_ref) == user.team)
    return false()


def visible_notification(session: Session, user: UserRecord, notification_id: str) -> t.Notification | None:
    """The notification if this user may see it; None when it does not exist or is out of scope alike."""
    return session.exec(select(t.Notification).where(and_(col(t.Notification.id) == notification_id,
                                                          notification_scope(user)))).first()


def notifications_page(session: Session, user: UserRecord, status: str | None, *, limit: int,
                       before: str | None) -> keysets.Page[t.Notification] | None:
    """A page of the notifications in the user's scope (of one status, if given), newest first; None when
    ``before`` is unknown or out of scope."""
    query = select(t.Notification).where(notification_scope(user))
    if status:
        query = query.where(t.Notification.status == status)
    return keysets.read_page(session, query, keysets.NOTIFICATIONS, limit=limit, before=before,
                             scope=(notification_scope(user),))


def notifications_of_event(session: Session, event_id: str) -> Sequence[t.Notification]:
    """Every notification an event caused, newest first."""
    return session.exec(select(t.Notification).where(t.Notification.event_id == event_id)
                        .order_by(col(t.Notification.created_at).desc())).all()


def told_about_deadline(session: Session, deadline: t.Deadline) -> Sequence[t.Notification]:
    """The notifications fired on a deadline, and the one it watches, oldest first."""
    return session.exec(select(t.Notification).where(or_(
        col(t.Notification.deadline_id) == deadline.id, col(t.Notification.id) == deadline.subject_id))
        .order_by(col(t.Notification.created_at))).all()


def notifications_by_id(session: Session, ids: Iterable[str]) -> dict[str, t.Notification]:
    """The notifications with these ids (ORM rows), by id."""
    wanted = set(ids)
    if not wanted:
        return {}
    return {n.id: n for n in session.exec(select(t.Notification).where(col(t.Notification.id).in_(wanted))).all()}
