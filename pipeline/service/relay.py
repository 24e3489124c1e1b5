"""The relay: output-topic records from the outbox, and notifications to people through their channels.

Topic records are written in the same transaction as the effects that caused them and relayed at least once
(consumers dedupe on ids). Deliveries are rows (one per notification and channel), read and changed through the
store port's delivery part (pipeline/ports/deliveries.py), worked in three steps, so a crash never loses one and
never sends one twice beyond the ambiguous case:

1. claim (one transaction): resolve new rows against the council's routes, and mark the due ones ``sending``
   with ``attempts + 1`` and a lease; on PostgreSQL with ``FOR UPDATE SKIP LOCKED``, so workers share the table;
2. send, outside any transaction, several at once;
3. record (one transaction): each outcome audited; accepted rows are ``sent`` and their notification
   ``delivered``; failures retried with backoff and jitter, or given up on that channel, which wakes the next
   fallback channel, and when none is left ``notify.undelivered`` tells the team or the front door.

Once a notification is acknowledged in the web app (by its recipient; a school's alert, both copies, by its DSL or
deputy) none of its rows is claimed again: those still waiting (a retry, a channel not yet tried, a standby fallback)
become ``skipped`` with the reason, a failure recorded after it is not retried or re-sent (audited as ever), and no
fallback or undelivered alert follows. A send already claimed when the acknowledgement lands still goes out.

A row still ``sending`` when its lease ran out belonged to a relay that died mid-send: nobody knows whether the
provider took it, so it is the ambiguous case, re-sent at most once and audited as a possible duplicate. Both
runtimes (embedded and the faust workers) call ``relay``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeGuard

from pipeline.adapters.channels import Channel, DeliveryError, Message, OutboxFileChannel, login_link, message_text
from pipeline.adapters.metrics import (
    DELIVERY_ATTEMPTS,
    DELIVERY_RETRIES_WAITING,
    DELIVERY_SECONDS,
    NOTIFICATIONS_SENT,
    OUTBOX_RELAY_FAILURES,
)
from pipeline.adapters.publisher import Publisher, publish_stored
from pipeline.domain.delivery import (
    ACTIVE,
    REACHED,
    DeliveryState,
    Outcome,
    Retry,
    Routes,
    after_failure,
    resolve,
)
from pipeline.domain.model import NotificationStatus
from pipeline.domain.policy import Policy
from pipeline.ports import StorePort, UnitsOfWork
from pipeline.ports.deliveries import (
    Accepted,
    ClaimedDelivery,
    DueDelivery,
    DueOutboxRecord,
    NotificationFields,
    OutboxRecordOfNotification,
    Resolved,
    Sending,
)
from pipeline.ports.records import SYSTEM, DeliveryRecord, NotificationRecord
from pipeline.service.notify import DELIVERIES, undelivered

log = logging.getLogger(__name__)

# A notification in one of these is not claimed on any channel: withheld (it has no rows until the front door
# releases it: defensive), or acknowledged in the web app (by its recipient; a school's alert, both copies, by its
# DSL or deputy): a retry or a fallback would only repeat what the school, worker or team already has.
_NOT_SENT = frozenset({NotificationStatus.WITHHELD, NotificationStatus.ACKNOWLEDGED})
ACKNOWLEDGED_FIRST = "not sent: acknowledged in the web app first"


@dataclass
class FailureReport:
    """Failures in the log without a line per attempt: the first of a kind (a channel's deliveries, the topics'
    relays) at once, then at most one line a minute per kind with how many failed since, so an outage is plain
    in the log and a stuck one does not flood it. The lines name a channel, an outcome, a notification id or an
    error's type: never a provider's own error text (kept in the database), which can quote a number or address."""

    every: timedelta = timedelta(minutes=1)
    _last: dict[str, tuple[datetime, int]] = field(default_factory=dict)

    def failed(self, kind: str, now: datetime, level: int, message: str, *args: object) -> None:
        logged_at, since = self._last.get(kind, (None, 0))
        if logged_at is not None and now - logged_at < self.every:
            self._last[kind] = (logged_at, since + 1)
            return
        self._last[kind] = (now, 0)
        if since:
            message += f" ({since} more {kind} failed since the last report)"
        log.log(level, message, *args)

    def report_pending(self, now: datetime) -> None:
        """The failures counted but not yet logged, once their minute is over (an outage that ended is still
        reported with its count)."""
        for kind, (logged_at, since) in list(self._last.items()):
            if since and now - logged_at >= self.every:
                self._last[kind] = (now, 0)
                log.warning("%d more %s failed since the last report", since, kind)


@dataclass
class DeliveryService:
    """What the relay needs to deliver: the channels (by kind), the routes, the retry rule, the console file."""

    channels: dict[str, Channel]
    routes: Routes
    retry: Retry
    policy: Policy
    public_url: str
    console: OutboxFileChannel | None = None
    concurrency: int = 8
    claim_batch: int = 32  # rows claimed at once; a crash re-sends the claimed-but-unsent ones as possible duplicates
    _pool: ThreadPoolExecutor | None = field(default=None, repr=False)
    failures: FailureReport = field(default_factory=FailureReport, repr=False)

    @classmethod
    def from_rules(cls, rules: dict[str, Any], channels: dict[str, Channel], public_url: str,
                   console: OutboxFileChannel | None = None) -> DeliveryService:
        raw = rules.get("delivery") or {}
        return cls(channels=channels, routes=Routes.from_mapping(raw.get("routes") or {"default": {}}),
                   retry=Retry.from_mapping(raw.get("retry") or {}), policy=Policy.from_mapping(rules),
                   public_url=public_url, console=console, concurrency=int(raw.get("send_concurrency", 8)),
                   claim_batch=int(raw.get("claim_batch", 32)))

    def configured_for(self, notification: NotificationFields) -> set[str]:
        usable = set()
        for kind, channel in self.channels.items():
            url_for = getattr(channel, "url_for", None)
            if url_for is not None and url_for(notification.school_urn) is None:
                continue  # a webhook with no endpoint for this school
            usable.add(kind)
        return usable

    def address(self, channel: str, notification: NotificationFields) -> str | None:
        """The contact for ``channel`` of a notification (a live record or a plain one)."""
        if channel == "email":
            return notification.contact_email
        if channel == "sms":
            return notification.contact_phone
        url_for = getattr(self.channels.get(channel), "url_for", None)
        return url_for(notification.school_urn) if url_for is not None else None

    def send_all(self, work: list[tuple[Channel, Message]]) -> list[tuple[Outcome, str | None, str]]:
        def one(item: tuple[Channel, Message]) -> tuple[Outcome, str | None, str]:
            channel, message = item
            try:
                return Outcome.ACCEPTED, channel.send(message), ""
            except DeliveryError as error:
                return error.outcome, None, error.reason
            except Exception as error:  # noqa: BLE001 - an adapter bug is a transient failure, never fatal
                return Outcome.TRANSIENT, None, f"{channel.provider}: {type(error).__name__}"

        if len(work) <= 1 or self.concurrency <= 1:
            return [one(item) for item in work]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="delivery")
        return list(self._pool.map(one, work))


def relay(store: UnitsOfWork, delivery: DeliveryService, publisher: Publisher, now: datetime, batch: int = 100) -> int:
    """Relay up to ``batch`` outbox rows and work up to ``batch`` due delivery rows; returns how many."""
    return relay_pass(store, delivery, publisher, now, batch)[0]


def relay_until_idle(store: UnitsOfWork, delivery: DeliveryService, publisher: Publisher, clock: Callable[[], datetime],
                     batch: int = 100) -> int:
    """Relay batch after batch until one is not full (what was due is done); returns how many rows in all.
    Stopping at a part-full batch spares the write transaction of a last pass that would find nothing: at a
    few events a second every pass is part-full, and that empty pass cost as much as the work."""
    total = 0
    while True:
        worked, more = relay_pass(store, delivery, publisher, clock(), batch)
        total += worked
        if not more:
            return total


def relay_pass(store: UnitsOfWork, delivery: DeliveryService, publisher: Publisher, now: datetime,
               batch: int = 100) -> tuple[int, bool]:
    """One pass of ``relay_until_idle``: a batch of due deliveries and one of outbox rows; how many rows were
    worked, and whether either batch was full (there may be more). The deliveries go first, and the output topics
    failing (their files cannot be written, the broker is away) stops neither them nor the next pass's retry of
    the topic records. A database failure is not caught here: it fails the pass."""
    deliveries = deliver_due(store, delivery, now, batch)
    try:
        outbox = relay_outbox(store, delivery, publisher, now, batch)
    except TopicsRefused as refused:  # rolled back: the records are kept, relayed on a later pass
        OUTBOX_RELAY_FAILURES.inc()
        cause = refused.__cause__
        where = getattr(cause, "filename", None)
        delivery.failures.failed(
            "topic relays", now, logging.ERROR, "outbox relay failed (%s%s): the output topics did not take this "
            "pass's records; they are kept and relayed when the topics take them again; deliveries go on",
            type(cause).__name__, f" on {where}" if where else "")
        outbox = 0
    delivery.failures.report_pending(now)
    return outbox + deliveries, outbox >= batch or deliveries >= _claim_batch(delivery, batch)


class TopicsRefused(Exception):
    """Publishing an outbox batch's records failed (the cause is chained); the batch is rolled back."""


