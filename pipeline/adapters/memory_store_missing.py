"""The in-memory fake's answers to the missing pathway's and casework's questions (pipeline/ports/episodes.py and
pipeline/ports/casework.py): a mixin of ``pipeline.adapters.memory_store.MemoryStore``, over its state.

Episodes and trigger meetings live in the fake's state beside its other records, so a unit of work or savepoint
that raises undoes them with everything else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pipeline.adapters.store_records import Deadline, Episode, Notification
from pipeline.domain.model import SCHOOL_ROLES, DeadlineKind, DeadlineState

if TYPE_CHECKING:
    from pipeline.adapters.memory_store import _State



@dataclass
class MemoryTriggerMeeting:
    child_id: str
    held_at: datetime
    outcome: str
    event_id: str


class MemoryEpisodes:
    """Episodes, trigger meetings and casework look-ups over the fake's state."""

    if TYPE_CHECKING:
        _state: _State

    # ---- episodes ----------------------------------------------------------------------------------
    def episode(self, episode_id: str) -> Episode | None:
        return self._state.episodes.get(episode_id)

    def episode_for_update(self, episode_id: str) -> Episode:
        row = self._state.episodes.get(episode_id)
        if row is None:
            row = self._state.episodes[episode_id] = Episode(episode_id, updated_at=datetime.now(UTC))
        return row

    def episodes_for_update(self, episode_ids: Sequence[str]) -> list[Episode]:
        return [self.episode_for_update(episode_id) for episode_id in dict.fromkeys(episode_ids)]

    def episodes_of_child(self, child_id: str) -> Sequence[Episode]:
        return [row for row in self._state.episodes.values() if row.child_id == child_id]

    def read_children_ahead(self, child_ids: Sequence[str]) -> None:
        """Nothing to read ahead: every read here is in memory."""

    # ---- trigger meetings --------------------------------------------------------------------------
    def open_trigger_meeting(self, child_id: str) -> Deadline | None:
        return next((d for d in self._state.deadlines.values() if d.kind == DeadlineKind.TRIGGER_MEETING
                     and d.child_id == child_id and d.state == DeadlineState.OPEN), None)

    def last_trigger_meeting_held(self, child_id: str) -> datetime | None:
        return max((m.held_at for m in self._state.trigger_meetings.values() if m.child_id == child_id), default=None)

    def add_trigger_meeting(self, child_id: str, held_at: datetime, outcome: str, event_id: str) -> None:
        self._state.trigger_meetings[event_id] = MemoryTriggerMeeting(child_id, held_at, outcome, event_id)

    def rebind_deadline(self, deadline: Any, child_id: str) -> None:
        # The service re-binds a trigger meeting only when the child has none pending (the SQL adapter's partial
        # unique index would refuse a second one; the fake's add_deadline refuses it too).
        deadline.child_id = child_id

    def first_audit_reason(self, subject_id: str, action: str) -> str | None:
        return next((line.reason for line in self._state.audit
                     if line.subject_id == subject_id and line.action == action), None)

    # ---- casework ----------------------------------------------------------------------------------
    def school_copies(self, notification: Any) -> Sequence[Notification]:
        if notification.recipient_role not in SCHOOL_ROLES or notification.school_urn is None:
            return [notification]
        return [n for n in self._state.notifications.values()
                if (n.deadline_id == notification.deadline_id if notification.deadline_id else n.id == notification.id)
                and n.recipient_role in SCHOOL_ROLES and n.school_urn == notification.school_urn]

    def open_deadline_of_event(self, event_id: str, kind: str) -> Deadline | None:
        return next((d for d in self._state.deadlines.values()
                     if d.event_id == event_id and d.kind == kind and d.state == DeadlineState.OPEN), None)

    def notifications_of_event(self, event_id: str) -> Sequence[Notification]:
        return [n for n in self._state.notifications.values() if n.event_id == event_id]
