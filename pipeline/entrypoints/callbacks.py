"""Provider delivery-status callbacks: Twilio (``X-Twilio-Signature``, checked with the ``twilio`` package's
``RequestValidator`` over the callback URL we gave it) and GOV.UK Notify (its bearer token).

A callback that fails the check is refused (403) and changes nothing. One that passes records the status on
the delivery row: ``delivered`` confirms it; a failure after ``sent`` moves the delivery on to its fallback
(pipeline/service/relay.py ``provider_status``). Answers never echo what was sent.
"""

from __future__ import annotations

import hmac
import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from pipeline.bootstrap import callback_url
from pipeline.entrypoints.dependencies import ServicesDep
from pipeline.service.relay import provider_status

log = logging.getLogger(__name__)

REFUSED = Response(status_code=403, content=b'{"detail": "Forbidden"}', media_type="application/json")
router = APIRouter()


@router.post("/api/callbacks/twilio", include_in_schema=False)
async def twilio_status(request: Request, services: ServicesDep) -> Response:
    from twilio.request_validator import RequestValidator

    settings = services.settings
    if not settings.twilio_auth_token:
        return Response(status_code=404, content=b'{"detail": "Not Found"}', media_type="application/json")
    form = await request.form()
    params = {key: str(value) for key, value in form.items()}
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature or not RequestValidator(settings.twilio_auth_token).validate(
            callback_url(settings, "twilio"), params, signature):
        log.warning("refused a Twilio callback without a valid signature")
        return REFUSED
    sid, status = params.get("MessageSid") or params.get("SmsSid"), params.get("MessageStatus") or \
        params.get("SmsStatus")
    if sid and status:
        await run_in_threadpool(provider_status, services.store, services.delivery, "twilio", sid, status,
                                services.clock())
    return Response(status_code=204)


@router.post("/api/callbacks/notify", include_in_schema=False)
async def notify_status(request: Request, services: ServicesDep) -> Response:
    token = services.settings.notify_callback_token
    if not token:
        return Response(status_code=404, content=b'{"detail": "Not Found"}', media_type="application/json")
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        log.warning("refused a Notify callback without its bearer token")
        return REFUSED
    try:
        body: Any = await request.json()
    except ValueError:
        return Response(status_code=400, content=b'{"detail": "a JSON body is required"}',
                        media_type="application/json")
    if isinstance(body, dict) and isinstance(body.get("id"), str) and isinstance(body.get("status"), str):
        await run_in_threadpool(provider_status, services.store, services.delivery, "notify", body["id"],
                                body["status"], services.clock())
    return Response(status_code=204)
