"""The delivery part of the store port: what the relay (pipeline/service/relay.py) asks and orders to deliver the
outbox's records to the output topics and each notification to its recipient through their channels. The SQL
adapter (``DeliveryQueries``, pipeline/adapters/deliveries.py) and the fake (``MemoryDeliveries``,
pipeline/adapters/memory_store_deliveries.py) answer.

Two speeds. The hot path (a batch of due rows claimed, then the batch's accepted sends recorded) reads plain rows,
a snapshot as they were when read (the read-only Protocols below), and changes them with one command per kind of
change, each taking the whole batch. The rarer cases (a failure, a fallback, a lease run out, a provider's status
callback) read live records (``DeliveryRecord``, ``NotificationRecord``) and change their attributes, stored with
the unit of work as every record of the port is.

Which rows are due, and how rows are held while a unit of work works on them (on PostgreSQL ``FOR UPDATE SKIP
LOCKED``, so several relays share the tables; on SQLite the single writer) is the adapter's business. The rules
(routes, retries, fallbacks) stay in the relay and pipeline/domain/delivery.py.

These questions are about what is stored: a notification, delivery row or outbox record added in the same unit of
work (``add_notification``, ``add_delivery``, ``outbox``) may not be seen by them before it commits (the SQL adapter
writes those at commit). The relay asks them in units of work of its own. What a unit of work changed on live
records is seen by every question asked after it (plain rows and counts included: the SQL adapter writes those
changes first), and a batch command's change lands after them. A live record read before a batch command does not
show what the command changed (on SQL it stays as it was read): read live records after the batch commands, as the
relay does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import NamedTuple, Protocol

from pipeline.ports.records import DeliveryRecord, NotificationRecord


class DueOutboxRecord(Protocol):
    """An outbox row not yet relayed, with the fields of its notification a console line needs (None when the row
    names no notification, or one not stored; when it is stored, its urgency and pathway are never None:
    ``OutboxRecordOfNotification``)."""

    @property
    def id(self) -> int: ...

    @property
    def topic(self) -> str: ...

    @property
    def key(self) -> str: ...

    @property
    def body_json(self) -> str: ...  # the record as stored (JSON text), published as it is

    @property
    def notification_id(self) -> str | None: ...

    @property
    def found_notification(self) -> str | None: ...  # the notification's id when it is stored

    @property
    def urgency(self) -> str | None: ...

    @property
    def school_urn(self) -> str | None: ...

    @property
    def pathway(self) -> str | None: ...


class OutboxRecordOfNotification(DueOutboxRecord, Protocol):
    """A ``DueOutboxRecord`` whose notification is stored (``found_notification`` is not None): its urgency and
    pathway, which a stored notification always has, came with it."""

    @property
    def found_notification(self) -> str: ...

    @property
    def urgency(self) -> str: ...

    @property
    def pathway(self) -> str: ...


class DeliveryRow(Protocol):
    """A delivery row as read (a plain row, never written back): what every relay read of one gives."""

    @property
    def id(self) -> str: ...

    @property
    def notification_id(self) -> str: ...

    @property
    def channel(self) -> str: ...

    @property
    def state(self) -> str: ...

    @property
    def attempts(self) -> int: ...


class DueDelivery(DeliveryRow, Protocol):
    """A delivery row claimed to be worked now, as it was when claimed."""

    @property
    def position(self) -> int: ...

    @property
    def last_error(self) -> str | None: ...


class NotificationFields(Protocol):
    """What the relay needs of a notification to address, word and record a delivery, as it was when read."""

    @property
    def id(self) -> str: ...

    @property
    def status(self) -> str: ...

    @property
    def recipient_role(self) -> str: ...

    @property
    def urgency(self) -> str: ...

    @property
    def school_urn(self) -> str | None: ...

    @property
    def pathway(self) -> str: ...

    @property
    def contact_email(self) -> str | None: ...

    @property
    def contact_phone(self) -> str | None: ...

    @property
    def created_at(self) -> datetime: ...

    @property
    def delivered_at(self) -> datetime | None: ...


class ClaimedDelivery(DeliveryRow, Protocol):
    """A delivery row a relay claimed, as it is when its send is recorded (another relay may have taken it over)."""

    @property
    def provider(self) -> str | None: ...

    @property
    def ambiguous_resends(self) -> int: ...


class Sending(NamedTuple):
    """A claimed row about to be sent: its resolved position, its attempt (counted now), its channel's provider,
    and when its lease runs out."""

    row_id: str
    position: int
    attempts: int
    provider: str
    lease_until: datetime


class Resolved(NamedTuple):
    """A new row resolved to a state it is not sent in (standby, skipped), with why when it is skipped."""

    row_id: str
    state: str
    position: int
    error: str | None


class Accepted(NamedTuple):
    """A send the provider accepted, on the attempt the relay claimed, with the provider's reference for it."""

    row_id: str
    notification_id: str
    claimed_attempts: int
    reference: str | None


