"""The delivery part of the storage port's contract (pipeline/ports/deliveries.py): the outbox relay's and the
deliveries' reads and changes give the same answers on the in-memory fake, SQLite and PostgreSQL; plain rows are
what was read, live records are stored with their unit of work, and a unit of work that fails keeps nothing."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from pipeline.domain.delivery import DeliveryState
from pipeline.domain.model import Contact, NotificationStatus, PlannedNotification
from pipeline.ports import StorePort
from pipeline.ports.deliveries import Accepted, Resolved, Sending
from tests.support.store_ports import Backend

NOW = datetime.fromisoformat("2026-11-24T20:00:00+00:00")
MINUTE = timedelta(minutes=1)
ITEM = PlannedNotification(key="dsl", recipient_role="dsl", recipient_ref="100001",
                           contact=Contact("dsl@riverside.sch.example", "+447700900001"), reason="attended ED",
                           urgency="URGENT", content={"attendance_id": "ED-1"}, school_urn="100001")


def _notification(port: StorePort, channels: tuple[str, ...] = ("email", "sms"), *,
                  status: str = NotificationStatus.PENDING, at: datetime = NOW, **changes: Any) -> str:
    """A notification (of ``ITEM`` with ``changes``) stored at ``at``, with a new delivery row, due then, on each
    of ``channels``."""
    row = port.add_notification("e-1", "self_harm", replace(ITEM, **changes), status, at)
    assert row is not None
    for channel in channels:
        port.add_delivery(row.id, channel, at)
    return row.id


def _row_ids(backend: Backend, notification_id: str) -> dict[str, str]:
    """The notification's delivery row ids, by channel."""
    with backend.units.unit_of_work() as port:
        return {row.channel: row.id for row in port.deliveries_of_notification(notification_id)}


def _change(backend: Backend, row_id: str, **values: Any) -> None:
    """Set a stored delivery row's columns (as the relay's rarer cases do, through the live record)."""
    with backend.units.unit_of_work() as port:
        [row] = port.deliveries_by_id([row_id])
        for name, value in values.items():
            setattr(row, name, value)


def _columns(backend: Backend, row_id: str, *names: str) -> tuple[Any, ...]:
    with backend.units.unit_of_work() as port:
        [row] = port.deliveries_by_id([row_id])
        return tuple(getattr(row, name) for name in names)


# ---- the outbox -------------------------------------------------------------------------------------------------
def test_outbox_rows_are_due_oldest_first_with_their_notifications_fields(store_backend: Backend) -> None:
    with store_backend.units.unit_of_work() as port:
        notification_id = _notification(port, (), urgency="STANDARD", school_urn="100002")
        port.outbox(NOW, "pathway-notifications", "e-1", {"notification_id": notification_id, "at": NOW},
                    notification_id)
        port.outbox(NOW, "escalations", "e-2", {"level": 1})
        port.outbox(NOW, "deliveries", "e-3", {}, "no-such-notification")
    with store_backend.units.unit_of_work() as port:
        due = port.outbox_due(10)
        assert [(row.topic, row.key, json.loads(row.body_json), row.notification_id, row.found_notification,
                 row.urgency, row.school_urn, row.pathway) for row in due] == [
            ("pathway-notifications", "e-1", {"notification_id": notification_id, "at": str(NOW)}, notification_id,
             notification_id, "STANDARD", "100002", "self_harm"),
            ("escalations", "e-2", {"level": 1}, None, None, None, None, None),
            ("deliveries", "e-3", {}, "no-such-notification", None, None, None, None)]
        assert len({row.id for row in due}) == 3
        assert [row.key for row in port.outbox_due(2)] == ["e-1", "e-2"]


def test_rows_marked_relayed_are_not_due_again_unless_their_unit_of_work_failed(store_backend: Backend) -> None:
    with store_backend.units.unit_of_work() as port:
        for key in ("e-1", "e-2", "e-3"):
            port.outbox(NOW, "escalations", key, {})
    with store_backend.units.unit_of_work() as port:
        first_two = [row.id for row in port.outbox_due(2)]
        port.mark_relayed(first_two, NOW)
        port.mark_relayed([], NOW)  # nothing to mark: no error
    with pytest.raises(RuntimeError), store_backend.units.unit_of_work() as port:
        port.mark_relayed([row.id for row in port.outbox_due(10)], NOW)
        raise RuntimeError("the topics refused the batch")
    with store_backend.units.unit_of_work() as port:
        assert [row.key for row in port.outbox_due(10)] == ["e-3"]


