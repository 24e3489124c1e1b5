"""``GET /api/children/{child_id}/episodes`` (the allocated worker and managers): a child's missing episodes,
newest first, paged, each with the deadlines on it."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter
from sqlmodel import Session

from pipeline.adapters import record_reads
from pipeline.adapters.repository import Repository
from pipeline.bootstrap import Services
from pipeline.domain.model import Role
from pipeline.entrypoints.dependencies import CurrentUser, PagingDep, ServicesDep, SessionDep, found, iso, require
from pipeline.entrypoints.errors import not_found

if TYPE_CHECKING:
    from pipeline.adapters.tables import User

router = APIRouter()


@router.get("/api/children/{child_id}/episodes")
def child_episodes(child_id: str, user: CurrentUser, s: SessionDep, paging: PagingDep,
                   services: ServicesDep) -> list[dict[str, Any]]:
    require(user, Role.WORKER, Role.MANAGER)
    if user.role == Role.WORKER and not _allocated(s, services, user, child_id):
        raise not_found()
    if not record_reads.child_exists(s, child_id):
        raise not_found()
    page = found(record_reads.episodes_page(s, child_id, limit=paging.limit, before=paging.before))
    paging.link_next(page)
    result = []
    for episode in page.rows:
        deadlines = record_reads.deadlines_on(s, episode.episode_id)
        result.append({
            "episode_id": episode.episode_id, "reported_at": iso(episode.reported_at),
            "last_seen_at": iso(episode.last_seen_at), "risk_grade": episode.risk_grade,
            "missing_from": episode.missing_from, "exploitation_flags": json.loads(episode.exploitation_flags),
            "found_at": iso(episode.found_at), "returned_to": episode.returned_to,
            "state": "found" if episode.found_at else ("missing" if episode.reported_at else "reported_found_only"),
            "return_interview_outcome": episode.return_interview_outcome,
            "deadlines": [{"id": d.id, "kind": d.kind, "due_at": iso(d.due_at), "state": d.state,
                           "escalation_level": d.escalation_level} for d in deadlines],
        })
    return result


def _allocated(s: Session, services: Services, user: User, child_id: str) -> bool:
    facts = Repository(s).facts_for_child(child_id, services.clock().date())
    return facts is not None and any(i.worker_email == user.email for i in facts.involvements)
