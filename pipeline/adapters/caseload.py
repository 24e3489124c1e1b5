"""Queries behind a worker's caseload: the children allocated to them, their missing episodes with the
deadlines on them, and the worker's notifications about each child."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import and_, or_
from sqlmodel import Session, col, select

from pipeline.adapters import tables as t
from pipeline.adapters.notifications import notification_scope
from pipeline.ports.records import UserRecord


def involvements_of(session: Session, worker_email: str) -> Sequence[t.Involvement]:
    return session.exec(select(t.Involvement).where(t.Involvement.worker_email == worker_email,
                                                    col(t.Involvement.ended_at).is_(None))
                        .order_by(col(t.Involvement.family_name), col(t.Involvement.given_name))).all()


def person_keys(involvement: t.Involvement) -> list[str]:
    """The keys the pipeline may know this child by (the same forms as the matcher's person keys)."""
    keys = []
    if involvement.upn:
        keys.append(f"upn:{involvement.upn}")
    if involvement.nhs_number:
        keys.append(f"nhs:{involvement.nhs_number}")
    keys.append(f"involvement:{involvement.row_key}")
    return keys


def child_ids(session: Session, keys: Iterable[str]) -> dict[str, str]:
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    return {c.person_key: c.child_id for c in session.exec(select(t.Child).where(
        col(t.Child.person_key).in_(wanted))).all()}


EPISODES_KEPT = 200  # the newest episodes of a caseload, beside every one with a deadline still open
NOTIFICATIONS_KEPT = 500  # the newest notifications, beside every one not yet acknowledged


def episodes_of(session: Session, ids: Iterable[str]) -> list[t.MissingEpisode]:
    """These children's newest episodes and, however old, every one with a deadline still open, newest first."""
    wanted = sorted(set(ids))
    if not wanted:
        return []
    newest = session.exec(select(t.MissingEpisode).where(col(t.MissingEpisode.child_id).in_(wanted))
                          .order_by(col(t.MissingEpisode.reported_at).desc()).limit(EPISODES_KEPT)).all()
    still_open = select(t.Deadline.subject_id).where(t.Deadline.state == "open", col(t.Deadline.child_id).in_(wanted))
    opened = session.exec(select(t.MissingEpisode).where(col(t.MissingEpisode.child_id).in_(wanted),
                                                         col(t.MissingEpisode.episode_id).in_(still_open))).all()
    episodes = {e.episode_id: e for e in [*newest, *opened]}
    return sorted(episodes.values(), reverse=True,  # an episode found before it was reported: last
                  key=lambda e: (e.reported_at is not None, e.reported_at.timestamp() if e.reported_at else 0.0))


def deadlines_of(session: Session, episode_ids: Iterable[str], ids: Iterable[str]) -> Sequence[t.Deadline]:
    """Deadlines on these episodes, and trigger meetings for these children."""
    episodes, children = sorted(set(episode_ids)), sorted(set(ids))
    if not episodes and not children:
        return []
    return session.exec(select(t.Deadline).where(or_(
        col(t.Deadline.subject_id).in_(episodes),
        and_(col(t.Deadline.kind) == "trigger_meeting", col(t.Deadline.child_id).in_(children))))
        .order_by(col(t.Deadline.due_at))).all()


def notifications_about(session: Session, user: UserRecord, ids: Iterable[str]) -> Sequence[tuple[t.Notification, str]]:
    """This user's notifications about these children, newest first, with the child's id: the newest, and every one
    not yet acknowledged however old."""
    wanted = sorted(set(ids))
    if not wanted:
        return []
    about = (select(t.Notification, t.Event.child_id)
             .join(t.Event, col(t.Event.event_id) == col(t.Notification.event_id))
             .where(notification_scope(user), col(t.Event.child_id).in_(wanted)))
    newest = session.exec(about.order_by(col(t.Notification.created_at).desc()).limit(NOTIFICATIONS_KEPT)).all()
    waiting = session.exec(about.where(col(t.Notification.acknowledged_at).is_(None))).all()
    rows = {n.id: (n, child) for n, child in [*newest, *waiting]}
    return sorted(((n, str(child)) for n, child in rows.values()), key=lambda r: r[0].created_at, reverse=True)


def episode(session: Session, episode_id: str) -> t.MissingEpisode | None:
    return session.get(t.MissingEpisode, episode_id)