# ---- claiming ---------------------------------------------------------------------------------------------------
def test_due_rows_are_claimed_earliest_first_new_pending_due_and_leases_run_out(store_backend: Backend) -> None:
    with store_backend.units.unit_of_work() as port:
        first = _notification(port, ("email", "sms", "webhook", "post", "pager", "fax"), at=NOW - 10 * MINUTE)
        later = _notification(port, ("email",), at=NOW + MINUTE)  # not due yet
    rows = _row_ids(store_backend, first)
    _change(store_backend, rows["email"], state=DeliveryState.PENDING, attempts=1, position=1,
            last_error="fake: transient", next_attempt_at=NOW - 5 * MINUTE)
    _change(store_backend, rows["sms"], state=DeliveryState.SENDING, attempts=2,
            next_attempt_at=NOW - 3 * MINUTE)  # its lease ran out
    _change(store_backend, rows["post"], state=DeliveryState.SENT, next_attempt_at=None)
    # Under a live lease: its relay may be sending it now, so claiming it again would send it twice.
    _change(store_backend, rows["pager"], state=DeliveryState.SENDING, attempts=1, next_attempt_at=NOW + 5 * MINUTE)
    # Sent, with a time left over that has passed: only the state says it is done.
    _change(store_backend, rows["fax"], state=DeliveryState.SENT, attempts=1, next_attempt_at=NOW - 7 * MINUTE)
    with store_backend.units.unit_of_work() as port:
        due = port.claim_due_deliveries(NOW, 10)
        assert [(row.id, row.notification_id, row.channel, row.state, row.position, row.attempts, row.last_error)
                for row in due] == [
            (rows["webhook"], first, "webhook", DeliveryState.NEW, 0, 0, None),
            (rows["email"], first, "email", DeliveryState.PENDING, 1, 1, "fake: transient"),
            (rows["sms"], first, "sms", DeliveryState.SENDING, 0, 2, None)]
        assert [row.channel for row in port.claim_due_deliveries(NOW, 2)] == ["webhook", "email"]
    with store_backend.units.unit_of_work() as port:
        assert {row.notification_id for row in port.claim_due_deliveries(NOW + 2 * MINUTE, 10)} == {first, later}
        assert rows["pager"] not in {row.id for row in port.claim_due_deliveries(NOW + 2 * MINUTE, 10)}
    with store_backend.units.unit_of_work() as port:  # the lease ran out: claimed (the ambiguous case)
        assert rows["pager"] in {row.id for row in port.claim_due_deliveries(NOW + 5 * MINUTE, 10)}


def test_claimed_rows_are_plain_rows_as_they_were_when_claimed(store_backend: Backend) -> None:
    with store_backend.units.unit_of_work() as port:
        notification_id = _notification(port, ("email",))
    with store_backend.units.unit_of_work() as port:
        [row] = port.claim_due_deliveries(NOW, 10)
        port.mark_sending([Sending(row.id, 2, 1, "fake", NOW + MINUTE)], NOW)
        assert (row.notification_id, row.state, row.attempts, row.position) == (
            notification_id, DeliveryState.NEW, 0, 0)


def test_notification_fields_are_read_for_stored_notifications_as_they_were(store_backend: Backend) -> None:
    with store_backend.units.unit_of_work() as port:
        first = _notification(port, ("email",), at=NOW - MINUTE)
        second = _notification(port, (), status=NotificationStatus.VIEWED, recipient_role="worker",
                               contact=Contact("sam.worker@northshire.gov.example", None), school_urn=None,
                               urgency="STANDARD")
    with store_backend.units.unit_of_work() as port:
        fields = port.notification_fields([first, second, "no-such-notification", first])
        assert set(fields) == {first, second}
        assert [(n.id, n.status, n.recipient_role, n.urgency, n.school_urn, n.pathway, n.contact_email,
                 n.contact_phone, n.created_at, n.delivered_at) for n in (fields[first], fields[second])] == [
            (first, NotificationStatus.PENDING, "dsl", "URGENT", "100001", "self_harm", "dsl@riverside.sch.example",
             "+447700900001", NOW - MINUTE, None),
            (second, NotificationStatus.VIEWED, "worker", "STANDARD", None, "self_harm",
             "sam.worker@northshire.gov.example", None, NOW, None)]
        [row] = port.claim_due_deliveries(NOW, 10)
        port.mark_sending([Sending(row.id, 0, 1, "fake", NOW + MINUTE)], NOW)
        port.mark_sent([Accepted(row.id, first, 1, "ref-1")], NOW)
        assert (fields[first].status, fields[first].delivered_at) == (NotificationStatus.PENDING, None)
        assert port.notification_fields([]) == {}