def relay_outbox(store: UnitsOfWork, delivery: DeliveryService, publisher: Publisher, now: datetime, batch: int) -> int:
    """Topic records first, every one acknowledged, then the console lines (one per notification whose topic
    record is in the batch), then the batch marked relayed. The batch's rows come with their notifications' fields
    (one statement) and are marked with one executemany; a topic record's stored JSON goes to a JSON publisher as
    it is. A ``deliveries`` row (a console line of its own, stored before the line came from the topic record) is
    not published: it gives its notification's line. So an upgrade is best made with the outbox relayed: a
    notification stored before it whose two rows are relayed in different passes has two lines, and one stored by
    a new worker and relayed by an old one none (the console file is a record, never a delivery)."""
    with store.unit_of_work() as port:
        rows = port.outbox_due(batch)
        if not rows:
            return 0
        try:
            for row in rows:
                if row.topic != DELIVERIES:
                    publish_stored(publisher, row.topic, row.key, row.body_json)
            publisher.flush()
        except Exception as error:  # noqa: BLE001 - told apart from the database's own failures by relay_pass
            raise TopicsRefused() from error
        if delivery.console is not None:
            messages = []
            seen: set[str] = set()
            for row in rows:
                if _of_a_notification(row) and row.found_notification not in seen:
                    seen.add(row.found_notification)
                    messages.append(_console_message(delivery, row))
            try:
                delivery.console.send_many(messages)
            except DeliveryError as error:  # the console is a record, never a delivery: logged, not retried
                log.warning("console record of %d notifications failed: %s", len(messages), error.reason)
        port.mark_relayed([row.id for row in rows], now)
    return len(rows)


