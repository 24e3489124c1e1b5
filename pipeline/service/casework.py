"""What people do with notifications: view, acknowledge, and the front door's decisions.

Each action is one transaction that writes its audit entry. Scope (who may touch what) is decided by
``pipeline.service.access``; these functions assume the caller was allowed.
"""

from __future__ import annotations

import json
from datetime import datetime

from pipeline.domain.events import SelfHarmAttendance
from pipeline.domain.model import DeadlineKind, DeadlineState, EventStatus, NotificationKind, NotificationStatus
from pipeline.domain.self_harm import PATHWAY as SELF_HARM
from pipeline.domain.self_harm import route_self_harm
from pipeline.ports import StorePort
from pipeline.ports.records import EventRecord, NotificationRecord
from pipeline.service import missing
from pipeline.service.children import PersonDecision, child_of_event
from pipeline.service.deadlines import close_deadline
from pipeline.service.handlers import (
    Context,
    apply_plan,
    bind_deadlines,
    queue_delivery,
    record_of,
    store_notification,
)

# Deadlines that exist only for someone to acknowledge a notification: the school alert (the DSL or deputy),
# the holiday rule's SCiES alert, the allocated team's strategy discussion, and the front door's alert that nobody
# could be reached (delivery_failure). Acknowledging the alert or its
# reminder closes them. An escalation is never the thing the deadline waits for: a manager acknowledging
# it does not stop the ladder. Every other deadline waits for an event or a decision (the return interview
# recorded, the trigger meeting held, the child found, the front door's release or review decision).
CLOSED_BY_ACKNOWLEDGEMENT = frozenset({DeadlineKind.SELF_HARM_ACKNOWLEDGEMENT, DeadlineKind.SELF_HARM_HOLIDAY_SCIES,
                                       DeadlineKind.STRATEGY_DISCUSSION, DeadlineKind.DELIVERY_FAILURE})


REASON_LIMIT = 2000  # characters of a front-door decision's reason (the web form and the API alike)


def reason_problem(reason: str) -> str | None:
    """What is wrong with a front-door decision's reason (stripped of surrounding blanks): ``blank`` or
    ``too_long``; None when it can be audited. The web form and the API word it each their own way."""
    if not reason:
        return "blank"
    return "too_long" if len(reason) > REASON_LIMIT else None


def acknowledgement_closes(notification_kind: str, deadline_kind: str | None) -> bool:
    """Whether acknowledging a notification of this kind closes its deadline, i.e. stops its escalation: an alert
    or a reminder on a deadline that waits for acknowledgement (not an escalation's copy to a manager or team,
    whose ladder goes on until the owner acts)."""
    return deadline_kind in CLOSED_BY_ACKNOWLEDGEMENT and \
        notification_kind in (NotificationKind.ALERT, NotificationKind.REMINDER)


class CaseworkError(Exception):
    """A request that makes no sense in the item's current state (answered 409)."""


def record_view(repo: StorePort, row: NotificationRecord, actor: str, now: datetime) -> None:
    repo.audit(now, actor, "viewed", row.id, "notification opened")
    if row.status in (NotificationStatus.PENDING, NotificationStatus.DELIVERED):
        row.status = NotificationStatus.VIEWED


def acknowledge(repo: StorePort, row: NotificationRecord, actor: str, user_id: int, outcome: str,
                now: datetime) -> NotificationRecord:
    """Idempotent: the first acknowledgement's time is kept; it stops the escalation. For a school, one
    acknowledgement (by the DSL or the deputy, of the alert or a reminder) acknowledges every copy."""
    if row.status == NotificationStatus.WITHHELD:
        raise CaseworkError("a withheld notification cannot be acknowledged")
    if row.acknowledged_at is not None:
        return row
    # A school's alert goes to the DSL and the deputy (and its reminders to both): either acknowledging any
    # copy acknowledges the case for the school. Each copy's audit entry names who did it.
    for copy in repo.school_copies(row):
        if copy.acknowledged_at is not None or copy.status == NotificationStatus.WITHHELD:
            continue
        copy.status = NotificationStatus.ACKNOWLEDGED
        copy.acknowledged_at = now
        copy.acknowledged_by = user_id
        copy.outcome = outcome
        repo.audit(now, actor, "acknowledged", copy.id, "acknowledged with an outcome" if copy.id == row.id
                   else f"acknowledged for the school with {row.id}")
    deadline = repo.deadline(row.deadline_id) if row.deadline_id else None
    if deadline is not None and deadline.state == DeadlineState.OPEN and \
            acknowledgement_closes(row.kind, deadline.kind):
        close_deadline(repo, deadline, now, f"acknowledged (notification {row.id})", actor)
        repo.audit(now, actor, "acknowledged", deadline.id, "deadline closed by acknowledgement")
    return row


