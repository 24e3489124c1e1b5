"""The missing pathway's part of the store port: episodes, trigger meetings and the deadlines they own.

The service (pipeline/service/missing.py) asks these named questions and gives these commands; the SQL
adapter (pipeline/adapters/repository_missing.py) and the in-memory fake
(pipeline/adapters/memory_store_missing.py) answer them. Records handed out are live: a change to one of
their attributes is stored with the caller's transaction, as every record of the port is.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from pipeline.ports.records import DeadlineRecord


class EpisodeRecord(Protocol):
    """One missing episode as stored: the fold of its events (see pipeline/domain/missing.py) plus what the
    service keeps beside it (the report's event, the force, the child it is linked to)."""

    episode_id: str
    child_id: str | None
    force_code: str | None
    reported_at: datetime | None
    last_seen_at: datetime | None
    missing_from: str | None
    risk_grade: str | None
    risk_graded_at: datetime | None
    exploitation_flags: str  # JSON list of flags, sorted
    found_at: datetime | None
    returned_to: str | None
    return_interview_outcome: str | None
    return_interview_recorded_at: datetime | None
    graded_high_at: datetime | None
    flagged_at: datetime | None
    report_event_id: str | None
    updated_at: datetime


class EpisodeStore(Protocol):
    """Named questions and commands of the missing pathway."""

    def episode(self, episode_id: str) -> EpisodeRecord | None:
        """The episode, or None if no event of it was ever processed."""
        ...

    def episode_for_update(self, episode_id: str) -> EpisodeRecord:
        """The episode, created empty on first sight, locked for this transaction (on PostgreSQL a row lock:
        two workers folding events of one episode take turns). A concurrent creation is taken, not doubled."""
        ...

    def episodes_for_update(self, episode_ids: Sequence[str]) -> Sequence[EpisodeRecord]:
        """``episode_for_update`` of several episodes at once (a batch's), each once, in the order given: on
        PostgreSQL locked together in one order (the episode ids'), so the batch's own ``episode_for_update``
        of each is then answered without a statement; a new one's deadlines, and those of a trigger meeting raised
        on it, are then known to be none (``deadlines_of_subjects`` of them, and what ``add_deadline(once=True)``
        holds against one raised on it, send nothing), a stored one's once ``deadlines_of_subjects`` has read
        them."""
        ...

    def episodes_of_child(self, child_id: str) -> Sequence[EpisodeRecord]:
        """Every episode linked to the child (for the rolling-window trigger rule)."""
        ...

    def read_children_ahead(self, child_ids: Sequence[str]) -> None:
        """What the missing pathway asks next about each of these children, read now in one go for this unit of
        work (a batch's children, locked first with ``lock_children``): their episodes (``episodes_of_child``; an
        adapter may read them at the first such question, for every child read ahead it may be asked about), their
        last trigger meeting held (``last_trigger_meeting_held``), their pending trigger meeting
        (``open_trigger_meeting``, and what ``add_deadline(once=True)`` of another holds against it) and, for a
        child linked to a pupil read ahead
        (``read_pupils_ahead``), the involvements ``facts_for_child`` gives them; the answers are what they would
        have been without it, this unit of work's own changes included."""
        ...

    def open_trigger_meeting(self, child_id: str) -> DeadlineRecord | None:
        """The child's pending (open) trigger meeting deadline, if any (there is at most one)."""
        ...

    def last_trigger_meeting_held(self, child_id: str) -> datetime | None:
        """When the child's most recent trigger meeting was held, if one ever was."""
        ...

    def add_trigger_meeting(self, child_id: str, held_at: datetime, outcome: str, event_id: str) -> None:
        """Record a trigger meeting held (from its event)."""
        ...

    def rebind_deadline(self, deadline: DeadlineRecord, child_id: str) -> None:
        """The deadline is now about ``child_id``: stored at once, so the one-pending-trigger-meeting-per-child
        guard sees it before anything else this unit of work writes (and any other worker's write waits)."""
        ...

    def first_audit_reason(self, subject_id: str, action: str) -> str | None:
        """The reason of the first stored audit entry of ``action`` on ``subject_id`` (e.g. why a trigger
        meeting was raised), or None."""
        ...
