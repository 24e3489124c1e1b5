"""``POST /api/events/{event_type}``: producers send events. The route only authenticates, reads the body (no
further than the size limit) and hands it to the intake service: embedded, the group commit answers once the
event is on disk (the intake wakes the consumer itself, from the committing thread); on Kafka, once the broker
acknowledged it (acks=all), 503 with ``Retry-After`` while it is away."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from pipeline.bootstrap import Services
from pipeline.domain.model import Role
from pipeline.entrypoints.dependencies import current_user, require
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
    return JSONResponse(result.body, status_code=result.status_code, headers=retry)


router.add_api_route("/api/events/{event_type}", post_event, methods=["POST"], route_class_override=RequestOnlyRoute)
