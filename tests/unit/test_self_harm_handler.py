"""The self-harm handler against the in-memory store: who is told, which deadlines are bound to which
notification, and that an event has its effects once (the store port's fake, no database)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from pipeline import codec
from pipeline.adapters.memory_store import MemoryEvent, MemoryStore, UniquenessViolation
from pipeline.adapters.store_records import Notification
from pipeline.domain.events import identity_from_record
from pipeline.domain.model import DeadlineKind, EventStatus, MatchOutcome, NotificationKind, NotificationStatus
from pipeline.service import handlers
from pipeline.service.children import resolve_children_ahead
from pipeline.service.dispatch import process
from pipeline.service.handlers import Context
from pipeline.service.retries import RetryPolicy, record_failure, retry_events
from tests.support.world import AMELIA, HARVEY, ISLA, JACOB, NOAH, OLIVER, TERM_EVENING, UNKNOWN, attendance

pytestmark = pytest.mark.unit

NEXT_NOON = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def run(store: MemoryStore, ctx: Context, body: dict[str, Any], now: datetime = TERM_EVENING) -> MemoryEvent:
    """Accept the event and process it in one unit of work, as the intake consumer does."""
    store.add_event("self-harm-attendance", body, now)
    with store.unit_of_work() as port:
        (event,) = port.events_by_id([body["event_id"]])
        process(port, event, ctx, now)
    stored = store.event(body["event_id"])
    assert stored is not None
    return stored


def notes(store: MemoryStore, event: MemoryEvent) -> dict[str, Notification]:
    found = {n.recipient_role: n for n in store.notifications if n.event_id == event.event_id}
    assert len(found) == len([n for n in store.notifications if n.event_id == event.event_id]), "one per role"
    return found


def test_an_in_area_pupil_reaches_the_dsl_and_deputy_sharing_one_deadline(store: MemoryStore, ctx: Context) -> None:
    event = run(store, ctx, attendance(AMELIA))
    assert (event.status, event.match_outcome, event.processed_at) == (EventStatus.PROCESSED, MatchOutcome.LINKED,
                                                                      TERM_EVENING)
    assert event.child_id is not None and store.person_key_of(event.child_id) == "upn:A999100100001"
    sent = notes(store, event)
    assert sorted(sent) == ["deputy_dsl", "dsl"]
    assert (sent["dsl"].recipient_ref, sent["dsl"].contact_email, sent["deputy_dsl"].contact_email) == (
        "100001", "dsl@riverside.sch.example", "deputy@riverside.sch.example")
    (deadline,) = store.deadlines
    assert (deadline.kind, deadline.subject_id, deadline.due_at, deadline.child_id) == (
        DeadlineKind.SELF_HARM_ACKNOWLEDGEMENT, sent["dsl"].id, NEXT_NOON, event.child_id)
    assert sent["dsl"].deadline_id == sent["deputy_dsl"].deadline_id == deadline.id
    # One delivery per channel each recipient has an address for (the school's webhook too); topic records.
    assert sorted((d.notification_id, d.channel) for d in store.deliveries) == sorted(
        [(sent["dsl"].id, "email"), (sent["dsl"].id, "sms"), (sent["dsl"].id, "webhook"),
         (sent["deputy_dsl"].id, "email"), (sent["deputy_dsl"].id, "sms"), (sent["deputy_dsl"].id, "webhook")])
    topics = sorted(line.topic for line in store.outbox_lines)
    assert topics == ["pathway-notifications", "pathway-notifications"]  # each also gives its console line
    actions = [(a.action, a.subject_id) for a in store.audit_entries]
    assert ("matched", event.event_id) in actions
    assert ("created", sent["dsl"].id) in actions and ("created", sent["deputy_dsl"].id) in actions


def test_a_child_looked_after_reaches_the_worker_manager_and_placing_council(store: MemoryStore,
                                                                              ctx: Context) -> None:
    event = run(store, ctx, attendance(JACOB))
    sent = notes(store, event)
    assert sorted(sent) == ["LA_888", "deputy_dsl", "dsl", "team_manager", "worker"]
    assert sent["worker"].recipient_ref == "sam.worker@northshire.gov.example"
    assert sent["team_manager"].recipient_ref == "cla.manager@northshire.gov.example"
    assert sent["LA_888"].contact_email == "la888@otherplace.gov.example"
    # Only the school's alert waits for an acknowledgement.
    assert [n.deadline_id is not None for n in (sent["worker"], sent["team_manager"], sent["LA_888"])] == [
        False, False, False]
    assert [d.kind for d in store.deadlines] == [DeadlineKind.SELF_HARM_ACKNOWLEDGEMENT]


def test_open_to_early_help_reaches_the_worker_and_a_school_without_deputy_only_its_dsl(store: MemoryStore,
                                                                                         ctx: Context) -> None:
    event = run(store, ctx, attendance(OLIVER))
    sent = notes(store, event)
    assert sorted(sent) == ["dsl", "worker"]
    assert sent["worker"].recipient_ref == "erin.helper@northshire.gov.example"
    assert "team_manager" not in sent  # early help only: no manager


@pytest.mark.parametrize(("child", "roles"), [
    (ISLA, ["SCIES"]),  # an independent school: SCiES contact it
    (NOAH, ["FRONT_DOOR", "SCIES"]),  # an out-of-area school, and living in another council's area
    (HARVEY, ["EHE_MANAGER"]),  # home educated
])
def test_council_teams(store: MemoryStore, ctx: Context, child: dict[str, Any], roles: list[str]) -> None:
    event = run(store, ctx, attendance(child))
    sent = notes(store, event)
    assert sorted(sent) == roles
    assert all(n.kind == NotificationKind.ALERT and n.status == NotificationStatus.PENDING for n in sent.values())
    assert store.deadlines == []


def test_an_unknown_child_goes_to_the_front_door(store: MemoryStore, ctx: Context) -> None:
    event = run(store, ctx, attendance(UNKNOWN))
    assert (event.match_outcome, event.child_id, event.status) == (MatchOutcome.NO_MATCH, None, EventStatus.PROCESSED)
    assert sorted(notes(store, event)) == ["FRONT_DOOR"]


def test_consent_refused_is_withheld_and_the_front_door_must_decide(store: MemoryStore, ctx: Context) -> None:
    event = run(store, ctx, attendance(JACOB, consent="REFUSED"))
    assert event.status == EventStatus.WITHHELD
    sent = notes(store, event)
    for role in ("dsl", "deputy_dsl", "team_manager", "LA_888"):
        assert sent[role].status == NotificationStatus.WITHHELD
    # The worker of a child looked after is still told; the front door gets a decision with a deadline.
    assert sent["worker"].status == NotificationStatus.PENDING
    decision = sent["FRONT_DOOR"]
    assert (decision.kind, decision.status) == (NotificationKind.DECISION, NotificationStatus.PENDING)
    (deadline,) = store.deadlines
    assert (deadline.kind, deadline.subject_id, decision.deadline_id) == (
        DeadlineKind.CONSENT_DECISION, decision.id, deadline.id)
    # Nothing withheld is queued for delivery or published.
    delivered = {d.notification_id for d in store.deliveries}
    assert delivered == {sent["worker"].id, decision.id}
    assert {line.notification_id for line in store.outbox_lines} == delivered
    assert {a.subject_id for a in store.audit_entries if a.action == "withheld"} == {
        event.event_id, *(sent[r].id for r in ("dsl", "deputy_dsl", "team_manager", "LA_888"))}


def test_in_the_holidays_scies_is_told_too_with_its_own_deadline(store: MemoryStore, ctx: Context) -> None:
    arrived = datetime(2026, 12, 23, 20, 0, tzinfo=UTC)  # Christmas holidays
    event = run(store, ctx, attendance(AMELIA, arrived_at=arrived), arrived)
    sent = notes(store, event)
    assert sorted(sent) == ["SCIES", "deputy_dsl", "dsl"]
    by_kind = {d.kind: d for d in store.deadlines}
    assert by_kind[DeadlineKind.SELF_HARM_HOLIDAY_SCIES].subject_id == sent["SCIES"].id
    assert by_kind[DeadlineKind.SELF_HARM_HOLIDAY_SCIES].due_at == datetime(2026, 12, 24, 12, 0, tzinfo=UTC)
    assert by_kind[DeadlineKind.SELF_HARM_ACKNOWLEDGEMENT].subject_id == sent["dsl"].id
    assert by_kind[DeadlineKind.SELF_HARM_ACKNOWLEDGEMENT].due_at == datetime(2027, 1, 4, 12, 0, tzinfo=UTC)


def test_the_same_event_twice_has_its_effects_once(store: MemoryStore, ctx: Context) -> None:
    body = attendance(AMELIA)
    event = run(store, ctx, body)
    before = (len(store.notifications), len(store.deadlines), len(store.deliveries), len(store.outbox_lines))
    with pytest.raises(UniquenessViolation):
        store.add_event("self-harm-attendance", body, TERM_EVENING)  # the intake keeps one row per event_id
    # Run again by `safeguard events retry`: already processed, so nothing more happens.
    (outcome,) = retry_events(store, ctx, lambda: TERM_EVENING, [event.event_id])
    assert outcome.outcome == "already_processed"
    assert (len(store.notifications), len(store.deadlines), len(store.deliveries), len(store.outbox_lines)) == before


def test_a_failing_handler_leaves_no_effects_and_a_retry_has_them_once(store: MemoryStore, ctx: Context,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    body = attendance(AMELIA)
    store.add_event("self-harm-attendance", body, TERM_EVENING)
    real_route = handlers.route_self_harm

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the rules failed")

    monkeypatch.setattr(handlers, "route_self_harm", broken)
    with store.unit_of_work() as port:  # as the intake consumer does: the event in a savepoint, then counted
        (event,) = port.events_by_id([body["event_id"]])
        with pytest.raises(RuntimeError), port.savepoint():
            process(port, event, ctx, TERM_EVENING)
        assert not record_failure(port, event, RuntimeError("x"), RetryPolicy(), TERM_EVENING)
    assert store.notifications == [] and store.deadlines == [] and store.outbox_lines == ()
    assert (event.status, event.attempts, event.error, event.child_id) == (EventStatus.ACCEPTED, 1, "RuntimeError",
                                                                           None)
    assert [a.action for a in store.audit_entries] == []  # the "matched" entry went with the savepoint

    monkeypatch.setattr(handlers, "route_self_harm", real_route)
    (outcome,) = retry_events(store, ctx, lambda: TERM_EVENING, [event.event_id])
    assert outcome.outcome == "processed"
    assert sorted(notes(store, event)) == ["deputy_dsl", "dsl"]
    assert len(store.deadlines) == 1 and event.status == EventStatus.PROCESSED
    (outcome,) = retry_events(store, ctx, lambda: TERM_EVENING, [event.event_id])
    assert outcome.outcome == "already_processed" and len(store.notifications) == 2


def test_children_resolved_ahead_are_the_handlers_decisions_once_in_that_unit_of_work(store: MemoryStore,
                                                                                     ctx: Context) -> None:
    """``resolve_children_ahead`` (a Kafka batch's children before its records): each child matched once, its id
    issued; the handler in the same unit of work takes that decision, once per event, and matches afresh in
    another unit of work."""
    first, second = attendance(AMELIA), attendance(AMELIA)
    matched: list[str] = []
    real = ctx.index.candidates_at
    ctx.index.candidates_at = (  # type: ignore[method-assign]
        lambda identity, *a, **k: matched.append(identity.given_name) or real(identity, *a, **k))
    who = handlers.self_harm_child(store, codec.from_json("self-harm-attendance", first))
    assert who is not None
    assert who == (identity_from_record(codec.from_json("self-harm-attendance", first)["child"]), False)
    for body in (first, second):
        store.add_event("self-harm-attendance", body, TERM_EVENING)
    with store.unit_of_work() as port:
        resolve_children_ahead(port, ctx, [who, who])
        assert matched == ["Amelia"]  # the same child twice: matched once
        for body in (first, second):
            (event,) = port.events_by_id([body["event_id"]])
            process(port, event, ctx, TERM_EVENING)
        assert matched == ["Amelia"]  # the handlers took the decisions made ahead
        process_again = attendance(AMELIA)
        store.add_event("self-harm-attendance", process_again, TERM_EVENING)
        (event,) = port.events_by_id([process_again["event_id"]])
        process(port, event, ctx, TERM_EVENING)  # a third: none left ahead, matched now
        assert matched == ["Amelia", "Amelia"]
    with store.unit_of_work() as port:
        ctx.match(port, who[0], urgent=False)
    assert matched == ["Amelia", "Amelia", "Amelia"]
    ctx.forget_ahead()
    stored = [store.event(body["event_id"]) for body in (first, second)]
    assert all(e is not None and e.match_outcome == MatchOutcome.LINKED for e in stored)
    assert len({e.child_id for e in stored if e is not None}) == 1