def _of_a_notification(row: DueOutboxRecord) -> TypeGuard[OutboxRecordOfNotification]:
    """Whether the row's notification is stored: then its urgency and pathway came with it (the port says so)."""
    return row.found_notification is not None


def _console_message(delivery: DeliveryService, row: OutboxRecordOfNotification) -> Message:
    """The console line of a notification, from the fields its outbox row came with."""
    notification_id = row.found_notification
    return Message(notification_id=notification_id, delivery_id="-", channel="outbox", to="", urgency=row.urgency,
                   body=message_text(row.urgency, delivery.public_url, notification_id),
                   link=login_link(delivery.public_url, notification_id), school_urn=row.school_urn,
                   pathway=row.pathway)


def _message(delivery: DeliveryService, notification: NotificationFields, channel: str, delivery_id: str,
             to: str) -> Message:
    return Message(notification_id=notification.id, delivery_id=delivery_id, channel=channel, to=to,
                   urgency=notification.urgency,
                   body=message_text(notification.urgency, delivery.public_url, notification.id),
                   link=login_link(delivery.public_url, notification.id), school_urn=notification.school_urn,
                   pathway=notification.pathway)


def deliver_due(store: UnitsOfWork, delivery: DeliveryService, now: datetime, batch: int = 100) -> int:
    """Claim, send and record one batch of due delivery rows; returns how many rows were worked."""
    if not delivery.channels:
        return 0  # no provider configured: notifications wait in the web inbox (a warning at start-up says so)
    # A claimed row that never went out before a crash is re-sent as a possible duplicate: claim only what the
    # senders can work through promptly.
    batch = _claim_batch(delivery, batch)
    with store.unit_of_work() as port:
        rows = port.claim_due_deliveries(now, batch)
        if not rows:
            return 0
        claimed = _claim(port, delivery, rows, now)
    if claimed:
        results = delivery.send_all([(channel, message) for _, _, channel, message in claimed])
        _record(store, delivery, claimed, results, now)
    return len(rows)


