"""The relay (pipeline/service/relay.py) over the store port's fake: deliveries sent and recorded, retried after a
transient failure, moved on to the fallback channel after a permanent one, and confirmed or moved on by the
provider's status callback; the outbox relayed once, and kept for the next pass when the topics refuse it while
the deliveries still go out."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from pipeline.adapters.channels import RecordingChannel
from pipeline.adapters.memory_store import MemoryStore
from pipeline.adapters.metrics import OUTBOX_RELAY_FAILURES
from pipeline.domain.delivery import DeliveryState, Outcome, Retry, Routes
from pipeline.domain.model import Contact, NotificationStatus, PlannedNotification
from pipeline.domain.policy import Policy
from pipeline.service.relay import DeliveryService, deliver_due, provider_status, relay, relay_pass
from pipeline.settings import Settings
from tests.support.world import TERM_EVENING

NOW = TERM_EVENING
RETRY_AFTER = timedelta(seconds=30)
ITEM = PlannedNotification(key="dsl", recipient_role="dsl", recipient_ref="100001",
                           contact=Contact("dsl@riverside.sch.example", "+447700900001"), reason="attended ED",
                           urgency="URGENT", content={}, school_urn="100001")


class RecordingPublisher:
    """The output topics, taking every record (``refusing``: refusing every flush, as a broker that is away)."""

    def __init__(self, refusing: bool = False, watching: RecordingChannel | None = None) -> None:
        self.refusing = refusing
        self.published: list[tuple[str, str, dict[str, Any]]] = []
        self.watching = watching
        self.sent_before: list[int] = []  # how many messages ``watching`` had sent as each record was published

    def publish(self, topic: str, key: str, record: dict[str, Any]) -> None:
        self.published.append((topic, key, record))
        if self.watching is not None:
            self.sent_before.append(len(self.watching.sent))

    def flush(self) -> None:
        if self.refusing:
            raise ConnectionError("the broker is away")


def _delivery(*channels: RecordingChannel) -> DeliveryService:
    """Email first, text messages as its fallback, a transient failure retried after ``RETRY_AFTER`` (no jitter)."""
    return DeliveryService(
        channels={channel.kind: channel for channel in channels},
        routes=Routes.from_mapping({"default": {"URGENT": {"send": ["email"], "fallback": ["sms"]}}}),
        retry=Retry(initial_seconds=RETRY_AFTER.total_seconds(), jitter=0.0, max_attempts=3),
        policy=Policy.from_mapping(Settings().rules), public_url="https://safeguard.example", concurrency=1)


def _notification(store: MemoryStore, *channels: str) -> str:
    """A pending notification with a new delivery row on each channel, and its topic record in the outbox."""
    with store.unit_of_work() as port:
        row = port.add_notification("e-1", "self_harm", ITEM, NotificationStatus.PENDING, NOW)
        assert row is not None
        for channel in channels:
            port.add_delivery(row.id, channel, NOW)
        port.outbox(NOW, "pathway-notifications", "e-1", {"notification_id": row.id}, row.id)
        return row.id


def _states(store: MemoryStore) -> dict[str, tuple[str, int]]:
    return {row.channel: (row.state, row.attempts) for row in store.deliveries}


def _audit(store: MemoryStore, notification_id: str) -> list[str]:
    return [f"{line.action}: {line.reason}" for line in store.audit_entries if line.subject_id == notification_id]


def test_a_delivery_is_sent_and_recorded(store: MemoryStore) -> None:
    email = RecordingChannel("email")
    notification_id = _notification(store, "email", "sms")
    assert deliver_due(store, _delivery(email, RecordingChannel("sms")), NOW) == 2
    [message] = email.sent
    assert (message.notification_id, message.to, message.urgency) == (
        notification_id, "dsl@riverside.sch.example", "URGENT")
    assert _states(store) == {"email": (DeliveryState.SENT, 1), "sms": (DeliveryState.STANDBY, 0)}
    [row] = [row for row in store.deliveries if row.channel == "email"]
    assert (row.provider, row.provider_ref, row.last_outcome) == ("fake", f"fake-{row.id}", "accepted")
    notification = store.notification(notification_id)
    assert notification is not None and (notification.status, notification.delivered_at) == (
        NotificationStatus.DELIVERED, NOW)
    assert _audit(store, notification_id) == ["delivered: email via fake: accepted on attempt 1"]
    assert deliver_due(store, _delivery(email), NOW + timedelta(hours=1)) == 0  # nothing sent twice
    assert len(email.sent) == 1


def test_a_transient_failure_is_retried_later(store: MemoryStore) -> None:
    email = RecordingChannel("email", failures=[Outcome.TRANSIENT])
    delivery = _delivery(email)
    notification_id = _notification(store, "email")
    deliver_due(store, delivery, NOW)
    assert (email.sent, _states(store)) == ([], {"email": (DeliveryState.PENDING, 1)})
    assert store.deliveries[0].next_attempt_at == NOW + RETRY_AFTER
    assert deliver_due(store, delivery, NOW + RETRY_AFTER - timedelta(seconds=1)) == 0  # not yet
    assert deliver_due(store, delivery, NOW + RETRY_AFTER) == 1
    assert len(email.sent) == 1 and _states(store) == {"email": (DeliveryState.SENT, 2)}
    assert _audit(store, notification_id) == [
        "failed: email attempt 1: transient (fake email: transient); retry later",
        "delivered: email via fake: accepted on attempt 2"]


def test_a_permanent_failure_falls_back_to_the_next_channel(store: MemoryStore) -> None:
    email, sms = RecordingChannel("email", always_fail=Outcome.PERMANENT), RecordingChannel("sms")
    delivery = _delivery(email, sms)
    notification_id = _notification(store, "email", "sms")
    deliver_due(store, delivery, NOW)
    assert _states(store) == {"email": (DeliveryState.FAILED, 1), "sms": (DeliveryState.PENDING, 0)}
    deliver_due(store, delivery, NOW)
    assert [message.to for message in sms.sent] == ["+447700900001"]
    assert _states(store) == {"email": (DeliveryState.FAILED, 1), "sms": (DeliveryState.SENT, 1)}
    assert _audit(store, notification_id) == [
        "failed: email attempt 1: permanent (fake email: permanent); given up on this channel",
        "failed: falling back to sms", "delivered: sms via fake: accepted on attempt 1"]


def test_the_providers_callback_confirms_a_send_or_moves_on_to_the_fallback(store: MemoryStore) -> None:
    email, sms = RecordingChannel("email"), RecordingChannel("sms")
    delivery = _delivery(email, sms)
    notification_id = _notification(store, "email", "sms")
    deliver_due(store, delivery, NOW)
    [row] = [row for row in store.deliveries if row.channel == "email"]
    assert provider_status(store, delivery, "fake", "no-such-reference", "delivered", NOW) is False
    assert provider_status(store, delivery, "fake", f"fake-{row.id}", "failed", NOW) is True
    assert _states(store) == {"email": (DeliveryState.FAILED, 1), "sms": (DeliveryState.PENDING, 0)}
    notification = store.notification(notification_id)
    assert notification is not None and notification.status == NotificationStatus.PENDING
    deliver_due(store, delivery, NOW)
    [sms_row] = [row for row in store.deliveries if row.channel == "sms"]
    assert provider_status(store, delivery, "fake", f"fake-{sms_row.id}", "delivered", NOW) is True
    assert _states(store) == {"email": (DeliveryState.FAILED, 1), "sms": (DeliveryState.DELIVERED, 1)}
    assert notification.status == NotificationStatus.DELIVERED


def test_the_outbox_is_relayed_once(store: MemoryStore) -> None:
    first, second = _notification(store), _notification(store)
    publisher = RecordingPublisher()
    assert relay(store, _delivery(), publisher, NOW) == 2
    assert [(topic, key, record["notification_id"]) for topic, key, record in publisher.published] == [
        ("pathway-notifications", "e-1", first), ("pathway-notifications", "e-1", second)]
    assert relay(store, _delivery(), publisher, NOW) == 0
    assert len(publisher.published) == 2


def test_topics_refusing_keep_the_outbox_for_the_next_pass_while_deliveries_go(store: MemoryStore) -> None:
    email = RecordingChannel("email")
    delivery = _delivery(email)
    _notification(store, "email")
    failures_before = OUTBOX_RELAY_FAILURES._value.get()
    assert relay_pass(store, delivery, RecordingPublisher(refusing=True), NOW) == (1, False)  # the delivery alone
    assert len(email.sent) == 1 and _states(store) == {"email": (DeliveryState.SENT, 1)}
    assert OUTBOX_RELAY_FAILURES._value.get() == failures_before + 1
    publisher = RecordingPublisher()
    assert relay_pass(store, delivery, publisher, NOW + timedelta(seconds=5)) == (1, False)  # the topic record
    assert [json.dumps(record) for _, _, record in publisher.published] == [
        json.dumps({"notification_id": store.notifications[0].id})]
    assert len(email.sent) == 1


def test_a_pass_works_the_deliveries_before_the_outbox(store: MemoryStore) -> None:
    email = RecordingChannel("email")
    _notification(store, "email")
    publisher = RecordingPublisher(watching=email)
    assert relay_pass(store, _delivery(email), publisher, NOW) == (2, False)
    assert publisher.sent_before == [1]
