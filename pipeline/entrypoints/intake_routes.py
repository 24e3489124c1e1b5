"""``POST /api/events/{event_type}``: producers send events. The route only authenticates, reads the body (no
further than the size limit) and hands it to the intake service: embedded, the group commit answers once the
event is on disk (the intake wakes the consumer itself, from the committing thread); on Kafka, once the broker
acknowledged it (acks=all), 503 with ``Retry-After`` while it is away.

It is the one route every event crosses, so its requests skip the layers that do nothing for it:
``IntakeDispatch`` (installed by ``install``) hands a ``POST`` to exactly ``/api/events/{one segment}`` to
``post_event`` itself, below the app's own middleware (server errors, the body limit, the security headers) but
before FastAPI's exception middleware, exit stack and route matching, and answers an ``ApiError`` with the app's
own handler. Every other request, and the route's OpenAPI entry, go through FastAPI as before.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Callable, Coroutine
from typing import Any, cast

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from pipeline.bootstrap import Services
from pipeline.domain.model import Role
from pipeline.entrypoints.dependencies import current_user, require
from pipeline.entrypoints.errors import ApiError
from pipeline.service.intake import RETRY_AFTER_SECONDS, IntakeResult, Submission
from pipeline.web.auth import services_of

router = APIRouter()


def send_to_kafka(services: Services, submission: Submission) -> IntakeResult:
    """Kafka deployment: validate as the embedded intake does, then 202 once the broker acked (acks=all)."""
    return services.intake.send_to_topic(services.event_sender, submission)


class RequestOnlyRoute(APIRoute):
    """A FastAPI route whose endpoint takes the ``Request`` alone and returns a ``Response``: FastAPI's request
    handler (dependency solving, parameter validation, response serialisation) is left out of each request;
    routing, exception handlers and middleware are FastAPI's as for every other route."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint = self.endpoint

        async def handle(request: Request) -> Response:
            response: Response = await endpoint(request)
            return response

        return handle


async def post_event(request: Request) -> Response:
    """``POST /api/events/{event_type}``. No dependency is solved per event: the bearer token is checked here by
    the same ``current_user`` every other API route depends on, before the body is read. Its OpenAPI entries are
    written per event type (pipeline/entrypoints/openapi.py)."""
    user = await current_user(request, request.headers.get("authorization"))
    require(user, Role.PRODUCER)
    services = services_of(request)
    limit = services.intake.max_body_bytes
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            break  # read no further: the intake reports the size and keeps the head as a dead letter
    submission = Submission(request.path_params["event_type"], bytes(body),
                            request.headers.get("content-type", "application/json"), user.id, "http")
    if services.event_sender is not None:
        result = await run_in_threadpool(send_to_kafka, services, submission)
    else:
        result = await asyncio.wrap_future(services.intake.submit_grouped(submission))
    retry = {"Retry-After": str(RETRY_AFTER_SECONDS)} if result.status_code == 503 else None
    return Response(json_body(result.body), status_code=result.status_code, headers=retry,
                    media_type="application/json")


def json_body(content: Any) -> bytes:
    """The bytes ``JSONResponse`` renders for ``content`` (compact, UTF-8), without its response class."""
    return json.dumps(content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")).encode()


INTAKE_PATH = "/api/events/{event_type}"
_PREFIX = "/api/events/"

router.add_api_route(INTAKE_PATH, post_event, methods=["POST"], route_class_override=RequestOnlyRoute)


class IntakeDispatch:
    """Pure ASGI middleware: a ``POST`` to ``/api/events/{event_type}`` (one non-empty path segment, as the route
    matches) goes to ``post_event`` with the scope the route would have given it (``path_params``, ``route``,
    ``endpoint``); an ``ApiError`` it raises is answered by the app's handler for it; anything else it raises goes
    up to the app's server error handler, as from the route. Everything else passes on to the app."""

    def __init__(self, app: ASGIApp, owner: FastAPI) -> None:
        self.app = app
        self.owner = owner
        self._route: APIRoute | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            path: str = scope["path"]
            if path.startswith(_PREFIX):
                event_type = path[len(_PREFIX):]
                if event_type and "/" not in event_type:
                    await self._intake(scope, receive, send, event_type)
                    return
        await self.app(scope, receive, send)

    async def _intake(self, scope: Scope, receive: Receive, send: Send, event_type: str) -> None:
        if self._route is None:
            self._route = next(route for route in router.routes
                               if isinstance(route, APIRoute) and route.path == INTAKE_PATH)
        scope["path_params"] = {"event_type": event_type}
        scope["route"] = self._route
        scope["endpoint"] = post_event
        scope.setdefault("app", self.owner)
        request = Request(scope, receive)
        try:
            response = await post_event(request)
        except ApiError as error:
            response = await _answer(self.owner, request, error)
        await response(scope, receive, send)


async def _answer(app: FastAPI, request: Request, error: ApiError) -> Response:
    # The handler is a plain function (errors.py): called here, not in the thread pool as Starlette would.
    answer = app.exception_handlers[ApiError](request, error)
    if inspect.isawaitable(answer):
        answer = await answer
    return cast(Response, answer)


def install(app: FastAPI) -> None:
    """The intake's dispatch, inside whatever middleware the app is given after this call."""
    app.add_middleware(IntakeDispatch, owner=app)