def _claim_batch(delivery: DeliveryService, batch: int) -> int:
    return min(batch, max(1, delivery.claim_batch))


def _claim(port: StorePort, delivery: DeliveryService, rows: Sequence[DueDelivery],
           now: datetime) -> list[tuple[str, int, Channel, Message]]:
    """Resolve the new rows and mark the due ones ``sending``, with one statement per kind of change. The rare
    cases (a lease ran out, a withheld, acknowledged or missing notification, nothing left working on a
    notification) go through the live records, after those statements."""
    claimed: list[tuple[str, int, Channel, Message]] = []
    notifications = port.notification_fields({row.notification_id for row in rows})
    channels = port.channel_states(notifications)
    by_notification: dict[str, list[DueDelivery]] = {}
    for row in rows:
        by_notification.setdefault(row.notification_id, []).append(row)
    sending: list[Sending] = []
    resolved: list[Resolved] = []
    slow: list[str] = []  # row ids for the live records' path
    advance: set[str] = set()  # notifications with nothing left working on them
    lease_until = now + timedelta(seconds=delivery.retry.lease_seconds)
    for notification_id, its_rows in by_notification.items():
        notification = notifications.get(notification_id)
        if notification is None or notification.status in _NOT_SENT \
                or any(row.state == DeliveryState.SENDING for row in its_rows):
            slow += [row.id for row in its_rows]
            continue
        states = channels[notification_id]
        for row in its_rows:
            state, position = row.state, row.position
            if state == DeliveryState.NEW:
                route = delivery.routes.route(notification.recipient_role, notification.urgency)
                state, position = resolve(row.channel, set(states), delivery.configured_for(notification), route)
            if state == DeliveryState.PENDING:
                channel = delivery.channels[row.channel]
                sending.append(Sending(row.id, position, row.attempts + 1, channel.provider, lease_until))
                claimed.append((row.id, row.attempts + 1, channel,
                                _message(delivery, notification, row.channel, row.id,
                                         delivery.address(row.channel, notification) or "")))
                state = DeliveryState.SENDING
            else:
                error = "not in this recipient's route, or no provider for it" if state == DeliveryState.SKIPPED \
                    else row.last_error
                resolved.append(Resolved(row.id, state, position, error))
            states[row.channel] = state
        if not set(states.values()) & (ACTIVE | REACHED):
            advance.add(notification_id)
    port.mark_sending(sending, now)
    port.mark_resolved(resolved)
    if slow or advance:
        claimed += _claim_slowly(port, delivery, slow, advance, now)
    return claimed


def _claim_slowly(port: StorePort, delivery: DeliveryService, row_ids: list[str], advance: set[str],
                  now: datetime) -> list[tuple[str, int, Channel, Message]]:
    claimed: list[tuple[str, int, Channel, Message]] = []
    rows = port.deliveries_by_id(row_ids)
    notifications = port.notifications_by_id({row.notification_id for row in rows} | advance)
    siblings = port.deliveries_of_notifications(notifications)
    for row in rows:
        notification = notifications.get(row.notification_id)
        if notification is None or notification.status == NotificationStatus.WITHHELD:
            row.state, row.next_attempt_at = DeliveryState.SKIPPED, None
            continue
        if notification.status == NotificationStatus.ACKNOWLEDGED:
            if row.state == DeliveryState.SENDING:  # cut short by a crash: audited as ever, not re-sent
                _record_failure(port, delivery, row, notification, Outcome.AMBIGUOUS,
                                "the relay stopped while sending", now)
            else:
                row.state, row.next_attempt_at, row.last_error = DeliveryState.SKIPPED, None, ACKNOWLEDGED_FIRST
            continue
        if row.state == DeliveryState.NEW:
            _resolve(delivery, row, notification, siblings[notification.id], now)
        elif row.state == DeliveryState.SENDING:  # its relay died mid-send
            _record_failure(port, delivery, row, notification, Outcome.AMBIGUOUS,
                            "the relay stopped while sending", now)
        if row.state == DeliveryState.PENDING and row.next_attempt_at is not None and row.next_attempt_at <= now:
            channel = delivery.channels[row.channel]
            row.state, row.attempts, row.last_attempt_at = DeliveryState.SENDING, row.attempts + 1, now
            row.provider = channel.provider
            row.next_attempt_at = now + timedelta(seconds=delivery.retry.lease_seconds)
            claimed.append((row.id, row.attempts, channel,
                            _message(delivery, notification, row.channel, row.id,
                                     delivery.address(row.channel, notification) or "")))
    for notification in notifications.values():
        _advance(port, delivery, notification, siblings[notification.id], now)
    DELIVERY_RETRIES_WAITING.set(port.retries_waiting())  # a skipped retry waits no more
    return claimed


