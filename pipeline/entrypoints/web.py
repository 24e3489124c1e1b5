"""The web app for the people who act: school DSLs, workers, council teams and the front door, managers
and admins. GOV.UK Design System pages (govuk-frontend from npm, govuk-frontend-jinja macros), served by
the same FastAPI app as the API.

How a page is added (see also pipeline/web/__init__.py):
1. a template under ``pipeline/web/templates/`` that starts ``{% extends "base.html" %}`` and fills
   ``{% block content %}``, using govuk-frontend-jinja macros
   (``{% from "govuk_frontend_jinja/components/NAME/macro.html" import govukNAME %}``);
2. a route in a module of ``pipeline/web/`` with its own ``APIRouter(include_in_schema=False)``, guarded by
   ``Depends(signed_in_as(Role.X, ...))`` (GET) or ``Depends(posted_by(Role.X, ...))`` (form POST: checks the
   CSRF token too), answering ``page(request, "name.html", title=...)``;
3. every ``<form method="post">`` carries ``{{ csrf_field() }}``; a header link is a ``NavItem`` in
   ``pipeline.web.render.NAVIGATION``;
4. the router is listed in ``ROUTERS`` below.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from pipeline.entrypoints import openapi
from pipeline.web import admin, auth, caseload, dashboard, front_door, inbox, overdue
from pipeline.web.auth import LoginRequired, PageNotFound, login_redirect
from pipeline.web.render import STATIC, page
from pipeline.web.security import CsrfRefused, SecurityHeaders

ROUTERS = [auth.router, inbox.router, caseload.router, front_door.router, overdue.router, dashboard.router,
           admin.router]


def add_web_routes(app: FastAPI) -> None:
    """The security headers, /openapi.json and /docs, /static, every page router and the pages' error pages."""
    app.add_middleware(SecurityHeaders)
    openapi.install(app)
    app.mount("/static", StaticFiles(directory=STATIC, check_dir=False), name="static")
    for router in ROUTERS:
        app.include_router(router)

    @app.exception_handler(LoginRequired)
    def _login_required(request: Request, _: LoginRequired) -> Response:
        return login_redirect(request)

    @app.exception_handler(PageNotFound)
    def _not_found(request: Request, _: PageNotFound) -> Response:
        return page(request, "error.html", title="Page not found", status=404,
                    lines=["If you typed the web address, check it is correct.",
                           "If you followed a link from a message, sign in as the person it was sent to."])

    @app.exception_handler(HTTPException)
    async def _unmatched(request: Request, error: HTTPException) -> Response:
        # A person who mistyped a page's address gets the service's page; the API (and anything that does not
        # ask for HTML) keeps its one JSON 404 body, the same as out of scope.
        if error.status_code == 404 and not request.url.path.startswith("/api/") \
                and "text/html" in request.headers.get("accept", ""):
            return _not_found(request, PageNotFound())
        return await http_exception_handler(request, error)

    @app.exception_handler(CsrfRefused)
    def _csrf_refused(request: Request, _: CsrfRefused) -> Response:
        return page(request, "error.html", title="Your form could not be sent", status=403,
                    lines=["The page had expired or the form did not come from this service.",
                           "Go back, reload the page and try again."])
