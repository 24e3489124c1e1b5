"""The records both store adapters hand out for events, notifications, deadlines and missing episodes: one plain
dataclass each, with the columns of its table (pipeline/adapters/tables.py) declared once.

The in-memory fake (pipeline/adapters/memory_store.py) keeps these records as they are; the SQL adapter
(pipeline/adapters/effect_rows.py, and pipeline/adapters/event_queue.py for events) subclasses them, adding only
the watching that tells its unit of work which records changed. Each satisfies its record Protocol of the port
(``EventRecord``, ``NotificationRecord`` and ``DeadlineRecord`` in pipeline/ports/records.py, ``EpisodeRecord`` in
pipeline/ports/episodes.py), which the ORM rows the web and the relay read satisfy too.

Identity, not value, makes two records the same (``eq=False``): a unit of work keeps records in sets, and two
records with equal columns are still two rows. ``UniquenessViolation`` is the fake's answer to a write the SQL
schema would refuse.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


class UniquenessViolation(Exception):
    """A write the SQL schema would refuse with an IntegrityError (a unique constraint or index): raised by the
    in-memory fake (pipeline/adapters/memory_store.py) at once."""


@dataclass(eq=False)
class Event:
    """An accepted event as stored (``pipeline.ports.records.EventRecord``)."""

    event_id: str
    event_type: str
    record_json: str
    content_hash: str
    received_at: datetime
    seq: int | None = None  # numbered by the store when it is written
    producer_id: int | None = None
    status: str = "accepted"  # EventStatus
    processed_at: datetime | None = None
    match_outcome: str | None = None
    child_id: str | None = None
    match_json: str | None = None
    error: str | None = None
    attempts: int = 0
    next_attempt_at: datetime | None = None
    held_at: datetime | None = None


@dataclass(eq=False)
class Notification:
    """A notification as stored (``pipeline.ports.records.NotificationRecord``)."""

    id: str
    event_id: str
    pathway: str
    kind: str
    plan_key: str
    recipient_role: str
    recipient_ref: str
    school_urn: str | None
    contact_email: str | None
    contact_phone: str | None
    urgency: str
    reason: str
    status: str
    content_json: str
    deadline_id: str | None
    created_at: datetime
    delivered_at: datetime | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: int | None = None
    outcome: str | None = None
    dedupe_key: str | None = None


@dataclass(eq=False)
class Deadline:
    """A deadline as stored (``pipeline.ports.records.DeadlineRecord``)."""

    id: str
    kind: str
    subject_id: str
    event_id: str | None
    child_id: str | None
    school_urn: str | None
    due_at: datetime
    state: str
    escalation_level: int
    next_step_at: datetime | None
    steps_json: str
    created_at: datetime
    closed_at: datetime | None = None
    closed_reason: str | None = None


@dataclass(eq=False)
class Episode:
    """A missing episode as stored (``pipeline.ports.episodes.EpisodeRecord``)."""

    episode_id: str
    updated_at: datetime
    child_id: str | None = None
    force_code: str | None = None
    reported_at: datetime | None = None
    last_seen_at: datetime | None = None
    missing_from: str | None = None
    risk_grade: str | None = None
    risk_graded_at: datetime | None = None
    exploitation_flags: str = "[]"
    found_at: datetime | None = None
    returned_to: str | None = None
    safe_and_well_at: datetime | None = None
    return_interview_outcome: str | None = None
    return_interview_recorded_at: datetime | None = None
    graded_high_at: datetime | None = None
    flagged_at: datetime | None = None
    report_event_id: str | None = None
