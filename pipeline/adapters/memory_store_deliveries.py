"""The in-memory fake's answers to the delivery part of the store port (pipeline/ports/deliveries.py): a mixin of
``pipeline.adapters.memory_store.MemoryStore``, over its state.

Delivery rows (one per notification and channel) and the outbox live in the fake's state beside its other records,
so a unit of work or savepoint that raises undoes what it claimed, marked or changed with everything else. Plain
rows (what the hot path reads) are copies as they were when read, as the SQL adapter's are; live records are the
state's own. One unit of work at a time, so nothing is locked.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from pipeline.adapters.store_records import Notification
from pipeline.domain.delivery import ACTIVE, NOT_YET_DELIVERED, DeliveryState
from pipeline.domain.model import NotificationStatus
from pipeline.ports.deliveries import Accepted, Resolved, Sending

if TYPE_CHECKING:
    from pipeline.adapters.memory_store import _State


@dataclass
class MemoryDelivery:
    """One notification on one channel (``pipeline.ports.records.DeliveryRecord``)."""

    id: str
    notification_id: str
    channel: str
    created_at: datetime
    state: str = DeliveryState.NEW
    next_attempt_at: datetime | None = None
    position: int = 0
    attempts: int = 0
    ambiguous_resends: int = 0
    provider: str | None = None
    provider_ref: str | None = None
    last_outcome: str | None = None
    last_error: str | None = None
    last_attempt_at: datetime | None = None


@dataclass(frozen=True)
class MemoryOutboxDue:
    """An outbox line not yet relayed, with its notification's fields (``DueOutboxRecord``)."""

    id: int
    topic: str
    key: str
    body_json: str
    notification_id: str | None
    found_notification: str | None
    urgency: str | None
    school_urn: str | None
    pathway: str | None


class MemoryDeliveries:
    """The outbox relay's and the deliveries' reads and changes over the fake's state."""

    if TYPE_CHECKING:
        _state: _State

    def _deliveries_by_id(self) -> dict[str, MemoryDelivery]:
        return {row.id: row for row in self._state.deliveries.values()}

    # ---- the outbox -----------------------------------------------------------------------------------
    def outbox_due(self, limit: int) -> list[MemoryOutboxDue]:
        due: list[MemoryOutboxDue] = []
        for line in self._state.outbox:
            if len(due) == limit:
                break
            if line.id in self._state.outbox_relayed:
                continue
            notification = self._state.notifications.get(line.notification_id or "")
            due.append(MemoryOutboxDue(
                line.id, line.topic, line.key, json.dumps(line.body), line.notification_id,
                notification.id if notification else None, notification.urgency if notification else None,
                notification.school_urn if notification else None, notification.pathway if notification else None))
        return due

    def mark_relayed(self, ids: Sequence[int], now: datetime) -> None:
        for line_id in ids:
            self._state.outbox_relayed[line_id] = now

    # ---- the hot path ------------------------------------------------------------------------------------
    def claim_due_deliveries(self, now: datetime, limit: int) -> list[MemoryDelivery]:
        due = [row for row in self._state.deliveries.values()
               if row.state in ACTIVE and row.next_attempt_at is not None and row.next_attempt_at <= now]
        due.sort(key=lambda row: row.next_attempt_at or now)  # rows due together: in no promised order (as on SQL)
        return [copy.copy(row) for row in due[:limit]]

    def notification_fields(self, ids: Iterable[str]) -> dict[str, Notification]:
        found = (self._state.notifications.get(notification_id) for notification_id in set(ids))
        return {notification.id: copy.copy(notification) for notification in found if notification is not None}

    def channel_states(self, notification_ids: Iterable[str]) -> dict[str, dict[str, str]]:
        states: dict[str, dict[str, str]] = {notification_id: {} for notification_id in notification_ids}
        for row in self._state.deliveries.values():
            if row.notification_id in states:
                states[row.notification_id][row.channel] = row.state
        return states

    def mark_sending(self, rows: Sequence[Sending], now: datetime) -> None:
        stored = self._deliveries_by_id()
        for claim in rows:
            row = stored.get(claim.row_id)
            if row is not None:
                row.state, row.position, row.attempts, row.provider = (DeliveryState.SENDING, claim.position,
                                                                       claim.attempts, claim.provider)
                row.last_attempt_at, row.next_attempt_at = now, claim.lease_until

    def mark_resolved(self, rows: Sequence[Resolved]) -> None:
        stored = self._deliveries_by_id()
        for resolved in rows:
            row = stored.get(resolved.row_id)
            if row is not None:
                row.state, row.position, row.next_attempt_at, row.last_error = (resolved.state, resolved.position,
                                                                                None, resolved.error)

    def claimed_deliveries(self, ids: Iterable[str]) -> dict[str, MemoryDelivery]:
        stored = self._deliveries_by_id()
        return {row_id: copy.copy(stored[row_id]) for row_id in ids if row_id in stored}

    def mark_sent(self, sends: Sequence[Accepted], now: datetime) -> None:
        stored = self._deliveries_by_id()
        for send in sends:
            row = stored.get(send.row_id)
            if row is not None and row.state == DeliveryState.SENDING and row.attempts == send.claimed_attempts:
                row.state, row.last_outcome, row.last_error = DeliveryState.SENT, "accepted", None
                row.next_attempt_at, row.provider_ref = None, send.reference
        for notification_id in {send.notification_id for send in sends}:
            notification = self._state.notifications.get(notification_id)
            if notification is None:
                continue
            if notification.status in NOT_YET_DELIVERED:
                notification.status = NotificationStatus.DELIVERED
            if notification.delivered_at is None:
                notification.delivered_at = now

    def retries_waiting(self) -> int:
        return sum(1 for row in self._state.deliveries.values()
                   if row.state == DeliveryState.PENDING and row.attempts > 0)

    # ---- live records --------------------------------------------------------------------------------------
    def deliveries_by_id(self, ids: Iterable[str]) -> list[MemoryDelivery]:
        stored = self._deliveries_by_id()
        return [stored[row_id] for row_id in dict.fromkeys(ids) if row_id in stored]

    def notifications_by_id(self, ids: Iterable[str]) -> dict[str, Notification]:
        found = (self._state.notifications.get(notification_id) for notification_id in set(ids))
        return {notification.id: notification for notification in found if notification is not None}

    def deliveries_of_notifications(self, notification_ids: Iterable[str]) -> dict[str, list[MemoryDelivery]]:
        found: dict[str, list[MemoryDelivery]] = {notification_id: [] for notification_id in notification_ids}
        for row in self._state.deliveries.values():
            if row.notification_id in found:
                found[row.notification_id].append(row)
        return found

    def deliveries_of_notification(self, notification_id: str) -> list[MemoryDelivery]:
        return sorted((row for row in self._state.deliveries.values() if row.notification_id == notification_id),
                      key=lambda row: (row.position, row.channel))

    def delivery_by_provider_reference(self, provider: str, reference: str) -> MemoryDelivery | None:
        return next((row for row in self._state.deliveries.values()
                     if row.provider == provider and row.provider_ref == reference), None)
