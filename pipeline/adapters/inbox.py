"""Queries behind the people's inboxes: a user's notifications, and what happened on their deadlines.

Scope (who may see which notification) comes from ``pipeline.adapters.notifications``; these functions only add
the rows an inbox item shows beside it (its deadline, the reminders and escalations fired on it, and the
other copies of a school's alert).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.selectable import Join
from sqlmodel import Session, col, select

from pipeline.adapters import tables as t
from pipeline.adapters.notifications import notification_scope
from pipeline.domain.model import SCHOOL_ROLES
from pipeline.ports.records import NotificationRecord, UserRecord

NEWEST_KEPT = 1000  # the newest notifications an inbox lists beside every one still waiting on its deadline
WAITING_KEPT = 5000  # a bound on those: a team has far fewer open deadlines (a manager sees every one)


def notifications_in_scope(session: Session, user: UserRecord, limit: int = NEWEST_KEPT) -> Sequence[t.Notification]:
    """The user's newest notifications."""
    return session.exec(select(t.Notification).where(notification_scope(user))
                        .order_by(col(t.Notification.created_at).desc()).limit(limit)).all()


class _DrivingJoin(Join):
    """An inner join whose left side SQLite reads first (``CROSS JOIN ... ON``); PostgreSQL plans it as any join."""

    inherit_cache = True


@compiles(_DrivingJoin, "sqlite")
def _cross_join(join: _DrivingJoin, compiler: Any, **kw: Any) -> str:
    return str(compiler.visit_join(join, **kw)).replace(" JOIN ", " CROSS JOIN ", 1)


def on_open_deadlines(session: Session, user: UserRecord) -> Sequence[t.Notification]:
    """Every notification in the user's scope on a deadline still open, however old (acknowledged or not, so each
    case is read whole): an inbox lists these whatever came after them, so an open case never drops off the end
    of a busy team's list. Read from the open deadlines (SQLite, without statistics, would rather read every
    notification the school or team was ever sent through the scope's index), the soonest due first."""
    deadline, notification = t.Deadline.__table__, t.Notification.__table__  # type: ignore[attr-defined]
    query = (select(t.Notification)
             .select_from(_DrivingJoin(deadline, notification, notification.c.deadline_id == deadline.c.id))
             .where(deadline.c.state == "open", notification_scope(user))
             .order_by(deadline.c.due_at, deadline.c.id))
    return session.exec(query.limit(WAITING_KEPT)).all()


def deadlines_by_id(session: Session, ids: Iterable[str]) -> dict[str, t.Deadline]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    return {d.id: d for d in session.exec(select(t.Deadline).where(col(t.Deadline.id).in_(wanted))).all()}


def fired_on(session: Session, deadline_ids: Iterable[str]) -> Sequence[t.Notification]:
    """Reminders and escalations fired on these deadlines, to anyone (the inbox shows only who and when)."""
    wanted = sorted(set(deadline_ids))
    if not wanted:
        return []
    return session.exec(select(t.Notification).where(col(t.Notification.deadline_id).in_(wanted),
                                                     col(t.Notification.kind).in_(("reminder", "escalation")))
                        .order_by(col(t.Notification.created_at))).all()


def school_copies(session: Session, row: NotificationRecord) -> Sequence[NotificationRecord]:
    """Every copy of a school's alert or reminder (DSL and deputy, on the same deadline): one case for the school."""
    if row.recipient_role not in SCHOOL_ROLES or row.school_urn is None:
        return [row]
    same = col(t.Notification.deadline_id) == row.deadline_id if row.deadline_id else \
        col(t.Notification.id) == row.id
    # By the deadline alone (its handful of notifications), role and school checked here: with them in the query,
    # SQLite chose ix_notification_school_urn and read every notification the school was ever sent.
    return [copy for copy in session.exec(select(t.Notification).where(same)).all()
            if copy.recipient_role in SCHOOL_ROLES and copy.school_urn == row.school_urn]
