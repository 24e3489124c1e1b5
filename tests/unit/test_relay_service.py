"""The relay (pipeline/service/relay.py) over the store port's fake: deliveries sent and recorded, retried after a
transient failure, moved on to the fallback channel after a permanent one, and confirmed or moved on by the
provider's status callback; a send cut short by a crash re-sent once as a possible duplicate, and one another relay
took over not recorded twice; nothing more sent once a notification is acknowledged (before its retry, before a
crashed send's lease ran out, or mid-send); every channel failing tells the team; the outbox relayed once with a
console line per notification, and kept for the next pass when the topics refuse it while the deliveries still go
out."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from pipeline.adapters.channels import Message, OutboxFileChannel, RecordingChannel
from pipeline.adapters.memory_store import MemoryStore
from pipeline.adapters.metrics import DELIVERY_RETRIES_WAITING, OUTBOX_RELAY_FAILURES
from pipeline.domain.delivery import DeliveryState, Outcome, Retry, Routes
from pipeline.domain.model import Contact, NotificationStatus, PlannedNotification
from pipeline.domain.policy import Policy
from pipeline.service.relay import (
    ACKNOWLEDGED_FIRST,
    DeliveryService,
    deliver_due,
    provider_status,
    relay,
    relay_pass,
)
from pipeline.settings import Settings
from tests.support.world import TERM_EVENING

NOW = TERM_EVENING
RETRY_AFTER = timedelta(seconds=30)
LEASE = timedelta(seconds=Retry().lease_seconds)  # a claimed row's lease (the rule's default)
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


class RelayDied(BaseException):
    """The relay's process ending mid-send (not an ``Exception``: nothing in the relay catches it)."""


@dataclass
class HookedChannel(RecordingChannel):
    """The fake channel, running ``before_send`` once as its first send begins (what happens meanwhile)."""

    before_send: Callable[[], None] | None = None

    def send(self, message: Message) -> str | None:
        hook, self.before_send = self.before_send, None
        if hook is not None:
            hook()
        return super().send(message)


def _crash() -> None:
    raise RelayDied()


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


def _acknowledge(store: MemoryStore, notification_id: str) -> None:
    """Its recipient acknowledges it in the web app."""
    with store.unit_of_work() as port:
        notification = port.notification(notification_id)
        assert notification is not None
        notification.status = NotificationStatus.ACKNOWLEDGED


def _row(store: MemoryStore, channel: str) -> Any:
    [row] = [row for row in store.deliveries if row.channel == channel]
    return row


def _states(store: MemoryStore, of: str | None = None) -> dict[str, tuple[str, int]]:
    """Each delivery row's state and attempts, by channel (of the notification ``of`` alone when given)."""
    return {row.channel: (row.state, row.attempts) for row in store.deliveries if of in (None, row.notification_id)}


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


def test_the_console_has_a_line_for_each_stored_notification_whose_record_is_relayed(store: MemoryStore,
                                                                                  tmp_path: Path) -> None:
    first, second = _notification(store), _notification(store)
    with store.unit_of_work() as port:
        port.outbox(NOW, "deliveries", "e-1", {}, first)  # its second record: no second line
        port.outbox(NOW, "pathway-notifications", "e-2", {}, "no-such-notification")
        port.outbox(NOW, "escalations", "e-3", {"level": 1})
    delivery = replace(_delivery(), console=OutboxFileChannel(tmp_path, "https://safeguard.example"))
    assert relay(store, delivery, RecordingPublisher(), NOW) == 5
    assert delivery.console is not None
    lines = [json.loads(line) for line in delivery.console.path.read_text().splitlines()]
    assert [(line["notification_id"], line["urgency"], line["pathway"], line["school_urn"]) for line in lines] == [
        (first, "URGENT", "self_harm", "100001"), (second, "URGENT", "self_harm", "100001")]


def test_a_pass_works_the_deliveries_before_the_outbox(store: MemoryStore) -> None:
    email = RecordingChannel("email")
    _notification(store, "email")
    publisher = RecordingPublisher(watching=email)
    assert relay_pass(store, _delivery(email), publisher, NOW) == (2, False)
    assert publisher.sent_before == [1]


# ---- a relay dying mid-send, another taking over ---------------------------------------------------------------
def test_a_send_cut_short_by_a_crash_is_re_sent_once_as_a_possible_duplicate(store: MemoryStore) -> None:
    email = HookedChannel("email", before_send=_crash)
    delivery = _delivery(email, RecordingChannel("sms"))
    notification_id = _notification(store, "email")
    with store.unit_of_work() as port:  # its fallback's row comes due a second later
        port.add_delivery(notification_id, "sms", NOW + timedelta(seconds=1))
    with pytest.raises(RelayDied):  # email claimed alone, then the relay died sending it
        deliver_due(store, replace(delivery, claim_batch=1), NOW + timedelta(seconds=1))
    assert _states(store) == {"email": (DeliveryState.SENDING, 1), "sms": (DeliveryState.NEW, 0)}
    # The lease ran out: both rows claimed together, the new one resolved beside the one cut short.
    assert deliver_due(store, delivery, NOW + timedelta(seconds=1) + LEASE) == 2
    assert len(email.sent) == 1
    assert _states(store) == {"email": (DeliveryState.SENT, 2), "sms": (DeliveryState.STANDBY, 0)}
    assert (_row(store, "email").ambiguous_resends, _row(store, "sms").position) == (1, 2)
    assert _audit(store, notification_id) == [
        "failed: email attempt 1: ambiguous (the relay stopped while sending); re-sent once: a possible duplicate",
        "delivered: email via fake: accepted on attempt 2 (a possible duplicate: re-sent after an ambiguous failure)"]


