"""The HTTP app: the JSON API (bearer tokens) and the web app, as the contract describes.

``create_app`` only assembles: the error answers (pipeline/entrypoints/errors.py), one ``APIRouter`` per area
of the API, each in its own module, and the web app's pages (pipeline/entrypoints/web.py). Routes reach the
one ``Services`` object through FastAPI dependencies on ``app.state.services``
(pipeline/entrypoints/dependencies.py); they only authenticate, check scope, and hand over to the services.
Out of scope is answered exactly as not found. Error bodies name fields, never values.
"""

from __future__ import annotations

from fastapi import FastAPI

from pipeline.bootstrap import Services
from pipeline.entrypoints import (
    audit_routes,
    callbacks,
    deadline_routes,
    episode_routes,
    event_routes,
    intake_routes,
    notification_routes,
    ops_routes,
    reports,
    reviews_api,
)
from pipeline.entrypoints.errors import NOT_FOUND, add_error_handlers
from pipeline.entrypoints.intake_routes import send_to_kafka
from pipeline.entrypoints.web import add_web_routes

__all__ = ["NOT_FOUND", "ROUTERS", "create_app", "send_to_kafka"]

ROUTERS = [ops_routes.router, intake_routes.router, event_routes.router, notification_routes.router,
           deadline_routes.router, episode_routes.router, audit_routes.router, reports.router, reviews_api.router,
           callbacks.router]


def create_app(services: Services) -> FastAPI:
    # No trailing-slash redirects: they are built from the Host header, and a wrong path is simply 404. FastAPI's
    # native OpenTelemetry is off: nothing here configures a provider (the metrics are Prometheus's), and its
    # check for one ran on every request.
    app = FastAPI(title="Safeguarding partnership pipeline", docs_url=None, redoc_url=None, redirect_slashes=False,
                  telemetry={"tracing": False, "metrics": False, "logs": False})
    app.state.services = services
    add_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    intake_routes.install(app)  # before the web's middleware, which then wraps it (security headers)
    add_web_routes(app)
    return app
