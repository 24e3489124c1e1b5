"""HTTP routes of the match-review queue: ``GET /api/reviews`` and ``GET /api/children/{child_id}`` (front door
and managers). Deciding a review stays ``POST /api/events/{event_id}/review`` (casework).

No ``from __future__ import annotations`` here: FastAPI must see the dependency types built inside ``router``.
"""

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from sqlmodel import Session

from pipeline.adapters import tables as t
from pipeline.adapters.reviews import child_records, open_reviews
from pipeline.domain.model import FRONT_DOOR, Role


def router(current_user: Callable[..., t.User], read_session: Callable[..., Any],
           not_found: Callable[[], Exception], forbidden: Callable[[], Exception]) -> APIRouter:
    routes = APIRouter()
    CurrentUser = Annotated[t.User, Depends(current_user)]
    SessionDep = Annotated[Session, Depends(read_session)]

    def front_door_or_manager(user: t.User) -> None:
        if not (user.role == Role.MANAGER or (user.role == Role.TEAM and user.team == FRONT_DOOR)):
            raise forbidden()

    @routes.get("/api/reviews")
    def reviews(request: Request, response: Response, user: CurrentUser, s: SessionDep, limit: int = 100,
                before: str | None = None) -> list[dict[str, Any]]:
        front_door_or_manager(user)
        limit = max(1, min(limit, 1000))
        items = open_reviews(s)
        if before is not None:
            ids = [item["event_id"] for item in items]
            items = items[ids.index(before) + 1:] if before in ids else []
        page = items[:limit]
        if len(items) > limit:
            response.headers["Link"] = (f'<{request.url.path}?limit={limit}&before={page[-1]["event_id"]}>; '
                                        'rel="next"')
        return page

    @routes.get("/api/children/{child_id}")
    def child(child_id: str, user: CurrentUser, s: SessionDep) -> dict[str, Any]:
        front_door_or_manager(user)
        records = child_records(s, child_id)
        if records is None:
            raise not_found()
        return {"child_id": child_id, "records": records}

    return routes
