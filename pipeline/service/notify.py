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
import logging
from dataclasses import replace
from datetime import datetime
from typing import Any

from pipeline.adapters.metrics import NOTIFICATIONS_UNDELIVERED
from pipeline.domain.model import (
    CASELOAD_ROLES,
    FRONT_DOOR,
    LADDER_KINDS,
    SCHOOL_ROLES,
    Contact,
    DeadlineKind,
    NotificationKind,
    NotificationStatus,
    PlannedDeadline,
    PlannedNotification,
    iso_instant,
)
from pipeline.domain.policy import Policy
from pipeline.ports import SYSTEM, NotificationRecord, ReferenceReads, StorePort

log = logging.getLogger(__name__)

PATHWAY_NOTIFICATIONS = "pathway-notifications"
ESCALATIONS = "escalations"
# Outbox rows of this topic were each notification's console line (the always-on console file, never a delivery)
# until the relay took the line from the notification's topic record; rows stored before then are still relayed.
DELIVERIES = "deliveries"
UNDELIVERED_TEAM = "undelivered:team"
UNDELIVERED_FRONT_DOOR = "undelivered:front_door"
DELIVERY_FAILURE = DeadlineKind.DELIVERY_FAILURE


def with_front_door_fallback(port: ReferenceReads, item: PlannedNotification) -> tuple[PlannedNotification, bool]:
    """The no-contact rule, in one place: (the item, addressed to the front door if nobody else can be reached;
    whether it was redirected)."""
    if item.contact.reachable or item.recipient_role == FRONT_DOOR:
        return item, False
    front = port.directory().teams.get(FRONT_DOOR) or Contact(None)
    return replace(item, recipient_role=FRONT_DOOR, recipient_ref=FRONT_DOOR, contact=front,
                   reason=f"no contact on file for {item.recipient_role}: {item.reason}"), True


def notify(port: StorePort, event_id: str, item: PlannedNotification, pathway: str, now: datetime, *,
           dedupe_key: str | None = None, deadline_id: str | None = None,
           key_is_new: bool = False) -> NotificationRecord | None:
    """Store one notification with its audit entry, topic record and delivery rows, in the caller's transaction.

    With a ``dedupe_key`` it is stored at most once ever (the store guarantees it, so two transactions racing
    cannot both store it); a repeat returns None. ``key_is_new``: see ``add_notification``.
    """
    original_role = item.recipient_role
    item, redirected = with_front_door_fallback(port, item)
    status = NotificationStatus.WITHHELD if item.withheld else NotificationStatus.PENDING
    row = port.add_notification(event_id, pathway, item, status, now, dedupe_key=dedupe_key,
                                deadline_id=deadline_id, key_is_new=key_is_new)
    if row is None:
        return None
    port.audit(now, SYSTEM, "created", row.id, f"{item.recipient_role}: {item.reason}")
    if redirected:
        port.audit(now, SYSTEM, "created", event_id, f"no contact on file for {original_role}: sent to the front door")
    if item.withheld:
        port.audit(now, SYSTEM, "withheld", row.id, "consent not given and no reason to share recorded")
    else:
        queue_delivery(port, row, now)
    return row


def channels_with_address(row: NotificationRecord) -> list[str]:
    """The channels this notification's recipient can be reached on at all (the routes then choose)."""
    present = []
    if row.contact_email:
        present.append("email")
    if row.contact_phone:
        present.append("sms")
    if row.recipient_role in SCHOOL_ROLES and row.school_urn:
        present.append("webhook")
    return present


def queue_delivery(port: StorePort, row: NotificationRecord, now: datetime) -> None:
    """The topic record (the relay writes the console line from it too) and one delivery row per reachable channel;
    none carries personal data (addresses stay on the notification). A reminder's or escalation's topic record is
    the sweep's, on ``escalations``."""
    record = {"notification_id": row.id, "event_id": row.event_id, "pathway": row.pathway,
              "recipient_role": row.recipient_role, "recipient": row.recipient_ref if row.recipient_role not in
              CASELOAD_ROLES else "user", "urgency": row.urgency, "created_at": iso_instant(now)}
    if row.kind not in LADDER_KINDS:  # the sweep publishes those on `escalations` itself
        port.outbox(now, PATHWAY_NOTIFICATIONS, row.event_id, record, row.id)
    for channel in channels_with_address(row):
        port.add_delivery(row.id, channel, now)