def test_channel_states_are_each_notifications_rows_by_channel(store_backend: Backend) -> None:
    with store_backend.units.unit_of_work() as port:
        both = _notification(port, ("email", "sms"))
        none = _notification(port, ())
    _change(store_backend, _row_ids(store_backend, both)["sms"], state=DeliveryState.STANDBY)
    with store_backend.units.unit_of_work() as port:
        assert port.channel_states([both, none, "no-such-notification"]) == {
            both: {"email": DeliveryState.NEW, "sms": DeliveryState.STANDBY}, none: {}, "no-such-notification": {}}
        assert port.channel_states([]) == {}


def test_rows_marked_sending_carry_their_attempt_provider_and_lease(store_backend: Backend) -> None:
    with store_backend.units.unit_of_work() as port:
        notification_id = _notification(port, ("email", "sms"))
    rows = _row_ids(store_backend, notification_id)
    with store_backend.units.unit_of_work() as port:
        port.mark_sending([Sending(rows["email"], 1, 3, "smtp", NOW + 5 * MINUTE)], NOW)
        port.mark_sending([], NOW)  # nothing to mark: no error
    names = ("state", "position", "attempts", "provider", "last_attempt_at", "next_attempt_at")
    assert _columns(store_backend, rows["email"], *names) == (
        DeliveryState.SENDING, 1, 3, "smtp", NOW, NOW + 5 * MINUTE)
    assert _columns(store_backend, rows["sms"], *names) == (DeliveryState.NEW, 0, 0, None, None, NOW)


def test_rows_marked_resolved_take_their_state_position_and_error_and_are_due_never(store_backend: Backend) -> None:
    with store_backend.units.unit_of_work() as port:
        notification_id = _notification(port, ("email", "sms", "webhook"))
    rows = _row_ids(store_backend, notification_id)
    with store_backend.units.unit_of_work() as port:
        port.mark_resolved([Resolved(rows["sms"], DeliveryState.STANDBY, 1, None),
                            Resolved(rows["webhook"], DeliveryState.SKIPPED, 0, "not in this recipient's route")])
        port.mark_resolved([])
    names = ("state", "position", "last_error", "next_attempt_at")
    assert [_columns(store_backend, rows[channel], *names) for channel in ("email", "sms", "webhook")] == [
        (DeliveryState.NEW, 0, None, NOW), (DeliveryState.STANDBY, 1, None, None),
        (DeliveryState.SKIPPED, 0, "not in this recipient's route", None)]
    with store_backend.units.unit_of_work() as port:
        assert [row.channel for row in port.claim_due_deliveries(NOW, 10)] == ["email"]


# ---- recording ----------------------------------------------------------------------------------------------------
def test_claimed_deliveries_are_the_rows_as_they_are_now(store_backend: Backend) -> None:
    with store_backend.units.unit_of_work() as port:
        notification_id = _notification(port, ("email", "sms"))
    rows = _row_ids(store_backend, notification_id)
    with store_backend.units.unit_of_work() as port:
        port.mark_sending([Sending(rows["email"], 0, 2, "smtp", NOW + MINUTE)], NOW)
    _change(store_backend, rows["email"], ambiguous_resends=1)
    with store_backend.units.unit_of_work() as port:
        found = port.claimed_deliveries([rows["email"], rows["sms"], "no-such-row"])
        assert set(found) == {rows["email"], rows["sms"]}
        assert [(row.id, row.notification_id, row.channel, row.state, row.attempts, row.provider,
                 row.ambiguous_resends) for row in (found[rows["email"]], found[rows["sms"]])] == [
            (rows["email"], notification_id, "email", DeliveryState.SENDING, 2, "smtp", 1),
            (rows["sms"], notification_id, "sms", DeliveryState.NEW, 0, None, 0)]
        assert port.claimed_deliveries([]) == {}


