"""Managers: the overdue board (every open deadline that has fallen due, oldest first, with the child, school,
team, owner, how late, escalation level and who has been told; filters, counts by level, a CSV download, a
periodic reload) and the case page each row links to. Every row naming a child is audited as a view."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from pipeline.adapters.notifications import told_about_deadline
from pipeline.adapters.overdue_board import KIND_IN_WORDS, BoardFilters, board_page, child_name
from pipeline.adapters.record_reads import audit_trail, deadline_by_id
from pipeline.adapters.repository import Repository
from pipeline.domain.model import Role
from pipeline.entrypoints.csv_export import csv_response
from pipeline.entrypoints.reports import BOARD_COLUMNS, board_json, read_board, with_owners
from pipeline.service.sessions import SignedIn
from pipeline.web.auth import PageNotFound, services_of, signed_in_as
from pipeline.web.pagination import query_number
from pipeline.web.render import page
from pipeline.web.words import minutes_words

if TYPE_CHECKING:
    from pipeline.ports.records import DeadlineRecord as Deadline

router = APIRouter(include_in_schema=False)
Manager = Annotated[SignedIn, Depends(signed_in_as(Role.MANAGER))]
REFRESH_SECONDS = 60
REFRESH_SCRIPT = Path(__file__).resolve().parent / "assets" / "board_refresh.js"
LEVELS = (0, 1, 2, 3)


def filters_from(request: Request) -> tuple[BoardFilters, dict[str, str]]:
    """The board's filters from the query string (unknown values are ignored, not errors)."""
    query = request.query_params
    chosen = {name: query.get(name, "").strip() for name in ("pathway", "kind", "level", "school", "team")}
    if chosen["pathway"] not in ("self-harm", "missing"):
        chosen["pathway"] = ""
    if chosen["kind"] not in KIND_IN_WORDS:
        chosen["kind"] = ""
    if chosen["level"] not in {str(level) for level in LEVELS}:
        chosen["level"] = ""
    filters = BoardFilters(chosen["pathway"] or None, chosen["kind"] or None,
                           int(chosen["level"]) if chosen["level"] else None, chosen["school"] or None,
                           chosen["team"] or None)
    return filters, chosen


@router.get("/overdue")
def overdue(request: Request, visitor: Manager) -> Response:
    services = services_of(request)
    filters, chosen = filters_from(request)
    rows, more, counts = read_board(services, visitor.user, filters, 200, None)
    download = "/overdue/download" + ("?" + urlencode({k: v for k, v in chosen.items() if v}) if any(
        chosen.values()) else "")
    every = request.query_params.get("every", "")
    seconds = query_number(every, digits=5)
    refresh = REFRESH_SECONDS if seconds is None else min(3600, max(2, seconds))
    return page(request, "overdue.html", title="Overdue", rows=rows, more=more, chosen=chosen,
                counts=[(level, counts.get(level, 0)) for level in LEVELS], kinds=KIND_IN_WORDS,
                how_late=minutes_words, download=download, refresh=refresh, now=services.clock())


@router.get("/overdue/refresh.js")
def overdue_refresh_script() -> Response:
    return Response(REFRESH_SCRIPT.read_text(encoding="utf-8"), media_type="text/javascript",
                    headers={"Cache-Control": "no-cache"})


DOWNLOAD_PAGE = 1000  # rows read at a time for the download (it has every row)


@router.get("/overdue/download")
def overdue_download(request: Request, visitor: Manager) -> Response:
    services = services_of(request)
    filters, _ = filters_from(request)
    rows, more, _ = read_board(services, visitor.user, filters, DOWNLOAD_PAGE, None)
    while more:  # every row the filters choose, a page at a time
        later, more, _ = read_board(services, visitor.user, filters, DOWNLOAD_PAGE, rows[-1].deadline_id)
        rows += later
    return csv_response(BOARD_COLUMNS, ([board_json(r)[c] if c != "told" else " ".join(r.told)
                                         for c in BOARD_COLUMNS] for r in rows), "overdue.csv")


@router.get("/overdue/cases/{deadline_id}")
def overdue_case(deadline_id: str, request: Request, visitor: Manager) -> Response:
    """A deadline's case: what it is, who it is about, who owns it, and its record (audited as a view)."""
    services = services_of(request)
    now = services.clock()
    with services.store.transaction() as session:
        deadline = deadline_by_id(session, deadline_id)
        if deadline is None:
            raise PageNotFound()
        name = child_name(session, deadline.child_id) if deadline.child_id else None
        subjects = [deadline.id, deadline.subject_id, *([deadline.event_id] if deadline.event_id else [])]
        record = audit_trail(session, subjects)
        told = told_about_deadline(session, deadline)
        repo = Repository(session, postgres=services.store.is_postgres)
        on_board = board_row(session, now, deadline)
        if on_board is not None:
            with_owners(repo, services, [on_board], now)
        repo.audit(
            now, visitor.user.email, "viewed", deadline.child_id or deadline.event_id or deadline.id,
            f"overdue case page (deadline {deadline.id})")
        record_rows = trail_rows(record)
        told_rows = [{"at": n.created_at, "role": n.recipient_role, "kind": n.kind, "status": n.status}
                     for n in told]
    return page(request, "overdue_case.html", title=KIND_IN_WORDS.get(deadline.kind, deadline.kind),
                deadline=deadline, name=name, row=on_board, record=record_rows, told=told_rows,
                steps=json.loads(deadline.steps_json), how_late=minutes_words, now=now)


def trail_rows(record: Any) -> list[dict[str, Any]]:
    """A case's record as people read it, oldest first. Everything stays in the audit; the page shows an entry
    written about two of the case's subjects at once (an escalation is recorded on the deadline and on what it is
    about) once, and a run of the same view by one person (the board reloads itself every minute) as one line
    with its count and when the run ended."""
    rows: list[dict[str, Any]] = []
    seen: set[tuple[Any, ...]] = set()
    for entry in record:
        key = (entry.at, entry.actor, entry.action, entry.reason)
        if key in seen:
            continue
        seen.add(key)
        last = rows[-1] if rows else None
        if entry.action == "viewed" and last is not None \
                and (last["action"], last["actor"], last["reason"]) == ("viewed", entry.actor, entry.reason):
            last["views"] += 1
            last["until"] = entry.at
            continue
        rows.append({"at": entry.at, "actor": entry.actor, "action": entry.action, "reason": entry.reason,
                     "views": 1, "until": None})
    return rows


def board_row(session: Any, now: datetime, deadline: Deadline) -> Any:
    """The deadline's row as the board shows it, when it is on the board (open and due)."""
    if deadline.state != "open" or deadline.due_at > now:
        return None
    rows, _ = board_page(session, now, BoardFilters(kind=deadline.kind, deadline_id=deadline.id), limit=1)
    return rows[0] if rows else None
