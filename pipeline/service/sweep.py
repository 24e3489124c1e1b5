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
from typing import Any

from pipeline.adapters import tables as t
from pipeline.adapters.metrics import DEADLINES_FIRED
from pipeline.adapters.repository import SYSTEM, Repository
from pipeline.adapters.store import Store
from pipeline.domain.model import FRONT_DOOR, FRONT_DOOR_MANAGER, Contact, PlannedNotification
from pipeline.service.handlers import ESCALATIONS, Context
from pipeline.service.notify import notify

log = logging.getLogger(__name__)


def sweep(store: Store, ctx: Context, now: datetime, batch: int = 500) -> int:
    """Fire due steps until none are left; returns how many steps fired."""
    fired = 0
    while True:
        with store.transaction() as session:
            repo = Repository(session, postgres=store.is_postgres)
            due = repo.due_deadlines(now, batch)
            for deadline in due:
                fired += fire_due_steps(repo, deadline, ctx, now)
        if len(due) < batch:
            break
    if fired:
        log.info("sweep fired %d ladder steps", fired)
    return fired


def fire_due_steps(repo: Repository, deadline: t.Deadline, ctx: Context, now: datetime) -> int:
    """Fire, in order, every step of this deadline whose time has come (each once)."""
    steps: list[dict[str, Any]] = json.loads(deadline.steps_json)
    fired = 0
    while deadline.escalation_level < len(steps):
        step = steps[deadline.escalation_level]
        if datetime.fromisoformat(step["at"]) > now:
            break
        deadline.escalation_level += 1
        if step["action"] == "check_trigger_meeting":
            from pipeline.service.missing import check_trigger_meeting

            check_trigger_meeting(repo, deadline, ctx, now)
            close_deadline(repo, deadline, now, "checked by the sweep")
        else:
            fire_step(repo, deadline, step, deadline.escalation_level, ctx, now)
        fired += 1
        DEADLINES_FIRED.inc()
    level = deadline.escalation_level
    deadline.next_step_at = datetime.fromisoformat(steps[level]["at"]) if level < len(steps) else None
    repo.session.add(deadline)
    return fired


def _subject(repo: Repository, deadline: t.Deadline) -> t.Notification | None:
    return repo.session.get(t.Notification, deadline.subject_id)


def recipients_for(repo: Repository, deadline: t.Deadline, role: str, ctx: Context,
                   now: datetime) -> list[tuple[str, str, Contact]]:
    """(recipient_role, recipient_ref, contact) for a ladder step's `notify` entry.

    Roles: ``dsl``/``deputy_dsl`` of the deadline's school, ``team_manager`` of the child's allocated team,
    ``assignee`` (whoever the deadline was assigned to), or a team code from the teams CSV.
    """
    if role in ("team_manager", "assignee"):
        from pipeline.service.missing import assignee_for, current_child_id

        # Resolved now, from the child's current facts: a review or a late report may have linked the child
        # since the deadline was created, and the child's worker or team may have changed.
        child_id = current_child_id(repo, deadline)
        facts = repo.facts_for_child(child_id, ctx.policy.calendar.local(now).date()) if child_id else None
        if role == "assignee":
            return [assignee_for(repo, deadline.kind, facts, ctx.policy)]
        managers = sorted({i.manager_email for i in (facts.involvements if facts else ()) if i.manager_email})
        if managers:
            return [("team_manager", email, Contact(email)) for email in managers]
        return [(FRONT_DOOR_MANAGER, FRONT_DOOR_MANAGER, repo.directory().teams.get(FRONT_DOOR_MANAGER)
                 or Contact(None))]
    if role in ("dsl", "deputy_dsl") and deadline.school_urn:
        school = repo.school(deadline.school_urn)
        if school is None:
            return [(FRONT_DOOR, FRONT_DOOR, repo.directory().teams.get(FRONT_DOOR) or Contact(None))]
        contact = school.dsl if role == "dsl" else school.deputy
        if role == "deputy_dsl" and not contact.reachable:
            return []
        return [(role, school.urn, contact)]
    return [(role, role, repo.directory().teams.get(role) or Contact(None))]


def fire_step(repo: Repository, deadline: t.Deadline, step: dict[str, Any], level: int, ctx: Context,
              now: datetime) -> None:
    subject = _subject(repo, deadline)
    content: dict[str, Any] = {
        "deadline_id": deadline.id, "deadline_kind": deadline.kind, "due_at": deadline.due_at.isoformat(),
        "level": level, "action": step["action"], "subject_id": deadline.subject_id,
    }
    if subject is not None:
        content["original"] = json.loads(subject.content_json)
    for role in step["notify"]:
        for recipient_role, ref, contact in recipients_for(repo, deadline, role, ctx, now):
            reason = f"{deadline.kind} {step['action']} level {level}"
            item = PlannedNotification(
                key=f"{deadline.kind}:{level}:{role}", recipient_role=recipient_role, recipient_ref=ref,
                contact=contact, reason=reason, urgency="URGENT", content=content, kind=step["action"],
                school_urn=deadline.school_urn if recipient_role in ("dsl", "deputy_dsl") else None)
            row = notify(repo, deadline.event_id or deadline.subject_id, item,
                         subject.pathway if subject is not None else "missing", now, deadline_id=deadline.id)
            assert row is not None  # no dedupe key: always stored
            recipient_role = row.recipient_role
            repo.outbox(now, ESCALATIONS, deadline.subject_id, {
                "deadline_id": deadline.id, "kind": deadline.kind, "subject_id": deadline.subject_id,
                "level": level, "recipient_role": recipient_role, "fired_at": now.isoformat(),
                "due_at": deadline.due_at.isoformat(),
            }, row.id)
    repo.audit(now, SYSTEM, "escalated", deadline.id, f"{deadline.kind} level {level} ({step['action']})")
    if deadline.subject_id != deadline.id:
        repo.audit(now, SYSTEM, "escalated", deadline.subject_id, f"{deadline.kind} level {level} ({step['action']})")


def close_deadline(repo: Repository, deadline: t.Deadline, now: datetime, reason: str, actor: str = SYSTEM) -> None:
    """A closed deadline never escalates again. Audited: who closed it (``actor``) or, in ``reason``, which
    event or decision did."""
    if deadline.state == "closed":
        return
    deadline.state = "closed"
    deadline.closed_at = now
    deadline.closed_reason = reason
    deadline.next_step_at = None
    repo.session.add(deadline)
    repo.audit(now, actor, "closed", deadline.id, f"{deadline.kind} closed: {reason}")