def test_accepted_sends_still_claimed_are_sent_and_their_notifications_delivered(store_backend: Backend) -> None:
    with store_backend.units.unit_of_work() as port:
        pending = _notification(port, ("email", "sms"))
        failed = _notification(port, ("email",), status=NotificationStatus.FAILED)
        viewed = _notification(port, ("email",), status=NotificationStatus.VIEWED)
    rows = {key: _row_ids(store_backend, notification_id) for key, notification_id in
            (("pending", pending), ("failed", failed), ("viewed", viewed))}
    with store_backend.units.unit_of_work() as port:
        port.mark_sending([Sending(row_id, 0, 1, "fake", NOW + MINUTE) for channels in rows.values()
                           for row_id in channels.values()], NOW)
    with store_backend.units.unit_of_work() as port:
        port.mark_sent([Accepted(rows["pending"]["email"], pending, 1, "ref-email"),
                        Accepted(rows["pending"]["sms"], pending, 2, "ref-sms"),  # another relay's attempt now
                        Accepted(rows["failed"]["email"], failed, 1, None),
                        Accepted(rows["viewed"]["email"], viewed, 1, "ref-viewed")], NOW + MINUTE)
        port.mark_sent([], NOW)
    names = ("state", "last_outcome", "last_error", "next_attempt_at", "provider_ref")
    assert _columns(store_backend, rows["pending"]["email"], *names) == (
        DeliveryState.SENT, "accepted", None, None, "ref-email")
    assert _columns(store_backend, rows["pending"]["sms"], *names) == (
        DeliveryState.SENDING, None, None, NOW + MINUTE, None)
    assert _columns(store_backend, rows["failed"]["email"], "state", "provider_ref") == (DeliveryState.SENT, None)
    with store_backend.units.unit_of_work() as port:
        fields = port.notification_fields([pending, failed, viewed])
        assert [(fields[n].status, fields[n].delivered_at) for n in (pending, failed, viewed)] == [
            (NotificationStatus.DELIVERED, NOW + MINUTE), (NotificationStatus.DELIVERED, NOW + MINUTE),
            (NotificationStatus.VIEWED, NOW + MINUTE)]
    with store_backend.units.unit_of_work() as port:  # delivered before: when it was delivered is kept
        port.mark_sent([Accepted(rows["pending"]["sms"], pending, 1, "ref-sms")], NOW + 9 * MINUTE)
    assert _columns(store_backend, rows["pending"]["sms"], "state", "provider_ref") == (DeliveryState.SENT, "ref-sms")
    with store_backend.units.unit_of_work() as port:
        assert port.notification_fields([pending])[pending].delivered_at == NOW + MINUTE


def test_retries_waiting_are_pending_rows_tried_before(store_backend: Backend) -> None:
    with store_backend.units.unit_of_work() as port:
        notification_id = _notification(port, ("email", "sms", "webhook", "post"))
    rows = _row_ids(store_backend, notification_id)
    with store_backend.units.unit_of_work() as port:
        assert port.retries_waiting() == 0
    _change(store_backend, rows["email"], state=DeliveryState.PENDING, attempts=1)
    _change(store_backend, rows["sms"], state=DeliveryState.PENDING, attempts=3)
    _change(store_backend, rows["webhook"], state=DeliveryState.PENDING)  # a fallback woken: never tried
    _change(store_backend, rows["post"], state=DeliveryState.FAILED, attempts=5)
    with store_backend.units.unit_of_work() as port:
        assert port.retries_waiting() == 2


def test_retries_waiting_count_this_unit_of_works_changes_to_live_records(store_backend: Backend) -> None:
    with store_backend.units.unit_of_work() as port:
        notification_id = _notification(port, ("email", "sms"))
    rows = _row_ids(store_backend, notification_id)
    _change(store_backend, rows["sms"], state=DeliveryState.PENDING, attempts=2)
    with store_backend.units.unit_of_work() as port:
        assert port.retries_waiting() == 1
        email, sms = sorted(port.deliveries_by_id([rows["email"], rows["sms"]]), key=lambda row: row.channel)
        email.state, email.attempts = DeliveryState.PENDING, 1  # a transient failure: retried later
        assert port.retries_waiting() == 2
        sms.state, sms.next_attempt_at = DeliveryState.SKIPPED, None  # acknowledged: a retry skipped waits no more
        assert port.retries_waiting() == 1


