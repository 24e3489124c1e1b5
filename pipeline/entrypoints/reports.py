"""Managers' reports in the API: the partnership scorecard and the overdue board, as JSON or CSV.

Only managers may call these (403 for every other role). Every row of the board that names a child is
audited as a view by the manager who saw it.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Header, Query
from fastapi.responses import JSONResponse, Response

from pipeline.adapters.overdue_board import BoardFilters, BoardRow, board_page, counts_by_level
from pipeline.adapters.paging import Page
from pipeline.adapters.record_reads import deadline_by_id
from pipeline.adapters.repository import Repository
from pipeline.adapters.scorecard import CSV_COLUMNS, GROUPINGS, csv_row, scorecard
from pipeline.bootstrap import Services
from pipeline.domain.model import Role
from pipeline.entrypoints.csv_export import csv_response, wants_csv
from pipeline.entrypoints.dependencies import CurrentUser, PagingDep, ServicesDep, iso, require
from pipeline.entrypoints.errors import invalid, not_found
from pipeline.service.missing import ASSIGNED_DEADLINES, deadline_owner

if TYPE_CHECKING:
    from pipeline.adapters.tables import User

router = APIRouter()

BOARD_COLUMNS = ("deadline_id", "kind", "kind_in_words", "pathway", "child_id", "child_name", "school_urn",
                 "school_name", "team", "owner", "due_at", "minutes_late", "escalation_level", "told")
MAX_RANGE_DAYS = 3 * 366


def parse_range(first: str | None, last: str | None) -> tuple[date, date]:
    try:
        first_day = date.fromisoformat(first or "")
    except ValueError:
        raise invalid("from", "must be a date YYYY-MM-DD") from None
    try:
        last_day = date.fromisoformat(last or "")
    except ValueError:
        raise invalid("to", "must be a date YYYY-MM-DD") from None
    if last_day < first_day:
        raise invalid("to", "must not be before from")
    if (last_day - first_day).days > MAX_RANGE_DAYS:
        raise invalid("to", "the range is at most three years")
    return first_day, last_day


def scorecard_rows(services: Services, first_day: date, last_day: date, by: str) -> list[dict[str, Any]]:
    with services.store.read() as session:
        return scorecard(session, services.store.is_postgres, first_day, last_day, by, services.clock(),
                         services.ctx.policy.calendar.tz)


@router.get("/api/scorecard")
def get_scorecard(services: ServicesDep, user: CurrentUser,
                  first: Annotated[str | None, Query(alias="from")] = None,
                  last: Annotated[str | None, Query(alias="to")] = None,
                  by: str = "school", accept: Annotated[str | None, Header()] = None) -> Response:
    require(user, Role.MANAGER)
    if by not in GROUPINGS:
        raise invalid("by", "must be school, team or quarter")
    first_day, last_day = parse_range(first, last)
    rows = scorecard_rows(services, first_day, last_day, by)
    if wants_csv(accept):
        return csv_response(CSV_COLUMNS, (csv_row(row) for row in rows),
                            f"scorecard-{by}-{first_day.isoformat()}-{last_day.isoformat()}.csv")
    return JSONResponse(rows)


def board_filters(pathway: str | None, kind: str | None, level: int | None, school: str | None,
                  team: str | None) -> BoardFilters:
    if pathway not in (None, "", "self-harm", "missing"):
        raise invalid("pathway", "must be self-harm or missing")
    return BoardFilters(pathway or None, kind or None, level, school or None, team or None)


def with_owners(repo: Repository, services: Services, rows: list[BoardRow], now: datetime) -> list[BoardRow]:
    """Deadlines assigned to a team or worker are owned by whoever the missing pathway's rules assign them to
    now (``deadline_owner``, the one place that decides it)."""
    for row in rows:
        if row.kind in ASSIGNED_DEADLINES:
            deadline = deadline_by_id(repo.session, row.deadline_id)
            if deadline is not None:
                role, ref = deadline_owner(repo, deadline, services.ctx.policy, now)
                row.owner = role if not ref or ref == role else f"{role}: {ref}"
    return rows


def read_board(services: Services, user: User, filters: BoardFilters, limit: int,
               after_id: str | None) -> tuple[list[BoardRow], bool, dict[int, int]]:
    """A page of the board and its counts by level; each row naming a child is audited as a view."""
    now = services.clock()
    with services.store.transaction() as session:
        rows, more = board_page(session, now, filters, limit, after_id)
        counts = counts_by_level(session, now, filters)
        repo = Repository(session, postgres=services.store.is_postgres)
        with_owners(repo, services, rows, now)
        for row in rows:
            if row.child_name:
                repo.audit(now, user.email, "viewed", row.child_id or row.event_id or row.deadline_id,
                           f"overdue board row (deadline {row.deadline_id})")
    return rows, more, counts


def board_json(row: BoardRow) -> dict[str, Any]:
    return {"deadline_id": row.deadline_id, "kind": row.kind, "kind_in_words": row.kind_in_words,
            "pathway": row.pathway, "child_id": row.child_id, "child_name": row.child_name,
            "event_id": row.event_id, "school_urn": row.school_urn, "school_name": row.school_name,
            "team": row.team, "owner": row.owner, "due_at": iso(row.due_at), "minutes_late": row.minutes_late,
            "escalation_level": row.escalation_level, "told": row.told,
            "case": f"/overdue/cases/{row.deadline_id}"}


@router.get("/api/overdue")
def get_overdue_board(services: ServicesDep, user: CurrentUser, paging: PagingDep,
                      pathway: str | None = None, kind: str | None = None, level: int | None = None,
                      school: str | None = None, team: str | None = None,
                      accept: Annotated[str | None, Header()] = None) -> Response:
    """The overdue board: oldest due first, paged like every list (``before`` is the last item's id of the
    previous page; an unknown one is answered as not found)."""
    require(user, Role.MANAGER)
    filters = board_filters(pathway, kind, level, school, team)
    if paging.before is not None:
        with services.store.read() as session:
            if deadline_by_id(session, paging.before) is None:
                raise not_found()
    rows, more, counts = read_board(services, user, filters, paging.limit, paging.before)
    if wants_csv(accept):
        return csv_response(BOARD_COLUMNS, ([board_json(r)[c] if c != "told" else " ".join(r.told)
                                            for c in BOARD_COLUMNS] for r in rows), "overdue.csv")
    paging.link_next(Page(rows, rows[-1].deadline_id if more and rows else None), pathway=pathway, kind=kind,
                     level=None if level is None else str(level), school=school, team=team)
    body = {"counts_by_level": {str(level): n for level, n in sorted(counts.items())},
            "items": [board_json(row) for row in rows]}
    return JSONResponse(body, headers=dict(paging.response.headers))