def test_a_send_another_relay_took_over_meanwhile_is_not_recorded_again(store: MemoryStore) -> None:
    other = RecordingChannel("email")  # the relay that took the row over once its lease ran out

    def taken_over() -> None:
        deliver_due(store, _delivery(other), NOW + LEASE)

    slow = HookedChannel("email", before_send=taken_over)
    notification_id = _notification(store, "email")
    assert deliver_due(store, _delivery(slow), NOW) == 1
    assert (len(slow.sent), len(other.sent)) == (1, 1)
    row = _row(store, "email")
    assert (row.state, row.attempts, row.provider_ref) == (DeliveryState.SENT, 2, f"fake-{row.id}")
    assert _audit(store, notification_id) == [
        "failed: email attempt 1: ambiguous (the relay stopped while sending); re-sent once: a possible duplicate",
        "delivered: email via fake: accepted on attempt 2 (a possible duplicate: re-sent after an ambiguous failure)"]


# ---- acknowledged in the web app --------------------------------------------------------------------------------
def test_acknowledged_before_its_retry_nothing_more_is_sent(store: MemoryStore) -> None:
    email, sms = RecordingChannel("email", failures=[Outcome.TRANSIENT]), RecordingChannel("sms")
    delivery = _delivery(email, sms)
    notification_id = _notification(store, "email", "sms")
    deliver_due(store, delivery, NOW)
    assert DELIVERY_RETRIES_WAITING._value.get() == 1
    _acknowledge(store, notification_id)
    assert deliver_due(store, delivery, NOW + RETRY_AFTER) == 1
    assert (email.sent, sms.sent) == ([], [])
    assert _states(store) == {"email": (DeliveryState.SKIPPED, 1), "sms": (DeliveryState.SKIPPED, 0)}
    assert {row.last_error for row in store.deliveries} == {ACKNOWLEDGED_FIRST}
    assert DELIVERY_RETRIES_WAITING._value.get() == 0  # a skipped retry waits no more
    assert deliver_due(store, delivery, NOW + timedelta(hours=1)) == 0
    notification = store.notification(notification_id)
    assert notification is not None and notification.status == NotificationStatus.ACKNOWLEDGED
    assert _audit(store, notification_id) == [
        "failed: email attempt 1: transient (fake email: transient); retry later"]


def test_acknowledged_before_a_crashed_sends_lease_ran_out_it_is_not_re_sent(store: MemoryStore) -> None:
    email, sms = HookedChannel("email", before_send=_crash), RecordingChannel("sms")
    delivery = _delivery(email, sms)
    notification_id = _notification(store, "email", "sms")
    with pytest.raises(RelayDied):
        deliver_due(store, delivery, NOW)
    _acknowledge(store, notification_id)
    assert deliver_due(store, delivery, NOW + LEASE) == 1
    assert (email.sent, sms.sent) == ([], [])
    assert _states(store) == {"email": (DeliveryState.SKIPPED, 1), "sms": (DeliveryState.SKIPPED, 0)}
    not_re_sent = "not re-sent: acknowledged in the web app first; whether this attempt arrived is unknown"
    assert (_row(store, "email").last_error, _row(store, "sms").last_error) == (not_re_sent, ACKNOWLEDGED_FIRST)
    assert _audit(store, notification_id) == [
        f"failed: email attempt 1: ambiguous (the relay stopped while sending); {not_re_sent}"]


def test_acknowledged_mid_send_a_failure_is_not_retried_nor_its_fallback_woken(store: MemoryStore) -> None:
    notification_id = _notification(store, "email", "sms")
    email = HookedChannel("email", failures=[Outcome.TRANSIENT],
                          before_send=lambda: _acknowledge(store, notification_id))
    sms = RecordingChannel("sms")
    delivery = _delivery(email, sms)
    assert deliver_due(store, delivery, NOW) == 2
    assert _states(store) == {"email": (DeliveryState.SKIPPED, 1), "sms": (DeliveryState.SKIPPED, 0)}
    assert (_row(store, "email").last_error, _row(store, "sms").last_error) == (
        "not retried: acknowledged in the web app first", ACKNOWLEDGED_FIRST)
    assert DELIVERY_RETRIES_WAITING._value.get() == 0
    assert deliver_due(store, delivery, NOW + RETRY_AFTER) == 0
    assert (email.sent, sms.sent) == ([], [])
    assert _audit(store, notification_id) == [
        "failed: email attempt 1: transient (fake email: transient); not retried: acknowledged in the web app first"]


# ---- every channel failing --------------------------------------------------------------------------------------
def test_every_channel_failing_the_notification_is_undelivered_and_its_team_told(store: MemoryStore) -> None:
    email = RecordingChannel("email", always_fail=Outcome.PERMANENT)
    sms = RecordingChannel("sms", always_fail=Outcome.PERMANENT)
    delivery = _delivery(email, sms)
    notification_id = _notification(store, "email", "sms")
    deliver_due(store, delivery, NOW)
    deliver_due(store, delivery, NOW)
    assert _states(store, notification_id) == {"email": (DeliveryState.FAILED, 1), "sms": (DeliveryState.FAILED, 1)}
    notification = store.notification(notification_id)
    assert notification is not None and notification.status == NotificationStatus.FAILED
    assert _audit(store, notification_id) == [
        "failed: email attempt 1: permanent (fake email: permanent); given up on this channel",
        "failed: falling back to sms",
        "failed: sms attempt 1: permanent (fake sms: permanent); given up on this channel",
        "failed: no channel delivered it (every channel failed)"]
    [alert] = [n for n in store.notifications if n.id != notification_id]
    assert (alert.recipient_role, alert.status, json.loads(alert.content_json)["undelivered_notification_id"]) == (
        "SCIES", NotificationStatus.PENDING, notification_id)
