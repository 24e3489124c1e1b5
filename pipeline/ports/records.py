"""The records the services read and change through the storage port (pipeline/ports/store.py).

Each is a Protocol with the attribute names of its table (pipeline/adapters/tables.py), so the ORM rows the SQL
side reads (the relay, the web, reports) satisfy it as they are, and so do the record classes both adapters hand
out for notifications, deadlines and episodes (pipeline/adapters/store_records.py: the SQL adapter watches them
for changes, pipeline/adapters/effect_rows.py; the in-memory fake keeps them as they are).
A record the port returns is live for the rest of its unit of work: attributes a service assigns are stored
when the unit of work commits and discarded when it rolls back. New records are made only by port commands
(``add_notification``, ``add_deadline``, ...), never by constructing a table class.

Statuses, kinds and states are the ``StrEnum`` types of pipeline/domain/model.py; a record holds the plain
stored string, which compares equal to the enum member.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Protocol

SYSTEM = "system"  # the actor of audit entries for what the pipeline does by itself


class EventRecord(Protocol):
    """An accepted event: the durable intake and the processed-event record in one."""

    seq: int | None
    event_id: str
    event_type: str
    producer_id: int | None
    content_hash: str
    record_json: str
    received_at: datetime
    status: str  # EventStatus
    processed_at: datetime | None
    match_outcome: str | None  # MatchOutcome
    child_id: str | None
    match_json: str | None
    error: str | None
    attempts: int
    next_attempt_at: datetime | None
    held_at: datetime | None


class NotificationRecord(Protocol):
    id: str
    event_id: str
    pathway: str
    kind: str  # NotificationKind
    plan_key: str
    recipient_role: str
    recipient_ref: str
    school_urn: str | None
    contact_email: str | None
    contact_phone: str | None
    urgency: str
    reason: str
    status: str  # NotificationStatus
    content_json: str
    deadline_id: str | None
    created_at: datetime
    delivered_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: int | None
    outcome: str | None
    dedupe_key: str | None


class DeadlineRecord(Protocol):
    id: str
    kind: str  # DeadlineKind
    subject_id: str  # a notification id, an event id or an episode id
    event_id: str | None
    child_id: str | None
    school_urn: str | None
    due_at: datetime
    state: str  # DeadlineState
    escalation_level: int
    next_step_at: datetime | None
    steps_json: str
    created_at: datetime
    closed_at: datetime | None
    closed_reason: str | None


class DeadLetterRecord(Protocol):
    """A rejected input, kept with its bytes (personal data stays here, never in its reason)."""

    id: str
    received_at: datetime
    source: str
    event_type: str | None
    reason: str
    payload: bytes
    producer_id: int | None
    event_id: str | None


class UserRecord(Protocol):
    """A person who signs in (web) or calls the API (token): a role, and the school or team it is scoped to.

    Read-only: what reads a user never changes it (disabling a user or resetting a password are port commands,
    pipeline/ports/accounts.py), so a request's user can be a plain frozen record (``accounts.UserRow``)."""

    @property
    def id(self) -> int | None: ...

    @property
    def email(self) -> str: ...

    @property
    def role(self) -> str: ...

    @property
    def school_urn(self) -> str | None: ...

    @property
    def team(self) -> str | None: ...

    @property
    def password_hash(self) -> str | None: ...

    @property
    def created_at(self) -> datetime: ...

    @property
    def disabled_at(self) -> datetime | None: ...


class WebSessionRecord(Protocol):
    """A signed-in browser: only its token's SHA-256 is stored, with the CSRF token its forms carry."""

    @property
    def token_hash(self) -> str: ...

    @property
    def user_id(self) -> int: ...

    @property
    def csrf_token(self) -> str: ...

    @property
    def created_at(self) -> datetime: ...

    @property
    def last_seen_at(self) -> datetime: ...

    @property
    def revoked_at(self) -> datetime | None: ...


class DeliveryRecord(Protocol):
    """One notification on one channel, with its attempts (states in pipeline/domain/delivery.py)."""

    id: str
    notification_id: str
    channel: str
    state: str
    position: int
    attempts: int
    ambiguous_resends: int
    provider: str | None
    provider_ref: str | None
    last_outcome: str | None
    last_error: str | None
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    created_at: datetime


class InvolvementRecord(Protocol):
    """A child's current involvement with children's social care (reference data), and who holds it."""

    row_key: str
    nhs_number: str | None
    upn: str | None
    given_name: str
    family_name: str
    date_of_birth: date
    status: str
    worker_email: str | None
    team: str | None
    manager_email: str | None
    placing_la: str | None
    iro_email: str | None
