"""The one way to notify someone, and what happens when nobody could be reached.

``notify`` is called by routing (handlers), the missing pathway and the sweep alike. In the caller's
transaction it applies the no-contact rule (a recipient with no contact on file is never dropped: the front
door gets it, audited), writes the notification and its ``created`` audit entry, its output-topic record, and
one delivery row per channel the recipient has an address for. The relay (pipeline/service/relay.py) then
resolves those rows against the council's routes and sends them.

``undelivered`` is the end of the road for a notification no channel delivered: the recipient's team is told
instead; if that fails too (or the recipient has no team), the front door gets an urgent alert with a
``delivery_failure`` deadline that escalates at once, like a missed deadline.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from typing import Any

from pipeline.adapters import tables as t
from pipeline.adapters.deliveries import team_of_person
from pipeline.adapters.metrics import NOTIFICATIONS_UNDELIVERED
from pipeline.adapters.repository import SYSTEM, Repository, new_id
from pipeline.domain.delivery import DeliveryState
from pipeline.domain.model import (
    FRONT_DOOR,
    Contact,
    NotificationStatus,
    PlannedDeadline,
    PlannedNotification,
)
from pipeline.domain.policy import Policy

PATHWAY_NOTIFICATIONS = "pathway-notifications"
ESCALATIONS = "escalations"
DELIVERIES = "deliveries"  # outbox rows the relay writes to the always-on console file (never a delivery)
SCHOOL_ROLES = ("dsl", "deputy_dsl")
PERSON_ROLES = ("worker", "team_manager", "iro")
UNDELIVERED_TEAM = "undelivered:team"
UNDELIVERED_FRONT_DOOR = "undelivered:front_door"
DELIVERY_FAILURE = "delivery_failure"


def with_front_door_fallback(repo: Repository, item: PlannedNotification) -> tuple[PlannedNotification, bool]:
    """The no-contact rule, in one place: (the item, addressed to the front door if nobody else can be reached;
    whether it was redirected)."""
    if item.contact.reachable or item.recipient_role == FRONT_DOOR:
        return item, False
    front = repo.directory().teams.get(FRONT_DOOR) or Contact(None)
    return replace(item, recipient_role=FRONT_DOOR, recipient_ref=FRONT_DOOR, contact=front,
                   reason=f"no contact on file for {item.recipient_role}: {item.reason}"), True


def notify(repo: Repository, event_id: str, item: PlannedNotification, pathway: str, now: datetime, *,
           dedupe_key: str | None = None, deadline_id: str | None = None) -> t.Notification | None:
    """Store one notification with its audit entry, topic record and delivery rows, in the caller's transaction.

    With a ``dedupe_key`` it is stored at most once ever (the database's unique index decides, so two
    transactions racing cannot both store it); a repeat returns None.
    """
    original_role = item.recipient_role
    item, redirected = with_front_door_fallback(repo, item)
    row = t.Notification(
        id=new_id(), event_id=event_id, pathway=pathway, kind=item.kind, plan_key=item.key,
        recipient_role=item.recipient_role, recipient_ref=item.recipient_ref, school_urn=item.school_urn,
        contact_email=item.contact.email, contact_phone=item.contact.phone, urgency=item.urgency,
        reason=item.reason, status=(NotificationStatus.WITHHELD if item.withheld else NotificationStatus.PENDING),
        content_json=json.dumps(item.content, default=str), created_at=now, dedupe_key=dedupe_key,
        deadline_id=deadline_id,
    )
    if dedupe_key is not None and not repo.insert_once(row):
        return None
    repo.session.add(row)
    repo.audit(now, SYSTEM, "created", row.id, f"{item.recipient_role}: {item.reason}")
    if redirected:
        repo.audit(now, SYSTEM, "created", event_id, f"no contact on file for {original_role}: sent to the front door")
    if item.withheld:
        repo.audit(now, SYSTEM, "withheld", row.id, "consent not given and no reason to share recorded")
    else:
        queue_delivery(repo, row, now)
    return row


def channels_with_address(row: t.Notification) -> list[str]:
    """The channels this notification's recipient can be reached on at all (the routes then choose)."""
    present = []
    if row.contact_email:
        present.append("email")
    if row.contact_phone:
        present.append("sms")
    if row.recipient_role in SCHOOL_ROLES and row.school_urn:
        present.append("webhook")
    return present