def decide_consent(repo: StorePort, event: EventRecord, ctx: Context, actor: str, decision: str, reason: str,
                   now: datetime) -> None:
    """The front door's decision on a withheld attendance: release it (routed now) or close it."""
    if event.status != EventStatus.WITHHELD:
        raise CaseworkError("this event is not withheld")
    deadline = repo.open_deadline_of_event(event.event_id, DeadlineKind.CONSENT_DECISION)
    if deadline is not None:
        close_deadline(repo, deadline, now, f"front door decision: {decision}", actor)
    if decision == "close":
        repo.audit(now, actor, "withheld", event.event_id, f"front door closed without release: {reason}")
        event.status = EventStatus.PROCESSED
        return
    attendance = SelfHarmAttendance.from_record(record_of(event))
    day = ctx.policy.calendar.local(attendance.arrived_at).date()
    # The match as decided (by the model or a person) stands: released to the child the event is linked to.
    child = child_of_event(repo, ctx, event, attendance.child, urgent=attendance.exploitation_concern, on=day)
    plan = route_self_harm(attendance, child.decision, child.facts, repo.directory(), ctx.policy, now,
                           released_at=now)
    existing = {row.plan_key: row for row in repo.notifications_of_event(event.event_id)}
    for row in existing.values():
        if row.status == NotificationStatus.WITHHELD:
            row.status = NotificationStatus.PENDING
            repo.audit(now, actor, "released", row.id, f"front door released: {reason}")
            queue_delivery(repo, row, now)
    for item in plan.notifications:
        if item.key not in existing:  # e.g. the holiday rule's SCiES alert, which is planned only on release
            created = store_notification(repo, event.event_id, item, SELF_HARM, now)
            if created is not None:
                existing[item.key] = created
    bind_deadlines(repo, event, plan, existing, event.child_id, now)
    repo.audit(now, actor, "released", event.event_id, f"front door released: {reason}")
    event.status = EventStatus.PROCESSED


def review_delay(event: EventRecord, now: datetime) -> str:
    """How long the event waited for a person, for the audit trail."""
    minutes = max(0, int((now - event.received_at).total_seconds() // 60)) if event.received_at else 0
    return f"after {minutes} min"


def decide_review(repo: StorePort, event: EventRecord, ctx: Context, actor: str, child_id: str | None,
                  reason: str, now: datetime) -> None:
    """A person confirms which child the event is about (or that it is none of them)."""
    if event.status != EventStatus.REVIEW:
        raise CaseworkError("this event is not waiting for a match review")
    candidates_ids = json.loads(event.match_json or "{}").get("candidate_child_ids", [])
    if child_id is not None and child_id not in candidates_ids:
        raise CaseworkError("child_id is not one of the review's candidates")
    deadline = repo.open_deadline_of_event(event.event_id, DeadlineKind.MATCH_REVIEW)
    if deadline is not None:
        close_deadline(repo, deadline, now, "match review decided", actor)
    if event.event_type == "missing-reported":
        missing.decide_review(repo, event, ctx, actor, child_id, reason, now)
        return
    attendance = SelfHarmAttendance.from_record(record_of(event))
    day = ctx.policy.calendar.local(attendance.arrived_at).date()
    child = child_of_event(repo, ctx, event, attendance.child, urgent=attendance.exploitation_concern, on=day,
                           person=PersonDecision(child_id, reason))
    match = child.decision
    event.match_outcome = match.outcome.value
    event.child_id = child_id
    repo.audit(now, actor, "matched", event.event_id,
               f"{match.outcome.value}: review decided {review_delay(event, now)}: {reason}")
    plan = route_self_harm(attendance, match, child.facts, repo.directory(), ctx.policy, now)
    apply_plan(repo, event, plan, "self-harm", child_id, now)
