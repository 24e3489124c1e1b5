"""An event after intake: ``GET /api/events/{event_id}`` (its status, match and notifications, for the producer
that sent it and managers; a dead letter answered without its payload) and the front door's decisions on it,
``POST /api/events/{event_id}/decision`` (release or close a withheld attendance) and
``POST /api/events/{event_id}/review`` (a match review), both through ``pipeline.service.casework``."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter
from pydantic import BaseModel
from sqlmodel import Session

from pipeline.adapters import record_reads
from pipeline.adapters.notifications import notifications_of_event
from pipeline.adapters.repository import Repository
from pipeline.bootstrap import Services
from pipeline.domain.model import Role
from pipeline.entrypoints.dependencies import CurrentUser, ServicesDep, require, require_front_door
from pipeline.entrypoints.errors import conflict, invalid, not_found
from pipeline.service import casework

if TYPE_CHECKING:
    from pipeline.ports.records import EventRecord as Event
    from pipeline.ports.records import UserRecord as User

router = APIRouter()


class ConsentDecision(BaseModel):
    decision: str  # release | close
    reason: str


class ReviewDecision(BaseModel):
    child_id: str | None
    reason: str


@router.get("/api/events/{event_id}")
def get_event(event_id: str, user: CurrentUser, services: ServicesDep) -> dict[str, Any]:
    require(user, Role.PRODUCER, Role.MANAGER)
    event_id = event_id.lower()  # event ids are stored in lower case: one UUID, one event
    with services.store.read() as s:
        event = record_reads.event_by_id(s, event_id)
        if event is None:
            return _dead_lettered(s, event_id, user)
        if user.role == Role.PRODUCER and event.producer_id != user.id:
            raise not_found()
        notifications = notifications_of_event(s, event_id)
    body: dict[str, Any] = {
        "event_id": event.event_id, "status": event.status,
        "match": {"outcome": event.match_outcome, "child_id": event.child_id},
        "notifications": [{"id": n.id, "recipient_role": n.recipient_role} for n in notifications],
    }
    if user.role == Role.MANAGER and event.match_json:
        body["match"]["breakdown"] = json.loads(event.match_json)
    return body


def _dead_lettered(s: Session, event_id: str, user: User) -> dict[str, Any]:
    """An event rejected at intake, for the producer that sent it (or a manager); never its payload."""
    if not record_reads.dead_lettered(s, event_id, user.id if user.role == Role.PRODUCER else None):
        raise not_found()
    return {"event_id": event_id, "status": "dead_lettered", "match": {"outcome": None, "child_id": None},
            "notifications": []}


@router.post("/api/events/{event_id}/decision")
def decide_consent(event_id: str, decision: ConsentDecision, user: CurrentUser,
                   services: ServicesDep) -> dict[str, Any]:
    require_front_door(user)
    if decision.decision not in ("release", "close"):
        raise invalid("decision", "must be release or close")
    reason = _reason(decision.reason)
    return _casework(services, event_id, lambda repo, event, now: casework.decide_consent(
        repo, event, services.ctx, user.email, decision.decision, reason, now))


@router.post("/api/events/{event_id}/review")
def decide_review(event_id: str, decision: ReviewDecision, user: CurrentUser,
                  services: ServicesDep) -> dict[str, Any]:
    require_front_door(user)
    reason = _reason(decision.reason)
    return _casework(services, event_id, lambda repo, event, now: casework.decide_review(
        repo, event, services.ctx, user.email, decision.child_id, reason, now))


def _reason(text: str) -> str:
    """A decision's reason as audited: non-blank, within the limit the web form keeps too."""
    reason = text.strip()
    problem = casework.reason_problem(reason)
    if problem == "blank":
        raise invalid("reason", "must not be blank: say why")
    if problem == "too_long":
        raise invalid("reason", f"must be at most {casework.REASON_LIMIT:,} characters")
    return reason


def _casework(services: Services, event_id: str, action: Callable[[Repository, Event, datetime], Any]
              ) -> dict[str, Any]:
    event_id = event_id.lower()
    now = services.clock()
    try:
        with services.store.transaction() as s:
            event = record_reads.event_by_id(s, event_id)
            if event is None:
                raise not_found()
            action(Repository(s, postgres=services.store.is_postgres), event, now)
            status = event.status
    except casework.CaseworkError as error:
        raise conflict(error) from error
    services.on_accepted()
    return {"event_id": event_id, "status": status}
