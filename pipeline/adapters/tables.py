"""The store's tables (SQLModel). Created only by Alembic migrations (pipeline/adapters/migrations).

Instants are stored as timezone-aware UTC. Personal data lives only in reference tables, event records,
notification content and dead-letter payloads; never in audit reasons, outbox bodies or logs.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Column, DateTime, Index, LargeBinary, Text, UniqueConstraint, text
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class UnstorableValue(ValueError):
    """A value the store refuses, said in words that name no value: its message may be shown in an error."""


class UTCDateTime(TypeDecorator[datetime]):
    """Stores instants as naive UTC (same on SQLite and PostgreSQL) and returns them aware."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise UnstorableValue("naive datetimes are not stored")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def _instant(nullable: bool = False, index: bool = False) -> Any:
    return Column(UTCDateTime(), nullable=nullable, index=index)


class User(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(unique=True, index=True)
    role: str
    school_urn: str | None = None
    team: str | None = None
    password_hash: str | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_column=_instant())
    # A disabled user can neither log in nor use an API token; the row stays, so the audit still names them.
    disabled_at: datetime | None = Field(default=None, sa_column=_instant(nullable=True))


class ApiToken(SQLModel, table=True):
    token_hash: str = Field(primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    kind: str = "api"  # api | web
    created_at: datetime = Field(default_factory=utcnow, sa_column=_instant())


class WebSession(SQLModel, table=True):
    """A signed-in browser. The cookie carries a random token; only its SHA-256 is stored here.

    It ends when idle too long or too old (``web.session_idle`` / ``web.session_absolute`` in config), or
    at logout, when ``revoked_at`` is set; the CSRF token of every form in the session lives with it.
    """

    token_hash: str = Field(primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    csrf_token: str
    created_at: datetime = Field(sa_column=_instant())
    last_seen_at: datetime = Field(sa_column=_instant())
    revoked_at: datetime | None = Field(default=None, sa_column=_instant(nullable=True))


class LoginAttempt(SQLModel, table=True):
    """One try at the login form, for throttling. ``key`` is a SHA-256 (of the email, or of the client
    address), never the email itself."""

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(index=True)
    at: datetime = Field(sa_column=_instant(index=True))
    succeeded: bool


class School(SQLModel, table=True):
    urn: str = Field(primary_key=True)
    name: str
    la_code: str
    in_area: bool
    school_type: str
    dsl_email: str | None = None
    dsl_phone: str | None = None
    deputy_email: str | None = None
    deputy_phone: str | None = None
    ended_at: datetime | None = Field(default=None, sa_column=_instant(nullable=True))


class Pupil(SQLModel, table=True):
    # One row per enrolment: a child on two schools' rolls, or who moved school, has a row at each (migration 0015).
    row_key: str = Field(primary_key=True)  # ``upn|school_urn|on_roll_from`` (pipeline.service.reference)
    upn: str = Field(index=True)
    nhs_number: str | None = Field(default=None, index=True)
    given_name: str
    family_name: str
    family_key: str = Field(index=True)  # normalised family name, for blocking
    date_of_birth: date = Field(index=True)
    sex: str | None = None
    postcode: str | None = None
    school_urn: str = Field(index=True)
    on_roll_from: date | None = None
    on_roll_to: date | None = None
    ended_at: datetime | None = Field(default=None, sa_column=_instant(nullable=True))


class EheRecord(SQLModel, table=True):
    row_key: str = Field(primary_key=True)
    given_name: str
    family_name: str
    family_key: str = Field(index=True)
    date_of_birth: date = Field(index=True)
    postcode: str | None = None
    nhs_number: str | None = Field(default=None, index=True)
    ended_at: datetime | None = Field(default=None, sa_column=_instant(nullable=True))


class Involvement(SQLModel, table=True):
    row_key: str = Field(primary_key=True)
    nhs_number: str | None = Field(default=None, index=True)
    upn: str | None = Field(default=None, index=True)
    given_name: str
    family_name: str
    family_key: str = Field(index=True)
    date_of_birth: date = Field(index=True)
    status: str
    worker_email: str | None = Field(default=None, index=True)
    team: str | None = None
    manager_email: str | None = None
    placing_la: str | None = None
    iro_email: str | None = None
    ended_at: datetime | None = Field(default=None, sa_column=_instant(nullable=True))


class TeamContact(SQLModel, table=True):
    team: str = Field(primary_key=True)
    email: str | None = None
    phone: str | None = None
    ended_at: datetime | None = Field(default=None, sa_column=_instant(nullable=True))


class Child(SQLModel, table=True):
    """The opaque child id the API shows, for a person key (UPN or NHS number) it never shows."""

    child_id: str = Field(primary_key=True)
    person_key: str = Field(unique=True)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_instant())


class Event(SQLModel, table=True):
    """Every accepted event: the durable intake and the processed-event record in one row."""

    seq: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(unique=True)
    event_type: str
    producer_id: int | None = None
    content_hash: str
    record_json: str = Field(sa_column=Column(Text, nullable=False))
    received_at: datetime = Field(default_factory=utcnow, sa_column=_instant())
    status: str = Field(default="accepted", index=True)
    processed_at: datetime | None = Field(default=None, sa_column=_instant(nullable=True))
    match_outcome: str | None = None
    child_id: str | None = Field(default=None, index=True)
    match_json: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    error: str | None = None  # the last handler failure's exception type (never its text)
    # A handler failure keeps the event accepted: tried again at next_attempt_at, and after the last try
    # held (held_at) until `safeguard events retry` runs it.
    attempts: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    next_attempt_at: datetime | None = Field(default=None, sa_column=_instant(nullable=True))
    held_at: datetime | None = Field(default=None, sa_column=_instant(nullable=True))


class DeadLetter(SQLModel, table=True):
    id: str = Field(primary_key=True)
    received_at: datetime = Field(default_factory=utcnow, sa_column=_instant())
    source: str  # http | cli | kafka
    event_type: str | None = None
    reason: str  # field paths and what is wrong; never values
    payload: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    producer_id: int | None = None
    # The rejected body's event_id when it had one (so GET /api/events/{event_id} can say dead_lettered).
    event_id: str | None = Field(default=None, index=True)


class Notification(SQLModel, table=True):
    __table_args__ = (
        # A team's notifications and a school's, newest first (the inbox and the API's pages read them in this
        # order; migration 0012 added the order, so such a page no longer sorts every notification they were ever
        # sent). A worker's scope spans three roles: their page sorts that worker's own notifications.
        Index("ix_notification_scope", "recipient_role", "recipient_ref", "created_at", "id"),
        Index("ix_notification_school_urn", "school_urn", "created_at", "id"),
        # A manager's page of one status, newest first (migration 0013).
        Index("ix_notification_status", "status", "created_at", "id"),
        # The scorecard's delivery failures: notifications never delivered, by when they were created.
        Index("ix_notification_undelivered", "delivered_at", "created_at"),
        # The reminders and escalations fired on a deadline (the inbox, the overdue board, a case), and a school's
        # copies of an alert (migration 0012); most notifications watch no deadline, so those are left out.
        Index("ix_notification_deadline", "deadline_id", sqlite_where=text("deadline_id IS NOT NULL"),
              postgresql_where=text("deadline_id IS NOT NULL")),
    )

    id: str = Field(primary_key=True)
    event_id: str = Field(index=True)
    pathway: str
    kind: str  # alert | reminder | escalation | review | decision
    plan_key: str  # the rule's key for this recipient within the event's plan
    recipient_role: str
    recipient_ref: str
    school_urn: str | None = None
    contact_email: str | None = None
    contact_phone: str | None = None
    urgency: str
    reason: str
    status: str
    content_json: str = Field(sa_column=Column(Text, nullable=False))
    deadline_id: str | None = None
    created_at: datetime = Field(sa_column=_instant(index=True))
    delivered_at: datetime | None = Field(default=None, sa_column=_instant(nullable=True))
    acknowledged_at: datetime | None = Field(default=None, sa_column=_instant(nullable=True))
    acknowledged_by: int | None = None
    outcome: str | None = None
    # Set where a notification must exist at most once whatever the order or repetition of events
    # (e.g. "episode X reported, to the coordinator"); the unique index makes that the database's rule.
    dedupe_key: str | None = Field(default=None, unique=True)


# A pending trigger meeting, as the partial unique index's predicate. Queries for them repeat it as SQL text, with
# the values written in: neither SQLite nor a generic PostgreSQL plan can use a partial index for a predicate
# with bound parameters (SQLite then scanned every open deadline through ix_deadline_sweep, and the cost of a
# batch's read of its children's meetings grew with the history of deadlines).
OPEN_TRIGGER_MEETING = "kind = 'trigger_meeting' AND state = 'open'"
OPEN_TRIGGER_MEETING_INDEX = "uq_deadline_open_trigger_meeting"


class Deadline(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("kind", "subject_id", name="uq_deadline_kind_subject"),
        Index("ix_deadline_sweep", "state", "next_step_at"),
        # At most one pending trigger meeting per child, enforced by the database under concurrency.
        Index(OPEN_TRIGGER_MEETING_INDEX, "child_id", unique=True,
              sqlite_where=text(OPEN_TRIGGER_MEETING), postgresql_where=text(OPEN_TRIGGER_MEETING)),
        # The scorecard (deadlines of a kind due in a period; covering) and the overdue board (open, by due).
        Index("ix_deadline_scorecard", "kind", "due_at", "closed_at", "created_at", "child_id", "school_urn"),
        Index("ix_deadline_board", "state", "due_at", "id", "escalation_level", "kind"),
        # The API's open and closed deadlines, newest first (migration 0012).
        Index("ix_deadline_state_created", "state", "created_at", "id"),
        # The scorecard's open escalations: deadlines not closed by an instant (migration 0009).
        Index("ix_deadline_open_at", "closed_at", "escalation_level", "created_at", "kind"),
        # An episode's deadlines, whatever their kind (migration 0011).
        Index("ix_deadline_subject", "subject_id"),
    )

    id: str = Field(primary_key=True)
    kind: str
    subject_id: str  # a notification id, an event id or an episode id
    event_id: str | None = Field(default=None, index=True)
    child_id: str | None = Field(default=None, index=True)
    school_urn: str | None = None
    due_at: datetime = Field(sa_column=_instant())
    state: str = "open"  # open | closed
    escalation_level: int = 0
    next_step_at: datetime | None = Field(default=None, sa_column=_instant(nullable=True))
    steps_json: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(sa_column=_instant())
    closed_at: datetime | None = Field(default=None, sa_column=_instant(nullable=True))
    closed_reason: str | None = None


class AuditEntry(SQLModel, table=True):
    """Append-only: nothing is updated or deleted (database triggers refuse both, migration 0003); a correction
    is a new entry."""

    # A deadline's escalation level at a past instant (the scorecard's open escalations) is counted from these.
    __table_args__ = (Index("ix_auditentry_subject_action_at", "subject_id", "action", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_column=_instant())
    actor: str
    action: str
    subject_id: str  # indexed by ix_auditentry_subject_action_at, which begins with it
    reason: str = ""


class Outbox(SQLModel, table=True):
    """Records to publish (output topics) and messages to deliver, written in the event's transaction."""

    # The relay's read (``relayed_at IS NULL ORDER BY id LIMIT n``) walks this index: the rows still to relay, in id
    # order, and only those. With a plain index on relayed_at instead, PostgreSQL walked the primary key and
    # skipped every row already relayed, so each pass cost more as the outbox's history grew.
    __table_args__ = (Index("ix_outbox_waiting", "id", sqlite_where=text("relayed_at IS NULL"),
                            postgresql_where=text("relayed_at IS NULL")),)

    id: int | None = Field(default=None, primary_key=True)
    topic: str
    key: str
    body_json: str = Field(sa_column=Column(Text, nullable=False))
    notification_id: str | None = None
    created_at: datetime = Field(sa_column=_instant())
    relayed_at: datetime | None = Field(default=None, sa_column=_instant(nullable=True))


class MissingEpisode(SQLModel, table=True):
    """One police missing episode, folded from its events in whatever order they arrive."""

    # The scorecard: a child's episodes in a rolling window, and episodes found in a period.
    __table_args__ = (Index("ix_missingepisode_child_reported", "child_id", "reported_at"),
                      Index("ix_missingepisode_found_at", "found_at"))

    episode_id: str = Field(primary_key=True)
    child_id: str | None = None  # indexed by ix_missingepisode_child_reported, which begins with it
    force_code: str | None = None
    reported_at: datetime | None = Field(default=None, sa_column=_instant(nullable=True, index=True))
    last_seen_at: datetime | None = Field(default=None, sa_column=_instant(nullable=True))
    missing_from: str | None = None
    risk_grade: str | None = None  # the effective grade: the latest by its own timestamp
    risk_graded_at: datetime | None = Field(default=None, sa_column=_instant(nullable=True))
    exploitation_flags: str = "[]"  # JSON list; flags are only ever added
    found_at: datetime | None = Field(default=None, sa_column=_instant(nullable=True))
    returned_to: str | None = None
    safe_and_well_at: datetime | None = Field(default=None, sa_column=_instant(nullable=True))
    return_interview_outcome: str | None = None
    return_interview_recorded_at: datetime | None = Field(default=None, sa_column=_instant(nullable=True))
    # When an event first graded it HIGH, and first flagged it (by the events' own times), whatever the order.
    graded_high_at: datetime | None = Field(default=None, sa_column=_instant(nullable=True))
    flagged_at: datetime | None = Field(default=None, sa_column=_instant(nullable=True))
    report_event_id: str | None = None
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_instant())


class TriggerMeeting(SQLModel, table=True):
    """A trigger meeting held for a child (recorded by social care)."""

    id: int | None = Field(default=None, primary_key=True)
    child_id: str = Field(index=True)
    held_at: datetime = Field(sa_column=_instant())
    outcome: str
    event_id: str = Field(unique=True)


class ReferenceChange(SQLModel, table=True):
    """One row per reference record a load inserted, changed or ended: the in-memory match index of every
    running process reads the rows after the last sequence number it applied (a version check before each
    batch) instead of rebuilding, and the newest number is the version of each process's reference snapshot
    (pipeline/adapters/reference_cache.py). Keys only, never personal data."""

    seq: int | None = Field(default=None, primary_key=True)
    kind: str  # schools | pupils | ehe | involvements | teams
    row_key: str
    at: datetime = Field(default_factory=utcnow, sa_column=_instant())


class MatchModel(SQLModel, table=True):
    """A version of the matcher's estimated parameters (m and u per comparison level); the newest is used."""

    version: str = Field(primary_key=True)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_instant(index=True))
    parameters_json: str = Field(sa_column=Column(Text, nullable=False))


