"""Routes for operators and browsers rather than people: ``GET /health`` (200 once the runtime is ready, 503
while it starts), ``GET /metrics`` (Prometheus; the work waiting read afresh, and on Kafka the consumer lag)
and an empty ``/favicon.ico``."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from pipeline.adapters.metrics import WORK_WAITING, refresh_consumer_lag
from pipeline.adapters.record_reads import work_waiting
from pipeline.entrypoints.dependencies import ServicesDep

log = logging.getLogger(__name__)
router = APIRouter()


@router.get("/health")
def health(services: ServicesDep) -> JSONResponse:
    ok = services.ready.is_set()
    return JSONResponse({"status": "ok" if ok else "starting"}, status_code=200 if ok else 503)


@router.get("/metrics", include_in_schema=False)
def metrics(services: ServicesDep) -> Response:
    settings = services.settings
    if settings.kafka_bootstrap:
        try:
            refresh_consumer_lag(settings.kafka_bootstrap, settings.kafka_group, settings.kafka_topic_prefix)
        except Exception as error:  # noqa: BLE001 - metrics must not fail because the broker is away
            log.warning("consumer lag unavailable (%s)", type(error).__name__)
    try:
        with services.store.read() as session:
            for what, count in work_waiting(session, services.clock()).items():
                WORK_WAITING.labels(what).set(count)
    except Exception as error:  # noqa: BLE001 - the other metrics still answer while the database is away
        WORK_WAITING.clear()  # absent, not stale: an alert on them sees no data rather than old figures
        log.warning("work waiting unavailable (%s)", type(error).__name__)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


@router.get("/favicon.ico", include_in_schema=False)
def favicon() -> Response:
    return Response(status_code=204)
