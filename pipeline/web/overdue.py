"""Managers: open deadlines that have fallen due (the overdue board's first version; the dashboard issue
builds on it)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlmodel import col, select

from pipeline.adapters import tables as t
from pipeline.domain.model import Role
from pipeline.service.sessions import SignedIn
from pipeline.web.auth import services_of, signed_in_as
from pipeline.web.render import page

router = APIRouter(include_in_schema=False)


@router.get("/overdue")
def overdue(request: Request, visitor: Annotated[SignedIn, Depends(signed_in_as(Role.MANAGER))]) -> Response:
    services = services_of(request)
    with services.store.read() as s:
        rows = s.exec(select(t.Deadline).where(t.Deadline.state == "open", col(t.Deadline.due_at) <= services.clock())
                      .order_by(col(t.Deadline.due_at)).limit(500)).all()
    return page(request, "overdue.html", title="Overdue", rows=rows)