class DeliveryStore(Protocol):
    # ---- the outbox -----------------------------------------------------------------------------------
    def outbox_due(self, limit: int) -> Sequence[DueOutboxRecord]:
        """Outbox rows not yet relayed, oldest first, at most ``limit``, held for this unit of work (PostgreSQL:
        skipping rows another holds), each with its notification's fields: one read."""
        ...

    def mark_relayed(self, ids: Sequence[int], now: datetime) -> None:
        """The outbox rows are relayed (at ``now``): never due again."""
        ...

    # ---- the hot path: claiming and recording a batch --------------------------------------------------
    def claim_due_deliveries(self, now: datetime, limit: int) -> Sequence[DueDelivery]:
        """Rows to work on now, earliest due first (rows due at the same time in no promised order), at most
        ``limit``, held for this unit of work (PostgreSQL: skipping rows another holds): new ones (to resolve),
        pending ones due by ``now``, and ``sending`` ones whose lease ran out by ``now`` (a relay died mid-send); never
        a ``sending`` one whose lease still runs (its relay may be sending it), nor one in any other state."""
        ...

    def notification_fields(self, ids: Iterable[str]) -> Mapping[str, NotificationFields]:
        """The delivery fields of each of these notifications that is stored, by id."""
        ...

    def channel_states(self, notification_ids: Iterable[str]) -> dict[str, dict[str, str]]:
        """Each notification's delivery rows as {channel: state} (an empty one for a notification with none): the
        caller's to change."""
        ...

    def mark_sending(self, rows: Sequence[Sending], now: datetime) -> None:
        """Claimed rows are ``sending``: their position, attempts and provider as given, last attempted ``now``,
        due again (as a lease run out) at ``lease_until``."""
        ...

    def mark_resolved(self, rows: Sequence[Resolved]) -> None:
        """New rows take their resolved state, position and error, due never."""
        ...

    def claimed_deliveries(self, ids: Iterable[str]) -> Mapping[str, ClaimedDelivery]:
        """The rows with these ids as they are now, by id (a row not stored is left out)."""
        ...

    def mark_sent(self, sends: Sequence[Accepted], now: datetime) -> None:
        """Accepted sends: each row still ``sending`` on the claimed attempt is ``sent`` (outcome ``accepted``,
        the reference kept, due never); every notification named is ``delivered`` if it was pending or failed
        (a viewed, acknowledged or withheld one keeps its status), delivered at ``now`` unless it was before."""
        ...

    def retries_waiting(self) -> int:
        """Rows pending after a failed attempt (for the waiting-retries gauge), this unit of work's changes to
        live records counted."""
        ...

    # ---- the rarer cases: live records -------------------------------------------------------------------
    def deliveries_by_id(self, ids: Iterable[str]) -> Sequence[DeliveryRecord]:
        """The delivery rows with these ids (in no particular order)."""
        ...

    def notifications_by_id(self, ids: Iterable[str]) -> Mapping[str, NotificationRecord]:
        """The stored notifications with these ids, by id."""
        ...

    def deliveries_of_notifications(self, notification_ids: Iterable[str]) -> Mapping[str, Sequence[DeliveryRecord]]:
        """Each notification's delivery rows (in no particular order; none for a notification with none), by
        notification id."""
        ...

    def deliveries_of_notification(self, notification_id: str) -> Sequence[DeliveryRecord]:
        """The notification's delivery rows, by position then channel."""
        ...

    def delivery_by_provider_reference(self, provider: str, reference: str) -> DeliveryRecord | None:
        """The row a provider accepted under this reference (for its status callback), held for this unit of work
        on PostgreSQL; None for a reference never stored."""
        ...