class Delivery(SQLModel, table=True):
    """One notification on one channel (email, sms, webhook), with its attempts record.

    Written with the notification in the same transaction; the relay resolves it against the council's routes,
    claims it, sends it and records each attempt's outcome (pipeline/service/relay.py). States are listed in
    pipeline/domain/delivery.py. No address or message text is kept here: those come from the notification.
    """

    __table_args__ = (
        UniqueConstraint("notification_id", "channel", name="uq_delivery_notification_channel"),
        Index("ix_delivery_due", "state", "next_attempt_at"),
        # A provider's status callback finds its delivery by the provider's reference (Twilio SID, Notify id); only
        # a delivery sent has one, so the rest are left out of the index (migration 0014).
        Index("ix_delivery_provider_ref", "provider_ref", sqlite_where=text("provider_ref IS NOT NULL"),
              postgresql_where=text("provider_ref IS NOT NULL")),
    )

    id: str = Field(primary_key=True)
    notification_id: str  # indexed by uq_delivery_notification_channel, which begins with it
    channel: str
    state: str = "new"
    position: int = 0  # 0: sent at once; 1, 2, ...: fallback order
    attempts: int = 0
    ambiguous_resends: int = 0  # re-sends after an ambiguous failure (at most one): possible duplicates
    provider: str | None = None
    provider_ref: str | None = None  # Twilio SID / Notify id, for status callbacks
    last_outcome: str | None = None  # accepted | transient | permanent | ambiguous | a provider status
    last_error: str | None = None  # what failed, never a value
    next_attempt_at: datetime | None = Field(default=None, sa_column=_instant(nullable=True))
    last_attempt_at: datetime | None = Field(default=None, sa_column=_instant(nullable=True))
    created_at: datetime = Field(sa_column=_instant())