def _content(row: NotificationRecord) -> dict[str, Any]:
    loaded = json.loads(row.content_json)
    return loaded if isinstance(loaded, dict) else {}


def undelivered(port: StorePort, row: NotificationRecord, policy: Policy, now: datetime, why: str) -> None:
    """No channel delivered ``row``: mark it failed, then tell the recipient's team, or failing that the front
    door with an escalating ``delivery_failure`` deadline. Each step happens once (dedupe keys)."""
    if row.status == NotificationStatus.FAILED:
        return
    if row.status in (NotificationStatus.PENDING, NotificationStatus.DELIVERED):
        row.status = NotificationStatus.FAILED
    NOTIFICATIONS_UNDELIVERED.inc()
    port.audit(now, SYSTEM, "failed", row.id, f"no channel delivered it ({why})")
    escalating = row.plan_key == UNDELIVERED_FRONT_DOOR or _escalates_a_delivery_failure(port, row)
    log.error("notification %s (%s) was not delivered: %s; %s", row.id, row.recipient_role, why,
              "its delivery_failure deadline escalates to the front door's managers" if escalating
              else "its team or the front door is told")
    if escalating:
        return  # the front door's own alert: its delivery_failure deadline is already escalating
    root = str(_content(row).get("undelivered_notification_id") or row.id)
    content = {"undelivered_notification_id": root, "recipient_role": row.recipient_role,
               "pathway": row.pathway, "event_id": row.event_id}
    if row.plan_key != UNDELIVERED_TEAM:
        team = _team_of(port, row, policy)
        if team is not None and team != row.recipient_role:
            item = PlannedNotification(key=UNDELIVERED_TEAM, recipient_role=team, recipient_ref=team,
                                       contact=port.directory().teams.get(team) or Contact(None),
                                       reason=f"could not reach {row.recipient_role}: please pass it on",
                                       urgency=row.urgency, content=content, kind=NotificationKind.ALERT)
            if notify(port, row.event_id, item, row.pathway, now, dedupe_key=f"undelivered:{root}:team") is not None:
                return
    item = PlannedNotification(key=UNDELIVERED_FRONT_DOOR, recipient_role=FRONT_DOOR, recipient_ref=FRONT_DOOR,
                               contact=port.directory().teams.get(FRONT_DOOR) or Contact(None),
                               reason=f"nobody could be reached for {row.recipient_role}", urgency="URGENT",
                               content=content, kind=NotificationKind.ALERT)
    alert = notify(port, row.event_id, item, row.pathway, now, dedupe_key=f"undelivered:{root}:front_door")
    if alert is None:
        return
    due = policy.due(DELIVERY_FAILURE, now)
    planned = PlannedDeadline(DELIVERY_FAILURE, UNDELIVERED_FRONT_DOOR, due, policy.ladder(DELIVERY_FAILURE, due))
    deadline = port.add_deadline(planned, alert.id, now, event_id=row.event_id, child_id=None, once=True)
    if deadline is not None:
        alert.deadline_id = deadline.id
        port.audit(now, SYSTEM, "escalated", root, "not delivered: the front door is alerted and it escalates")


def _escalates_a_delivery_failure(port: StorePort, row: NotificationRecord) -> bool:
    if not row.deadline_id or row.kind not in LADDER_KINDS:
        return False
    deadline = port.deadline(row.deadline_id)
    return deadline is not None and deadline.kind == DELIVERY_FAILURE


def _team_of(port: ReferenceReads, row: NotificationRecord, policy: Policy) -> str | None:
    if row.recipient_role in CASELOAD_ROLES:
        team = port.team_of_person(row.recipient_role, row.recipient_ref)
        if team is not None:
            return team
    teams = policy.setting("delivery", "recipient_team", default={}) or {}
    team = teams.get(row.recipient_role)
    return str(team) if team else None