def _resolve(delivery: DeliveryService, row: DeliveryRecord, notification: NotificationRecord,
             siblings: Sequence[DeliveryRecord], now: datetime) -> None:
    route = delivery.routes.route(notification.recipient_role, notification.urgency)
    state, position = resolve(row.channel, {s.channel for s in siblings}, delivery.configured_for(notification),
                              route)
    row.state, row.position = state, position
    row.next_attempt_at = now if state == DeliveryState.PENDING else None
    if state == DeliveryState.SKIPPED:
        row.last_error = "not in this recipient's route, or no provider for it"


def _record(store: UnitsOfWork, delivery: DeliveryService, claimed: list[tuple[str, int, Channel, Message]],
            results: list[tuple[Outcome, str | None, str]], now: datetime) -> None:
    """Accepted sends with two multi-row statements; failures through the live records (retry, fallback)."""
    with store.unit_of_work() as port:
        current = port.claimed_deliveries([c[0] for c in claimed])
        notifications = port.notification_fields({row.notification_id for row in current.values()})
        accepted: list[tuple[ClaimedDelivery, str | None]] = []
        failed: dict[str, tuple[Outcome, str]] = {}
        for (row_id, attempts, *_), (outcome, reference, reason) in zip(claimed, results, strict=True):
            row = current.get(row_id)
            if row is None or row.notification_id not in notifications or row.state != DeliveryState.SENDING \
                    or row.attempts != attempts:
                continue  # the lease ran out and another relay took it over
            if outcome is Outcome.ACCEPTED:
                accepted.append((row, reference))
            else:
                failed[row_id] = (outcome, reason)
        port.mark_sent([Accepted(row.id, row.notification_id, row.attempts, reference) for row, reference in accepted],
                       now)
        counted: set[str] = set()
        for row, _ in accepted:
            DELIVERY_ATTEMPTS.labels(row.channel, "accepted").inc()
            duplicate = " (a possible duplicate: re-sent after an ambiguous failure)" if row.ambiguous_resends else ""
            port.audit(now, SYSTEM, "delivered", row.notification_id,
                       f"{row.channel} via {row.provider}: accepted on attempt {row.attempts}{duplicate}")
            notification = notifications[row.notification_id]
            if notification.delivered_at is None and row.notification_id not in counted:
                counted.add(row.notification_id)
                NOTIFICATIONS_SENT.inc()
                DELIVERY_SECONDS.observe(max(0.0, (now - notification.created_at).total_seconds()))
        if failed:
            _record_failures(port, delivery, failed, now)
        DELIVERY_RETRIES_WAITING.set(port.retries_waiting())


def _record_failures(port: StorePort, delivery: DeliveryService, failed: dict[str, tuple[Outcome, str]],
                     now: datetime) -> None:
    rows = port.deliveries_by_id(failed)
    notifications = port.notifications_by_id({row.notification_id for row in rows})
    siblings = port.deliveries_of_notifications(notifications)
    for row in rows:
        notification = notifications.get(row.notification_id)
        if notification is not None:
            outcome, reason = failed[row.id]
            _record_failure(port, delivery, row, notification, outcome, reason, now)
    for notification in notifications.values():
        _advance(port, delivery, notification, siblings[notification.id], now)


