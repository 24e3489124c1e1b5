"""Reads behind the API's record routes: an event's status, dead letters, deadlines, a child's missing
episodes with their deadlines, and the audit trail. Lists are keyset pages (``pipeline.adapters.paging``):
None for a ``before`` id that is unknown or out of scope."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from pipeline.adapters import paging as keysets
from pipeline.adapters import tables as t
from pipeline.adapters.scorecard import INTERNAL_KINDS

DEADLINE_STATES = ("overdue", "open", "closed")


def event_by_id(session: Session, event_id: str) -> t.Event | None:
    """The stored event (ids are stored in lower case)."""
    return session.exec(select(t.Event).where(t.Event.event_id == event_id)).first()


def dead_lettered(session: Session, event_id: str, producer_id: int | None = None) -> bool:
    """Whether an event with this id was rejected at intake (by this producer, when one is given)."""
    query = select(t.DeadLetter.id).where(t.DeadLetter.event_id == event_id)
    if producer_id is not None:
        query = query.where(t.DeadLetter.producer_id == producer_id)
    return session.exec(query.limit(1)).first() is not None


def work_waiting(session: Session, now: datetime) -> dict[str, int]:
    """What waits, for the metrics: events accepted and not yet processed, events held after their handler kept
    failing, and open deadlines already due (the overdue board's rows)."""
    accepted = select(func.count()).select_from(t.Event).where(t.Event.status == "accepted")
    return {
        "events_waiting": int(session.exec(accepted.where(col(t.Event.held_at).is_(None))).one()),
        "events_held": int(session.exec(accepted.where(col(t.Event.held_at).is_not(None))).one()),
        "deadlines_overdue": int(session.exec(select(func.count()).select_from(t.Deadline).where(
            t.Deadline.state == "open", col(t.Deadline.due_at) <= now,
            col(t.Deadline.kind).not_in(INTERNAL_KINDS))).one()),
    }


def recent_dead_letters(session: Session, limit: int) -> Sequence[t.DeadLetter]:
    """The newest dead letters (each with its reason, which names fields, never values)."""
    return session.exec(select(t.DeadLetter).order_by(col(t.DeadLetter.received_at).desc(),
                                                      col(t.DeadLetter.id).desc()).limit(limit)).all()


def deadline_by_id(session: Session, deadline_id: str) -> t.Deadline | None:
    return session.get(t.Deadline, deadline_id)


def deadlines_page(session: Session, state: str, now: datetime, *, limit: int,
                   before: str | None) -> keysets.Page[t.Deadline] | None:
    """Deadlines in one of ``DEADLINE_STATES`` (overdue: open and due by ``now``), newest first."""
    query = select(t.Deadline)
    if state == "overdue":
        query = query.where(t.Deadline.state == "open", col(t.Deadline.due_at) <= now)
    elif state in ("open", "closed"):
        query = query.where(t.Deadline.state == state)
    else:
        raise ValueError("state must be one of " + ", ".join(DEADLINE_STATES))
    return keysets.read_page(session, query, keysets.DEADLINES, limit=limit, before=before)


def deadlines_on(session: Session, subject_id: str) -> Sequence[t.Deadline]:
    """The deadlines watching one subject (a notification, an episode)."""
    return session.exec(select(t.Deadline).where(t.Deadline.subject_id == subject_id)).all()


def child_exists(session: Session, child_id: str) -> bool:
    return session.get(t.Child, child_id) is not None


def episodes_page(session: Session, child_id: str, *, limit: int,
                  before: str | None) -> keysets.Page[t.MissingEpisode] | None:
    """A child's missing episodes, newest first."""
    of_child = col(t.MissingEpisode.child_id) == child_id
    return keysets.read_page(session, select(t.MissingEpisode).where(of_child), keysets.EPISODES, limit=limit,
                             before=before, scope=(of_child,))


def audit_page(session: Session, subject_id: str, *, limit: int,
               before: str | None) -> keysets.Page[t.AuditEntry] | None:
    """The audit entries about one subject, newest first."""
    of_subject = col(t.AuditEntry.subject_id) == subject_id
    return keysets.read_page(session, select(t.AuditEntry).where(of_subject), keysets.AUDIT, limit=limit,
                             before=before, scope=(of_subject,))


def audit_trail(session: Session, subject_ids: Iterable[str]) -> Sequence[t.AuditEntry]:
    """Every audit entry about any of these subjects, oldest first."""
    return session.exec(select(t.AuditEntry).where(col(t.AuditEntry.subject_id).in_(list(subject_ids)))
                        .order_by(col(t.AuditEntry.at), col(t.AuditEntry.id))).all()