class _Undone(Exception):
    """Raised to roll a unit of work back."""


def test_plain_rows_and_batches_come_after_this_unit_of_works_changes_to_live_records(store_backend: Backend) -> None:
    with store_backend.units.unit_of_work() as port:
        notification_id = _notification(port, ("email", "sms", "webhook"))
        port.outbox(NOW, "pathway-notifications", "e-1", {"notification_id": notification_id}, notification_id)
    rows = _row_ids(store_backend, notification_id)

    def changed(port: StorePort) -> None:
        """The email row claimed and the notification acknowledged (and re-graded), through the live records."""
        [email] = port.deliveries_by_id([rows["email"]])
        notification = port.notifications_by_id([notification_id])[notification_id]
        email.state, email.attempts, email.next_attempt_at = DeliveryState.SENDING, 1, NOW + MINUTE
        notification.status, notification.urgency = NotificationStatus.ACKNOWLEDGED, "STANDARD"

    questions: list[tuple[Any, Any]] = [
        (lambda port: sorted(row.channel for row in port.claim_due_deliveries(NOW, 10)), ["sms", "webhook"]),
        (lambda port: port.channel_states([notification_id]), {notification_id: {
            "email": DeliveryState.SENDING, "sms": DeliveryState.NEW, "webhook": DeliveryState.NEW}}),
        (lambda port: [(row.state, row.attempts) for row in port.claimed_deliveries([rows["email"]]).values()],
         [(DeliveryState.SENDING, 1)]),
        (lambda port: port.notification_fields([notification_id])[notification_id].status,
         NotificationStatus.ACKNOWLEDGED),
        (lambda port: [row.urgency for row in port.outbox_due(10)], ["STANDARD"])]
    for ask, answer in questions:  # each in a unit of work of its own, after the changes, then undone
        with pytest.raises(_Undone), store_backend.units.unit_of_work() as port:
            changed(port)
            assert ask(port) == answer
            raise _Undone
    with store_backend.units.unit_of_work() as port:  # each batch command lands after the changes before it
        email, sms, webhook = sorted(port.deliveries_by_id(rows.values()), key=lambda row: row.channel)
        notification = port.notifications_by_id([notification_id])[notification_id]
        email.state, email.attempts = DeliveryState.SENDING, 1
        notification.status, notification.urgency = NotificationStatus.ACKNOWLEDGED, "STANDARD"
        port.mark_sent([Accepted(rows["email"], notification_id, 1, "ref-email")], NOW)
        sms.last_error = "changed live"
        port.mark_resolved([Resolved(rows["sms"], DeliveryState.STANDBY, 1, None)])
        webhook.provider = "changed live"
        port.mark_sending([Sending(rows["webhook"], 0, 1, "fake", NOW + MINUTE)], NOW)
    assert _columns(store_backend, rows["email"], "state", "attempts", "provider_ref") == (
        DeliveryState.SENT, 1, "ref-email")
    assert _columns(store_backend, rows["sms"], "state", "last_error") == (DeliveryState.STANDBY, None)
    assert _columns(store_backend, rows["webhook"], "state", "provider") == (DeliveryState.SENDING, "fake")
    with store_backend.units.unit_of_work() as port:
        fields = port.notification_fields([notification_id])[notification_id]
        assert (fields.status, fields.urgency, fields.delivered_at) == (
            NotificationStatus.ACKNOWLEDGED, "STANDARD", NOW)