def _record_failure(port: StorePort, delivery: DeliveryService, row: DeliveryRecord,
                    notification: NotificationRecord, outcome: Outcome, reason: str, now: datetime) -> None:
    DELIVERY_ATTEMPTS.labels(row.channel, outcome.value).inc()
    row.last_outcome, row.last_error = outcome.value, reason[:200]
    decision = after_failure(outcome, row.attempts, row.ambiguous_resends, delivery.retry)
    if decision != "give_up" and notification.status == NotificationStatus.ACKNOWLEDGED:
        then = ("not retried: acknowledged in the web app first" if decision == "retry"
                else "not re-sent: acknowledged in the web app first; whether this attempt arrived is unknown")
        row.state, row.next_attempt_at, row.last_error = DeliveryState.SKIPPED, None, then
    elif decision == "retry":
        row.state = DeliveryState.PENDING
        row.next_attempt_at = now + delivery.retry.delay(row.attempts)
        then = "retry later"
    elif decision == "resend":
        row.state, row.ambiguous_resends, row.next_attempt_at = DeliveryState.PENDING, row.ambiguous_resends + 1, now
        then = "re-sent once: a possible duplicate"
    else:
        row.state, row.next_attempt_at = DeliveryState.FAILED, None
        then = "given up on this channel"
    port.audit(now, SYSTEM, "failed", notification.id,
               f"{row.channel} attempt {row.attempts}: {outcome.value} ({reason}); {then}")
    delivery.failures.failed(f"{row.channel} deliveries", now, logging.WARNING, "%s delivery failed: %s, notification "
                             "%s; %s", row.channel, outcome.value, notification.id, then)


def _advance(port: StorePort, delivery: DeliveryService, notification: NotificationRecord,
             rows: Sequence[DeliveryRecord], now: datetime) -> None:
    """Once no channel is working on it and none reached anyone: the next fallback channel, else undelivered."""
    if notification.status == NotificationStatus.WITHHELD:
        return
    if notification.status == NotificationStatus.ACKNOWLEDGED:  # no fallback for what its recipient has
        for row in rows:
            if row.state == DeliveryState.STANDBY:
                row.state, row.next_attempt_at, row.last_error = DeliveryState.SKIPPED, None, ACKNOWLEDGED_FIRST
        return
    states = {row.state for row in rows}
    if states & REACHED or states & ACTIVE:
        return
    standby = sorted((row for row in rows if row.state == DeliveryState.STANDBY), key=lambda r: r.position)
    if standby:
        chosen = standby[0]
        chosen.state, chosen.next_attempt_at = DeliveryState.PENDING, now
        port.audit(now, SYSTEM, "failed", notification.id, f"falling back to {chosen.channel}")
        return
    if notification.status == NotificationStatus.VIEWED:
        return  # they opened it in the web app: they were reached (acknowledged ones returned above)
    undelivered(port, notification, delivery.policy, now,
                "no channel for this recipient" if not rows or states <= {DeliveryState.SKIPPED}
                else "every channel failed")


def provider_status(store: UnitsOfWork, delivery: DeliveryService, provider: str, reference: str, status: str,
                    now: datetime) -> bool:
    """A provider's status callback: ``delivered`` confirms; a failure after ``sent`` moves the delivery on to
    its fallback. Returns False for a reference we never sent."""
    failed = status in ("failed", "undelivered", "permanent-failure", "temporary-failure", "technical-failure")
    with store.unit_of_work() as port:
        row = port.delivery_by_provider_reference(provider, reference)
        if row is None:
            return False
        notification = port.notification(row.notification_id)
        if notification is None:
            return False
        if status == "delivered" and row.state == DeliveryState.SENT:
            row.state, row.last_outcome = DeliveryState.DELIVERED, status
            port.audit(now, SYSTEM, "delivered", notification.id, f"{row.channel} via {provider}: delivered")
        elif failed and row.state in REACHED:
            row.state, row.last_outcome, row.last_error = DeliveryState.FAILED, status, f"{provider}: {status}"
            DELIVERY_ATTEMPTS.labels(row.channel, "failed_after_sent").inc()
            port.audit(now, SYSTEM, "failed", notification.id,
                       f"{row.channel} via {provider}: {status} after it was sent")
            siblings = port.deliveries_of_notification(notification.id)
            if not any(s.state in REACHED for s in siblings) and notification.status == NotificationStatus.DELIVERED:
                notification.status = NotificationStatus.PENDING
            _advance(port, delivery, notification, siblings, now)
    return True
