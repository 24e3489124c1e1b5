"""Who may see what: the scope rules of the contract, as query filters.

A DSL sees its own school's notifications; a worker their caseload (notifications addressed to them);
a team user its team's; a manager the partnership's. Anything out of scope is answered exactly as if it
did not exist (404).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, false, true
from sqlmodel import Session, col, select

from pipeline.adapters import tables as t
from pipeline.domain.model import Role

NOTIFICATION_READERS = {Role.DSL, Role.WORKER, Role.TEAM, Role.MANAGER}


def notification_scope(user: t.User) -> Any:
    """A WHERE clause selecting the notifications this user may see.

    A withheld notification has not been sent: only managers see it until the front door releases it.
    """
    if user.role == Role.MANAGER:
        return true()
    sent = col(t.Notification.status) != "withheld"
    if user.role == Role.DSL:
        return and_(sent, col(t.Notification.recipient_role).in_(("dsl", "deputy_dsl")),
                    col(t.Notification.school_urn) == user.school_urn)
    if user.role == Role.WORKER:
        return and_(sent, col(t.Notification.recipient_role).in_(("worker", "team_manager", "iro")),
                    col(t.Notification.recipient_ref) == user.email)
    if user.role == Role.TEAM:
        return and_(sent, col(t.Notification.recipient_role) == user.team,
                    col(t.Notification.recipient_ref) == user.team)
    return false()


def may_acknowledge(user: t.User, row: t.Notification) -> bool:
    """Only the recipients themselves acknowledge (a manager watches; it does not acknowledge for them)."""
    if user.role == Role.DSL:
        return row.recipient_role in ("dsl", "deputy_dsl") and row.school_urn == user.school_urn
    if user.role == Role.WORKER:
        return row.recipient_ref == user.email and row.recipient_role in ("worker", "team_manager", "iro")
    if user.role == Role.TEAM:
        return row.recipient_role == user.team
    return False


def visible_notification(session: Session, user: t.User, notification_id: str) -> t.Notification | None:
    """The notification if this user may see it; None when it does not exist or is out of scope alike."""
    return session.exec(select(t.Notification).where(and_(col(t.Notification.id) == notification_id,
                                                          notification_scope(user)))).first()
