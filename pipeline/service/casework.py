"""What people do with notifications: view, acknowledge, and the front door's decisions.

Each action is one transaction that writes its audit entry. Scope (who may touch what) is decided by
``pipeline.service.access``; these functions assume the caller was allowed.
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlmodel import select

from pipeline.adapters import tables as t
from pipeline.adapters.inbox import school_copies
from pipeline.adapters.repository import Repository
from pipeline.domain.events import SelfHarmAttendance
from pipeline.domain.matching import group_people
from pipeline.domain.model import MatchDecision, MatchOutcome, NotificationStatus
from pipeline.domain.self_harm import PATHWAY as SELF_HARM
from pipeline.domain.self_harm import route_self_harm
from pipeline.ports import NotificationRecord
from pipeline.service import missing
from pipeline.service.handlers import (
    Context,
    apply_plan,
    bind_deadlines,
    queue_delivery,
    record_of,
    store_notification,
)
from pipeline.service.sweep import close_deadline

# Deadlines that exist only for someone to acknowledge a notification: the school alert (the DSL or deputy),
# the holiday rule's SCiES alert, the allocated team's strategy discussion, and the front door's alert that nobody
# could be reached (delivery_failure). Acknowledging the alert or its
# reminder closes them. An escalation is never the thing the deadline waits for: a manager acknowledging
# it does not stop the ladder. Every other deadline waits for an event or a decision (the return interview
# recorded, the trigger meeting held, the child found, the front door's release or review decision).
CLOSED_BY_ACKNOWLEDGEMENT = frozenset({"self_harm_acknowledgement", "self_harm_holiday_scies", "strategy_discussion",
                                       "delivery_failure"})


class CaseworkError(Exception):
    """A request that makes no sense in the item's current state (answered 409)."""


def record_view(repo: Repository, row: t.Notification, actor: str, now: datetime) -> None:
    repo.audit(now, actor, "viewed", row.id, "notification opened")
    if row.status in (NotificationStatus.PENDING, NotificationStatus.DELIVERED):
        row.status = NotificationStatus.VIEWED
        repo.session.add(row)


def acknowledge(repo: Repository, row: t.Notification, actor: str, user_id: int, outcome: str,
                now: datetime) -> t.Notification:
    """Idempotent: the first acknowledgement's time is kept; it stops the escalation. For a school, one
    acknowledgement (by the DSL or the deputy, of the alert or a reminder) acknowledges every copy."""
    if row.status == NotificationStatus.WITHHELD:
        raise CaseworkError("a withheld notification cannot be acknowledged")
    if row.acknowledged_at is not None:
        return row
    # A school's alert goes to the DSL and the deputy (and its reminders to both): either acknowledging any
    # copy acknowledges the case for the school. Each copy's audit entry names who did it.
    for copy in school_copies(repo.session, row):
        if copy.acknowledged_at is not None or copy.status == NotificationStatus.WITHHELD:
            continue
        copy.status = NotificationStatus.ACKNOWLEDGED
        copy.acknowledged_at = now
        copy.acknowledged_by = user_id
        copy.outcome = outcome
        repo.session.add(copy)
        repo.audit(now, actor, "acknowledged", copy.id, "acknowledged with an outcome" if copy.id == row.id
                   else f"acknowledged for the school with {row.id}")
    if row.deadline_id and row.kind in ("alert", "reminder"):
        deadline = repo.session.get(t.Deadline, row.deadline_id)
        if deadline is not None and deadline.state == "open" and deadline.kind in CLOSED_BY_ACKNOWLEDGEMENT:
            close_deadline(repo, deadline, now, f"acknowledged (notification {row.id})", actor)
            repo.audit(now, actor, "acknowledged", deadline.id, "deadline closed by acknowledgement")
    return row


def _open_deadline(repo: Repository, event_id: str, kind: str) -> t.Deadline | None:
    return repo.session.exec(select(t.Deadline).where(t.Deadline.event_id == event_id, t.Deadline.kind == kind,
                                                      t.Deadline.state == "open")).first()


