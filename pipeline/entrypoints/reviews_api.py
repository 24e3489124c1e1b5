"""HTTP routes of the match-review queue: ``GET /api/reviews`` and ``GET /api/children/{child_id}`` (front door
and managers). Deciding a review stays ``POST /api/events/{event_id}/review`` (pipeline/entrypoints/event_routes.py).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from pipeline.adapters.reviews import child_records, open_reviews
from pipeline.entrypoints.dependencies import CurrentUser, SessionDep, require_front_door
from pipeline.entrypoints.errors import not_found

router = APIRouter()


@router.get("/api/reviews")
def reviews(request: Request, response: Response, user: CurrentUser, s: SessionDep, limit: int = 100,
            before: str | None = None) -> list[dict[str, Any]]:
    require_front_door(user)
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


@router.get("/api/children/{child_id}")
def child(child_id: str, user: CurrentUser, s: SessionDep) -> dict[str, Any]:
    require_front_door(user)
    records = child_records(s, child_id)
    if records is None:
        raise not_found()
    return {"child_id": child_id, "records": records}
