"""The deadline sweep, the undelivered fallback and handler-failure retries against the in-memory store: each
ladder step fires once, at its time, to the right people; a failure is counted, then held with the front door
told once (the store port's fake, no database)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from pipeline.adapters.memory_store import MemoryEvent, MemoryStore
from pipeline.domain.model import DeadlineKind, DeadlineState, NotificationKind, NotificationStatus
from pipeline.service.dispatch import RejectedEvent, process
from pipeline.service.handlers import Context
from pipeline.service.notify import undelivered
from pipeline.service.retries import PROCESSING_FAILED, RetryPolicy, record_failure
from pipeline.service.sweep import close_deadline, sweep
from tests.support.world import AMELIA, TERM_EVENING, attendance

pytestmark = pytest.mark.unit



def processed(store: MemoryStore, ctx: Context) -> MemoryEvent:
    body = attendance(AMELIA)
    event = store.add_event("self-harm-attendance", body, TERM_EVENING)
    with store.unit_of_work() as port:
        process(port, event, ctx, TERM_EVENING)
    return event


def ladder_roles(store: MemoryStore) -> list[tuple[str, str]]:
    """(kind, recipient_role) of what the sweep sent, in order."""
    return [(n.kind, n.recipient_role) for n in store.notifications
            if n.kind in (NotificationKind.REMINDER, NotificationKind.ESCALATION)]


def test_each_step_fires_once_at_its_time_to_its_people(store: MemoryStore, ctx: Context) -> None:
    processed(store, ctx)
    (deadline,) = store.deadlines
    assert sweep(store, ctx, datetime(2026, 11, 25, 11, 59, tzinfo=UTC)) == 0
    noon = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    assert sweep(store, ctx, noon) == 1
    assert sweep(store, ctx, noon) == 0  # a second sweep at the same moment fires nothing more
    assert ladder_roles(store) == [("reminder", "dsl"), ("reminder", "deputy_dsl")]
    assert (deadline.escalation_level, deadline.state) == (1, DeadlineState.OPEN)
    assert deadline.next_step_at == datetime(2026, 11, 25, 14, 0, tzinfo=UTC)  # two working hours later
    reminders = [n for n in store.notifications if n.kind == NotificationKind.REMINDER]
    assert {n.deadline_id for n in reminders} == {deadline.id}
    assert all(json.loads(n.content_json)["original"]["attendance_id"] for n in reminders)

    assert sweep(store, ctx, datetime(2026, 11, 25, 14, 0, tzinfo=UTC)) == 1
    assert ladder_roles(store)[-1] == ("escalation", "SCIES")
    assert sweep(store, ctx, datetime(2026, 11, 25, 15, 30, tzinfo=UTC)) == 1  # the end of the school day
    assert ladder_roles(store)[-1] == ("escalation", "EDUCATION_SAFEGUARDING_LEAD")
    assert sweep(store, ctx, datetime(2026, 11, 30, 9, 0, tzinfo=UTC)) == 0
    assert (deadline.escalation_level, deadline.next_step_at) == (3, None)
    escalations = [line for line in store.outbox_lines if line.topic == "escalations"]
    assert [line.body["level"] for line in escalations] == [1, 1, 2, 3]
    assert [a.reason for a in store.audit_entries if a.action == "escalated" and a.subject_id == deadline.id] == [
        "self_harm_acknowledgement level 1 (reminder)", "self_harm_acknowledgement level 2 (escalation)",
        "self_harm_acknowledgement level 3 (escalation)"]


def test_steps_missed_while_down_all_fire_on_the_first_sweep_once(store: MemoryStore, ctx: Context) -> None:
    processed(store, ctx)
    later = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
    assert sweep(store, ctx, later) == 3
    assert sweep(store, ctx, later) == 0
    assert sorted(role for _, role in ladder_roles(store)) == sorted(
        ["dsl", "deputy_dsl", "SCIES", "EDUCATION_SAFEGUARDING_LEAD"])


def test_a_closed_deadline_never_escalates(store: MemoryStore, ctx: Context) -> None:
    processed(store, ctx)
    (deadline,) = store.deadlines
    with store.unit_of_work() as port:
        close_deadline(port, deadline, TERM_EVENING, "acknowledged by the DSL", actor="dsl@riverside.sch.example")
        close_deadline(port, deadline, TERM_EVENING, "closed twice")  # no second entry
    assert sweep(store, ctx, datetime(2026, 11, 30, 9, 0, tzinfo=UTC)) == 0
    assert ladder_roles(store) == []
    assert [(a.actor, a.reason) for a in store.audit_entries if a.action == "closed"] == [
        ("dsl@riverside.sch.example", "self_harm_acknowledgement closed: acknowledged by the DSL")]


def test_the_sweep_works_in_batches(store: MemoryStore, ctx: Context) -> None:
    for _ in range(3):
        processed(store, ctx)
    assert sweep(store, ctx, datetime(2026, 11, 25, 12, 0, tzinfo=UTC), batch=2) == 3
    assert len(ladder_roles(store)) == 6


def test_undelivered_tells_the_team_once(store: MemoryStore, ctx: Context) -> None:
    processed(store, ctx)
    dsl = next(n for n in store.notifications if n.recipient_role == "dsl")
    at = TERM_EVENING + timedelta(minutes=5)
    with store.unit_of_work() as port:
        undelivered(port, dsl, ctx.policy, at, "email: permanent")
        undelivered(port, dsl, ctx.policy, at, "email: permanent")  # already failed: nothing more
    assert dsl.status == NotificationStatus.FAILED
    team = [n for n in store.notifications if n.plan_key == "undelivered:team"]
    assert [(n.recipient_role, n.dedupe_key) for n in team] == [("SCIES", f"undelivered:{dsl.id}:team")]
    assert [a.subject_id for a in store.audit_entries if a.action == "failed"] == [dsl.id]


def test_nobody_reachable_alerts_the_front_door_with_an_escalating_deadline(store: MemoryStore,
                                                                            ctx: Context) -> None:
    processed(store, ctx)
    dsl = next(n for n in store.notifications if n.recipient_role == "dsl")
    at = TERM_EVENING + timedelta(minutes=5)
    with store.unit_of_work() as port:
        undelivered(port, dsl, ctx.policy, at, "every channel failed")
    team_alert = next(n for n in store.notifications if n.plan_key == "undelivered:team")
    with store.unit_of_work() as port:  # SCiES cannot be reached either
        undelivered(port, team_alert, ctx.policy, at, "every channel failed")
    front = [n for n in store.notifications if n.plan_key == "undelivered:front_door"]
    assert [(n.recipient_role, n.urgency) for n in front] == [("FRONT_DOOR", "URGENT")]
    failure = next(d for d in store.deadlines if d.kind == DeadlineKind.DELIVERY_FAILURE)
    assert (failure.subject_id, front[0].deadline_id) == (front[0].id, failure.id)
    assert sweep(store, ctx, at) == 1  # due at once: the front-door manager hears straight away
    assert ladder_roles(store) == [("escalation", "FRONT_DOOR_MANAGER")]


def test_a_failure_is_tried_again_then_held_with_the_front_door_told_once(store: MemoryStore, ctx: Context) -> None:
    event = store.add_event("self-harm-attendance", attendance(AMELIA), TERM_EVENING)
    retry = RetryPolicy(attempts=3, first_delay=timedelta(seconds=10))
    with store.unit_of_work() as port:
        assert not record_failure(port, event, KeyError("x"), retry, TERM_EVENING)
        assert event.next_attempt_at == TERM_EVENING + timedelta(seconds=10)
        assert not record_failure(port, event, KeyError("x"), retry, TERM_EVENING)
        assert event.next_attempt_at == TERM_EVENING + timedelta(seconds=20)
        assert record_failure(port, event, KeyError("x"), retry, TERM_EVENING)
    assert (event.attempts, event.error, event.held_at, event.next_attempt_at) == (
        3, "KeyError", TERM_EVENING, None)
    (alert,) = store.notifications
    assert (alert.recipient_role, alert.urgency, alert.pathway) == ("FRONT_DOOR", "URGENT", "self-harm")
    assert json.loads(alert.content_json) == {
        "problem": PROCESSING_FAILED, "event_id": event.event_id, "event_type": "self-harm-attendance",
        "received_at": TERM_EVENING.isoformat(), "attempts": 3, "error": "KeyError"}
    assert "Amelia" not in alert.content_json and "Hartley" not in alert.content_json
    with store.unit_of_work() as port:
        assert port.held_event_ids() == [event.event_id]


def test_a_rejected_event_is_dead_lettered_at_once(store: MemoryStore, ctx: Context) -> None:
    event = store.add_event("self-harm-attendance", attendance(AMELIA), TERM_EVENING)
    with store.unit_of_work() as port:
        assert record_failure(port, event, RejectedEvent("child_id: never issued"), RetryPolicy(), TERM_EVENING)
    assert (event.status, event.attempts) == ("dead_lettered", 0)
    (letter,) = store.dead_letters
    assert (letter.source, letter.reason, letter.event_id) == ("handler", "child_id: never issued", event.event_id)
    published = [line for line in store.outbox_lines if line.topic == "dead-letters"]
    assert [(line.key, line.body["payload"]) for line in published] == [(letter.id, "")]