# ---- live records -------------------------------------------------------------------------------------------------
def test_deliveries_by_id_are_live_records_stored_with_their_unit_of_work(store_backend: Backend) -> None:
    with store_backend.units.unit_of_work() as port:
        notification_id = _notification(port, ("email", "sms"), at=NOW - MINUTE)
    rows = _row_ids(store_backend, notification_id)
    with store_backend.units.unit_of_work() as port:
        found = port.deliveries_by_id([rows["sms"], "no-such-row", rows["email"]])
        assert sorted((row.channel, row.id, row.notification_id, row.state, row.position, row.attempts,
                       row.ambiguous_resends, row.provider, row.provider_ref, row.last_outcome, row.last_error,
                       row.next_attempt_at, row.last_attempt_at, row.created_at) for row in found) == [
            (channel, rows[channel], notification_id, DeliveryState.NEW, 0, 0, 0, None, None, None, None,
             NOW - MINUTE, None, NOW - MINUTE) for channel in ("email", "sms")]
        assert port.deliveries_by_id([]) == []
        for row in found:
            row.state, row.last_outcome, row.last_error = DeliveryState.FAILED, "permanent", "fake: permanent"
    with pytest.raises(RuntimeError), store_backend.units.unit_of_work() as port:
        [row] = port.deliveries_by_id([rows["email"]])
        row.state = DeliveryState.SKIPPED
        raise RuntimeError("the unit of work fails")
    names = ("state", "last_outcome", "last_error")
    assert [_columns(store_backend, rows[channel], *names) for channel in ("email", "sms")] == [
        (DeliveryState.FAILED, "permanent", "fake: permanent")] * 2


def test_notifications_by_id_are_live_records(store_backend: Backend) -> None:
    with store_backend.units.unit_of_work() as port:
        first = _notification(port, ())
        second = _notification(port, (), status=NotificationStatus.ACKNOWLEDGED)
    with store_backend.units.unit_of_work() as port:
        found = port.notifications_by_id([first, second, "no-such-notification"])
        assert {(n.id, n.status, n.plan_key) for n in found.values()} == {
            (first, NotificationStatus.PENDING, "dsl"), (second, NotificationStatus.ACKNOWLEDGED, "dsl")}
        assert set(found) == {first, second}
        assert port.notifications_by_id([]) == {}
        found[first].status = NotificationStatus.FAILED
    with store_backend.units.unit_of_work() as port:
        assert port.notifications_by_id([first])[first].status == NotificationStatus.FAILED


def test_deliveries_of_notifications_are_each_ones_rows(store_backend: Backend) -> None:
    with store_backend.units.unit_of_work() as port:
        both = _notification(port, ("email", "sms"))
        one = _notification(port, ("webhook",))
        none = _notification(port, ())
    with store_backend.units.unit_of_work() as port:
        found = port.deliveries_of_notifications([both, one, none])
        assert {key: sorted((row.notification_id, row.channel) for row in rows) for key, rows in found.items()} == {
            both: [(both, "email"), (both, "sms")], one: [(one, "webhook")], none: []}
        assert port.deliveries_of_notifications([]) == {}
        [webhook] = found[one]
        webhook.state = DeliveryState.PENDING
    assert _columns(store_backend, _row_ids(store_backend, one)["webhook"], "state") == (DeliveryState.PENDING,)


def test_deliveries_of_a_notification_come_by_position_then_channel(store_backend: Backend) -> None:
    with store_backend.units.unit_of_work() as port:
        notification_id = _notification(port, ("webhook", "sms", "email", "post"))
        other = _notification(port, ("email",))
    rows = _row_ids(store_backend, notification_id)
    _change(store_backend, rows["email"], position=2)
    _change(store_backend, rows["post"], position=1)
    with store_backend.units.unit_of_work() as port:
        assert [row.channel for row in port.deliveries_of_notification(notification_id)] == [
            "sms", "webhook", "post", "email"]
        assert [row.channel for row in port.deliveries_of_notification(other)] == ["email"]
        assert port.deliveries_of_notification("no-such-notification") == []


def test_a_delivery_is_found_by_its_providers_reference(store_backend: Backend) -> None:
    with store_backend.units.unit_of_work() as port:
        notification_id = _notification(port, ("email", "sms"))
    rows = _row_ids(store_backend, notification_id)
    _change(store_backend, rows["sms"], state=DeliveryState.SENT, provider="twilio", provider_ref="SM123")
    _change(store_backend, rows["email"], state=DeliveryState.SENT, provider="notify", provider_ref="SM124")
    with store_backend.units.unit_of_work() as port:
        found = port.delivery_by_provider_reference("twilio", "SM123")
        assert found is not None and (found.id, found.channel) == (rows["sms"], "sms")
        assert port.delivery_by_provider_reference("notify", "SM123") is None
        assert port.delivery_by_provider_reference("twilio", "SM999") is None
        found.state = DeliveryState.DELIVERED
    assert _columns(store_backend, rows["sms"], "state") == (DeliveryState.DELIVERED,)