def decide_consent(repo: Repository, event: t.Event, ctx: Context, actor: str, decision: str, reason: str,
                   now: datetime) -> None:
    """The front door's decision on a withheld attendance: release it (routed now) or close it."""
    if event.status != "withheld":
        raise CaseworkError("this event is not withheld")
    deadline = _open_deadline(repo, event.event_id, "consent_decision")
    if deadline is not None:
        close_deadline(repo, deadline, now, f"front door decision: {decision}", actor)
    if decision == "close":
        repo.audit(now, actor, "withheld", event.event_id, f"front door closed without release: {reason}")
        event.status = "processed"
        repo.session.add(event)
        return
    attendance = SelfHarmAttendance.from_record(record_of(event))
    day = ctx.policy.calendar.local(attendance.arrived_at).date()
    # The match as decided (by the model or a person) stands: released to the child the event is linked to.
    facts = repo.facts_for_child(event.child_id, day) if event.child_id else None
    outcome = MatchOutcome.LINKED if facts is not None else MatchOutcome.NO_MATCH
    match = MatchDecision(outcome, None, 0.0, {}, "as decided before the release")
    plan = route_self_harm(attendance, match, facts, repo.directory(), ctx.policy, now, released_at=now)
    existing: dict[str, NotificationRecord] = {row.plan_key: row for row in repo.session.exec(
        select(t.Notification).where(t.Notification.event_id == event.event_id)).all()}
    for row in existing.values():
        if row.status == NotificationStatus.WITHHELD:
            row.status = NotificationStatus.PENDING
            repo.session.add(row)
            repo.audit(now, actor, "released", row.id, f"front door released: {reason}")
            queue_delivery(repo, row, now)
    for item in plan.notifications:
        if item.key not in existing:  # e.g. the holiday rule's SCiES alert, which is planned only on release
            created = store_notification(repo, event.event_id, item, SELF_HARM, now)
            if created is not None:
                existing[item.key] = created
    bind_deadlines(repo, event, plan, existing, event.child_id, now)
    repo.audit(now, actor, "released", event.event_id, f"front door released: {reason}")
    event.status = "processed"
    repo.session.add(event)


def review_delay(event: t.Event, now: datetime) -> str:
    """How long the event waited for a person, for the audit trail."""
    minutes = max(0, int((now - event.received_at).total_seconds() // 60)) if event.received_at else 0
    return f"after {minutes} min"


def decide_review(repo: Repository, event: t.Event, ctx: Context, actor: str, child_id: str | None,
                  reason: str, now: datetime) -> None:
    """A person confirms which child the event is about (or that it is none of them)."""
    if event.status != "review":
        raise CaseworkError("this event is not waiting for a match review")
    candidates_ids = json.loads(event.match_json or "{}").get("candidate_child_ids", [])
    if child_id is not None and child_id not in candidates_ids:
        raise CaseworkError("child_id is not one of the review's candidates")
    deadline = _open_deadline(repo, event.event_id, "match_review")
    if deadline is not None:
        close_deadline(repo, deadline, now, "match review decided", actor)
    if event.event_type == "missing-reported":
        missing.decide_review(repo, event, ctx, actor, child_id, reason, now)
        return
    attendance = SelfHarmAttendance.from_record(record_of(event))
    day = ctx.policy.calendar.local(attendance.arrived_at).date()
    facts = None
    if child_id is not None:
        child = repo.session.get(t.Child, child_id)
        assert child is not None
        _, candidates = ctx.match(repo, attendance.child, urgent=attendance.exploitation_concern)
        members = group_people(candidates).get(child.person_key, [])
        facts = repo.child_facts(child_id, members, attendance.child, day) if members else \
            repo.facts_for_child(child_id, day)
        match = MatchDecision(MatchOutcome.LINKED, child.person_key, 0.0, {}, f"confirmed by a person: {reason}")
    else:
        match = MatchDecision(MatchOutcome.NO_MATCH, None, 0.0, {}, f"no match, decided by a person: {reason}")
    event.match_outcome = match.outcome.value
    event.child_id = child_id
    repo.audit(now, actor, "matched", event.event_id,
               f"{match.outcome.value}: review decided {review_delay(event, now)}: {reason}")
    plan = route_self_harm(attendance, match, facts, repo.directory(), ctx.policy, now)
    apply_plan(repo, event, plan, "self-harm", child_id, now)
