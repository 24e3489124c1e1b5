"""``GET /api/deadlines?state=overdue|open|closed`` (managers): deadlines, newest first, paged."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from pipeline.adapters.record_reads import DEADLINE_STATES, deadlines_page
from pipeline.domain.model import Role
from pipeline.entrypoints.dependencies import CurrentUser, PagingDep, ServicesDep, SessionDep, found, iso, require
from pipeline.entrypoints.errors import invalid

router = APIRouter()


@router.get("/api/deadlines")
def deadlines(user: CurrentUser, s: SessionDep, paging: PagingDep, services: ServicesDep,
              state: str = "overdue") -> list[dict[str, Any]]:
    require(user, Role.MANAGER)
    if state not in DEADLINE_STATES:
        raise invalid("state", "must be overdue, open or closed")
    page = found(deadlines_page(s, state, services.clock(), limit=paging.limit, before=paging.before))
    paging.link_next(page, state=state)
    return [{"id": d.id, "kind": d.kind, "subject_id": d.subject_id, "due_at": iso(d.due_at),
             "escalation_level": d.escalation_level, "state": d.state} for d in page.rows]
