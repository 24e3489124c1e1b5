"""Notifications in the API: ``GET /api/notifications`` (the caller's scope, paged, by status),
``GET /api/notifications/{id}`` (the detail and its deliveries; recorded as viewed) and
``POST /api/notifications/{id}/acknowledge`` (recipients only). Out of scope is answered as not found."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, StringConstraints

from pipeline.adapters import deliveries
from pipeline.adapters.notifications import notifications_page
from pipeline.domain.model import Role
from pipeline.entrypoints.dependencies import CurrentUser, PagingDep, ServicesDep, SessionDep, found, iso
from pipeline.entrypoints.errors import conflict, forbidden, not_found
from pipeline.service import casework
from pipeline.service.access import NOTIFICATION_READERS, may_acknowledge, visible_notification

if TYPE_CHECKING:
    from pipeline.ports.accounts import AccountStore
    from pipeline.ports.records import NotificationRecord as Notification
    from pipeline.ports.records import UserRecord as User

router = APIRouter()


class Acknowledgement(BaseModel):
    outcome: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


def notification_json(n: Notification, detail: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": n.id, "pathway": n.pathway, "kind": n.kind, "recipient_role": n.recipient_role,
        "status": n.status, "urgency": n.urgency, "created_at": iso(n.created_at),
        "acknowledged_at": iso(n.acknowledged_at),
    }
    if detail:
        body.update({"reason": n.reason, "content": json.loads(n.content_json), "outcome": n.outcome,
                     "event_id": n.event_id, "school_urn": n.school_urn})
    return body


@router.get("/api/notifications")
def list_notifications(user: CurrentUser, s: SessionDep, paging: PagingDep,
                       status: str | None = None) -> list[dict[str, Any]]:
    if user.role not in NOTIFICATION_READERS:
        raise forbidden()
    page = found(notifications_page(s, user, status, limit=paging.limit, before=paging.before))
    paging.link_next(page, status=status)
    return [notification_json(n) for n in page.rows]


def _visible(port: AccountStore, user: User, notification_id: str) -> Notification:
    if user.role not in NOTIFICATION_READERS:
        raise forbidden()
    row = visible_notification(port, user, notification_id)
    if row is None:
        raise not_found()
    return row


@router.get("/api/notifications/{notification_id}")
def get_notification(notification_id: str, user: CurrentUser, services: ServicesDep) -> dict[str, Any]:
    with services.store.unit_of_work() as port:
        row = _visible(port, user, notification_id)
        casework.record_view(port, row, user.email, services.clock())
        return {**notification_json(row, detail=True), "deliveries": deliveries.summary(port.session, row.id)}


@router.post("/api/notifications/{notification_id}/acknowledge")
def acknowledge(notification_id: str, ack: Acknowledgement, user: CurrentUser,
                services: ServicesDep) -> dict[str, Any]:
    if user.role not in (Role.DSL, Role.WORKER, Role.TEAM):
        raise forbidden()
    try:
        with services.store.unit_of_work() as port:
            row = _visible(port, user, notification_id)
            if not may_acknowledge(user, row):
                raise not_found()
            assert user.id is not None
            casework.acknowledge(port, row, user.email, user.id, ack.outcome, services.clock())
            return notification_json(row)
    except casework.CaseworkError as error:
        raise conflict(error) from error
