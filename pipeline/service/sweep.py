"""The deadline sweep: fires every ladder step that has fallen due, each exactly once.

Deadlines are rows; APScheduler only calls ``sweep`` every few seconds. A step is fired by advancing the
deadline's ``escalation_level`` and ``next_step_at`` in the same transaction as the notifications it
creates, so a crash either fires it completely or not at all, and a step that fell due while the process
was down fires on the first sweep after start. On PostgreSQL the rows are claimed with
``FOR UPDATE SKIP LOCKED`` so several workers can sweep the same table.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any, cast

from pipeline.adapters.metrics import DEADLINES_FIRED
from pipeline.domain.model import (
    DEPUTY_DSL_ROLE,
    DSL_ROLE,
    FRONT_DOOR,
    FRONT_DOOR_MANAGER,
    TEAM_MANAGER_ROLE,
    Contact,
    PlannedNotification,
)
from pipeline.domain.policy import CHECK_TRIGGER_MEETING
from pipeline.ports import SYSTEM, DeadlineRecord, NotificationRecord, StorePort, UnitsOfWork
from pipeline.service.deadlines import close_deadline
from pipeline.service.handlers import ESCALATIONS, Context
from pipeline.service.missing import assignee_for, check_trigger_meeting, current_child_id
from pipeline.service.notify import notify

log = logging.getLogger(__name__)

ASSIGNEE = "assignee"  # a ladder step's `notify` entry: whoever the deadline was assigned to


def sweep(store: UnitsOfWork, ctx: Context, now: datetime, batch: int = 500) -> int:
    """Fire due steps until none are left; returns how many steps fired."""
    fired = 0
    while True:
        with store.unit_of_work() as port:
            due = port.open_deadlines_due(now, batch)
            for deadline in due:
                fired += fire_due_steps(port, deadline, ctx, now)
        if len(due) < batch:
            break
    if fired:
        log.info("sweep fired %d ladder steps", fired)
    return fired


def fire_due_steps(port: StorePort, deadline: DeadlineRecord, ctx: Context, now: datetime) -> int:
    """Fire, in order, every step of this deadline whose time has come (each once)."""
    steps: list[dict[str, Any]] = json.loads(deadline.steps_json)
    fired = 0
    while deadline.escalation_level < len(steps):
        step = steps[deadline.escalation_level]
        if datetime.fromisoformat(step["at"]) > now:
            break
        deadline.escalation_level += 1
        if step["action"] == CHECK_TRIGGER_MEETING:
            # The missing pathway is still typed for the SQL adapter (being ported separately).
            check_trigger_meeting(cast(Any, port), cast(Any, deadline), ctx, now)
            close_deadline(port, deadline, now, "checked by the sweep")
        else:
            fire_step(port, deadline, step, deadline.escalation_level, ctx, now)
        fired += 1
        DEADLINES_FIRED.inc()
    level = deadline.escalation_level
    deadline.next_step_at = datetime.fromisoformat(steps[level]["at"]) if level < len(steps) else None
    return fired


def recipients_for(port: StorePort, deadline: DeadlineRecord, role: str, ctx: Context,
                   now: datetime) -> list[tuple[str, str, Contact]]:
    """(recipient_role, recipient_ref, contact) for a ladder step's `notify` entry.

    Roles: ``dsl``/``deputy_dsl`` of the deadline's school, ``team_manager`` of the child's allocated team,
    ``assignee`` (whoever the deadline was assigned to), or a team code from the teams CSV.
    """
    if role in (TEAM_MANAGER_ROLE, ASSIGNEE):
        # Resolved now, from the child's current facts: a review or a late report may have linked the child
        # since the deadline was created, and the child's worker or team may have changed.
        # (The missing pathway's helpers are still typed for the SQL adapter: being ported separately.)
        child_id = current_child_id(cast(Any, port), cast(Any, deadline))
        facts = port.facts_for_child(child_id, ctx.policy.calendar.local(now).date()) if child_id else None
        if role == ASSIGNEE:
            return [assignee_for(cast(Any, port), deadline.kind, facts, ctx.policy)]
        managers = sorted({i.manager_email for i in (facts.involvements if facts else ()) if i.manager_email})
        if managers:
            return [(TEAM_MANAGER_ROLE, email, Contact(email)) for email in managers]
        return [(FRONT_DOOR_MANAGER, FRONT_DOOR_MANAGER, port.directory().teams.get(FRONT_DOOR_MANAGER)
                 or Contact(None))]
    if role in (DSL_ROLE, DEPUTY_DSL_ROLE) and deadline.school_urn:
        school = port.school(deadline.school_urn)
        if school is None:
            return [(FRONT_DOOR, FRONT_DOOR, port.directory().teams.get(FRONT_DOOR) or Contact(None))]
        contact = school.dsl if role == DSL_ROLE else school.deputy
        if role == DEPUTY_DSL_ROLE and not contact.reachable:
            return []
        return [(role, school.urn, contact)]
    return [(role, role, port.directory().teams.get(role) or Contact(None))]


def fire_step(port: StorePort, deadline: DeadlineRecord, step: dict[str, Any], level: int, ctx: Context,
              now: datetime) -> None:
    subject: NotificationRecord | None = port.notification(deadline.subject_id)
    content: dict[str, Any] = {
        "deadline_id": deadline.id, "deadline_kind": deadline.kind, "due_at": deadline.due_at.isoformat(),
        "level": level, "action": step["action"], "subject_id": deadline.subject_id,
    }
    if subject is not None:
        content["original"] = json.loads(subject.content_json)
    for role in step["notify"]:
        for recipient_role, ref, contact in recipients_for(port, deadline, role, ctx, now):
            reason = f"{deadline.kind} {step['action']} level {level}"
            item = PlannedNotification(
                key=f"{deadline.kind}:{level}:{role}", recipient_role=recipient_role, recipient_ref=ref,
                contact=contact, reason=reason, urgency="URGENT", content=content, kind=step["action"],
                school_urn=deadline.school_urn if recipient_role in (DSL_ROLE, DEPUTY_DSL_ROLE) else None)
            row = notify(port, deadline.event_id or deadline.subject_id, item,
                         subject.pathway if subject is not None else "missing", now, deadline_id=deadline.id)
            assert row is not None  # no dedupe key: always stored
            recipient_role = row.recipient_role
            port.outbox(now, ESCALATIONS, deadline.subject_id, {
                "deadline_id": deadline.id, "kind": deadline.kind, "subject_id": deadline.subject_id,
                "level": level, "recipient_role": recipient_role, "fired_at": now.isoformat(),
                "due_at": deadline.due_at.isoformat(),
            }, row.id)
    port.audit(now, SYSTEM, "escalated", deadline.id, f"{deadline.kind} level {level} ({step['action']})")
    if deadline.subject_id != deadline.id:
        port.audit(now, SYSTEM, "escalated", deadline.subject_id, f"{deadline.kind} level {level} ({step['action']})")
