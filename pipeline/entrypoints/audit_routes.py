"""``GET /api/audit?subject=ID`` (managers): the audit trail about one subject, newest first, paged."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from pipeline.adapters.record_reads import audit_page
from pipeline.domain.model import Role
from pipeline.entrypoints.dependencies import CurrentUser, PagingDep, SessionDep, found, iso, require

router = APIRouter()


@router.get("/api/audit")
def audit(subject: str, user: CurrentUser, s: SessionDep, paging: PagingDep) -> list[dict[str, Any]]:
    require(user, Role.MANAGER)
    page = found(audit_page(s, subject, limit=paging.limit, before=paging.before))
    paging.link_next(page, subject=subject)
    return [{"id": a.id, "at": iso(a.at), "actor": a.actor, "action": a.action, "reason": a.reason}
            for a in page.rows]
