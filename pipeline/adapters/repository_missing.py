"""The SQL answers to the missing pathway's and casework's questions (pipeline/ports/episodes.py and
pipeline/ports/casework.py): a mixin of ``pipeline.adapters.repository.Repository``, over its session."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, bindparam, insert
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from pipeline.adapters import tables as t
from pipeline.adapters.effect_rows import DEADLINE, CreatedRows, DeadlineRow
from pipeline.adapters.inbox import school_copies
from pipeline.ports.records import NotificationRecord

TRIGGER_MEETING: Table = t.TriggerMeeting.__table__  # type: ignore[attr-defined]
_LAST_MEETING = sa_select(TRIGGER_MEETING.c.held_at).where(TRIGGER_MEETING.c.child_id == bindparam("child_id")) \
    .order_by(TRIGGER_MEETING.c.held_at.desc()).limit(1)


class EpisodeQueries:
    """Episodes, trigger meetings and casework look-ups, in the repository's transaction."""

    if TYPE_CHECKING:
        session: Session
        postgres: bool

        _deadlines: CreatedRows
        _notifications: CreatedRows

        def insert_once(self, row: Any) -> bool: ...

        def _write_created(self) -> None: ...

        def deadline_rows(self, *where: Any, order: bool = False, limit: int | None = None,
                          skip_locked: bool = False) -> list[DeadlineRow]: ...

    # ---- episodes ----------------------------------------------------------------------------------
    def episode(self, episode_id: str) -> t.MissingEpisode | None:
        return self.session.get(t.MissingEpisode, episode_id)

    def episode_for_update(self, episode_id: str) -> t.MissingEpisode:
        query = select(t.MissingEpisode).where(t.MissingEpisode.episode_id == episode_id)
        if self.postgres:
            query = query.with_for_update()
        row = self.session.exec(query).first()
        if row is None:
            row = t.MissingEpisode(episode_id=episode_id)
            if not self.insert_once(row):  # another worker created it a moment ago: take theirs, locked
                row = self.session.exec(query).one()
        return row

    def episodes_of_child(self, child_id: str) -> Sequence[t.MissingEpisode]:
        return self.session.exec(select(t.MissingEpisode).where(t.MissingEpisode.child_id == child_id)).all()

    # ---- trigger meetings --------------------------------------------------------------------------
    def open_trigger_meeting(self, child_id: str) -> DeadlineRow | None:
        found = self.deadline_rows(DEADLINE.c.kind == "trigger_meeting", DEADLINE.c.child_id == child_id,
                                   DEADLINE.c.state == "open", limit=1)
        return found[0] if found else None

    def last_trigger_meeting_held(self, child_id: str) -> datetime | None:
        # Core on the session's connection: no autoflush of the batch's episodes for a read of another table.
        held: datetime | None = self.session.connection().execute(_LAST_MEETING, {"child_id": child_id}).scalar()
        return held

    def add_trigger_meeting(self, child_id: str, held_at: datetime, outcome: str, event_id: str) -> None:
        # Written at once (not an ORM row flushed later), so ``last_trigger_meeting_held`` reads it without a flush.
        self.session.connection().execute(insert(TRIGGER_MEETING), {
            "child_id": child_id, "held_at": held_at, "outcome": outcome, "event_id": event_id})

    def rebind_deadline(self, deadline: Any, child_id: str) -> None:
        deadline.child_id = child_id
        self._write_created()  # at once: the partial unique index now guards the child's one pending meeting

    def first_audit_reason(self, subject_id: str, action: str) -> str | None:
        return self.session.exec(select(t.AuditEntry.reason).where(
            t.AuditEntry.subject_id == subject_id, t.AuditEntry.action == action)
            .order_by(col(t.AuditEntry.id))).first()

    # ---- casework ----------------------------------------------------------------------------------
    def school_copies(self, notification: NotificationRecord) -> Sequence[NotificationRecord]:
        self._write_created()
        return self._notifications.known(school_copies(self.session, notification))

    def open_deadline_of_event(self, event_id: str, kind: str) -> DeadlineRow | None:
        found = self.deadline_rows(DEADLINE.c.event_id == event_id, DEADLINE.c.kind == kind,
                                   DEADLINE.c.state == "open", limit=1)
        return found[0] if found else None

    def notifications_of_event(self, event_id: str) -> Sequence[Any]:
        self._write_created()
        return self._notifications.known(self.session.exec(
            select(t.Notification).where(t.Notification.event_id == event_id)).all())

    def person_key_of(self, child_id: str) -> str | None:
        child = self.session.get(t.Child, child_id)
        return child.person_key if child is not None else None
