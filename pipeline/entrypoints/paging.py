"""The HTTP side of paging, the same on every list: ``?limit=N`` and ``?before=ID`` in, a ``Link`` header out.

``limit`` defaults to 100 and is at most 1,000; anything else is refused with the API's usual 422
``{errors: [{field, message}]}``. While more items remain, the answer carries
``Link: </path?...&before=ID>; rel="next"``: a relative reference (never built from the Host header) made
only of the route's path, its own declared filters and the paging parameters, so it carries nothing the
caller did not already send in a declared, non-personal parameter. A ``before`` id that does not exist or is
outside the caller's scope is answered exactly as not found (see ``pipeline.adapters.paging``).
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import Query, Request, Response

from pipeline.adapters.paging import DEFAULT_LIMIT, MAX_LIMIT, Page


class Paging:
    """A FastAPI dependency: ``paging: Annotated[Paging, Depends()]`` in a list route."""

    def __init__(self, request: Request, response: Response,
                 limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
                 before: Annotated[str | None, Query(min_length=1, max_length=100)] = None) -> None:
        self.request, self.response = request, response
        self.limit, self.before = limit, before

    def link_next(self, page: Page[Any], **filters: str | None) -> None:
        """Announce the next page, if any; ``filters`` are the route's own query parameters to carry over."""
        if page.next_before is None:
            return
        params = {name: value for name, value in filters.items() if value is not None}
        params.update(limit=str(self.limit), before=page.next_before)
        path = quote(self.request.scope.get("root_path", "") + self.request.scope["path"])
        self.response.headers["Link"] = f'<{path}?{urlencode(params)}>; rel="next"'