def queue_delivery(repo: Repository, row: t.Notification, now: datetime) -> None:
    """The topic record, the console line and one delivery row per reachable channel; none carries personal
    data (addresses stay on the notification)."""
    record = {"notification_id": row.id, "event_id": row.event_id, "pathway": row.pathway,
              "recipient_role": row.recipient_role, "recipient": row.recipient_ref if row.recipient_role not in
              PERSON_ROLES else "user", "urgency": row.urgency, "created_at": now.isoformat()}
    if row.kind not in ("reminder", "escalation"):  # the sweep publishes those on `escalations` itself
        repo.outbox(now, PATHWAY_NOTIFICATIONS, row.event_id, record, row.id)
    repo.outbox(now, DELIVERIES, row.id, {"notification_id": row.id, "urgency": row.urgency}, row.id)
    for channel in channels_with_address(row):
        repo.session.add(t.Delivery(id=new_id(), notification_id=row.id, channel=channel, state=DeliveryState.NEW,
                                    next_attempt_at=now, created_at=now))


def _content(row: t.Notification) -> dict[str, Any]:
    loaded = json.loads(row.content_json)
    return loaded if isinstance(loaded, dict) else {}


def undelivered(repo: Repository, row: t.Notification, policy: Policy, now: datetime, why: str) -> None:
    """No channel delivered ``row``: mark it failed, then tell the recipient's team, or failing that the front
    door with an escalating ``delivery_failure`` deadline. Each step happens once (dedupe keys)."""
    if row.status == NotificationStatus.FAILED:
        return
    if row.status in (NotificationStatus.PENDING, NotificationStatus.DELIVERED):
        row.status = NotificationStatus.FAILED
    repo.session.add(row)
    NOTIFICATIONS_UNDELIVERED.inc()
    repo.audit(now, SYSTEM, "failed", row.id, f"no channel delivered it ({why})")
    if row.plan_key == UNDELIVERED_FRONT_DOOR or _escalates_a_delivery_failure(repo, row):
        return  # the front door's own alert: its delivery_failure deadline is already escalating
    root = str(_content(row).get("undelivered_notification_id") or row.id)
    content = {"undelivered_notification_id": root, "recipient_role": row.recipient_role,
               "pathway": row.pathway, "event_id": row.event_id}
    if row.plan_key != UNDELIVERED_TEAM:
        team = _team_of(repo, row, policy)
        if team is not None and team != row.recipient_role:
            item = PlannedNotification(key=UNDELIVERED_TEAM, recipient_role=team, recipient_ref=team,
                                       contact=repo.directory().teams.get(team) or Contact(None),
                                       reason=f"could not reach {row.recipient_role}: please pass it on",
                                       urgency=row.urgency, content=content, kind="alert")
            if notify(repo, row.event_id, item, row.pathway, now, dedupe_key=f"undelivered:{root}:team") is not None:
                return
    item = PlannedNotification(key=UNDELIVERED_FRONT_DOOR, recipient_role=FRONT_DOOR, recipient_ref=FRONT_DOOR,
                               contact=repo.directory().teams.get(FRONT_DOOR) or Contact(None),
                               reason=f"nobody could be reached for {row.recipient_role}", urgency="URGENT",
                               content=content, kind="alert")
    alert = notify(repo, row.event_id, item, row.pathway, now, dedupe_key=f"undelivered:{root}:front_door")
    if alert is None:
        return
    due = policy.due(DELIVERY_FAILURE, now)
    planned = PlannedDeadline(DELIVERY_FAILURE, UNDELIVERED_FRONT_DOOR, due, policy.ladder(DELIVERY_FAILURE, due))
    deadline = repo.add_deadline(planned, alert.id, now, event_id=row.event_id, child_id=None, once=True)
    if deadline is not None:
        alert.deadline_id = deadline.id
        repo.audit(now, SYSTEM, "escalated", root, "not delivered: the front door is alerted and it escalates")


def _escalates_a_delivery_failure(repo: Repository, row: t.Notification) -> bool:
    if not row.deadline_id or row.kind not in ("reminder", "escalation"):
        return False
    deadline = repo.session.get(t.Deadline, row.deadline_id)
    return deadline is not None and deadline.kind == DELIVERY_FAILURE


def _team_of(repo: Repository, row: t.Notification, policy: Policy) -> str | None:
    if row.recipient_role in PERSON_ROLES:
        team = team_of_person(repo.session, row.recipient_role, row.recipient_ref)
        if team is not None:
            return team
    teams = policy.setting("delivery", "recipient_team", default={}) or {}
    team = teams.get(row.recipient_role)
    return str(team) if team else None
