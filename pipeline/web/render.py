"""Rendering pages: the Jinja environment (our templates, then govuk-frontend-jinja's macros), the filters
from ``pipeline.web.words``, the navigation each role sees, and ``page()``, which every route returns.

``page()`` adds what the base layout needs (service name, navigation, the visitor, the CSRF token for forms)
and answers with ``Cache-Control: no-store`` so case data never sits in a shared or browser cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PackageLoader, PrefixLoader, pass_context
from markupsafe import Markup, escape

from pipeline.domain.model import FRONT_DOOR, Role
from pipeline.service.sessions import SignedIn
from pipeline.web import words

TEMPLATES = Path(__file__).resolve().parent / "templates"
STATIC = Path(__file__).resolve().parent / "static"

environment = Environment(
    loader=ChoiceLoader([FileSystemLoader(TEMPLATES),
                         PrefixLoader({"govuk_frontend_jinja": PackageLoader("govuk_frontend_jinja")})]),
    autoescape=True, trim_blocks=True, lstrip_blocks=True,
)
environment.filters.update(words=words.words, london=words.london, london_time=words.london_time,
                           long_date=words.long_date, full_name=words.full_name,
                           minutes_words=words.minutes_words, role_words=words.role_words,
                           owner_words=words.owner_words, school_words=words.school_words)


@pass_context
def csrf_field(context: Any) -> Markup:
    """The hidden field every form carries: ``{{ csrf_field() }}`` inside each <form method="post">."""
    return Markup('<input type="hidden" name="csrf_token" value="{}">').format(escape(context.get("csrf_token", "")))


def error_message(errors: list[dict[str, str]] | None, field_id: str) -> dict[str, str] | None:
    """A form field's ``errorMessage`` for the GOV.UK macros: the error summary's entry pointing at ``#field_id``,
    or None (no message) when there is none: ``'errorMessage': error_message(errors, 'reason')``."""
    found = next((error for error in errors or [] if error.get("href") == f"#{field_id}"), None)
    return {"text": found["text"]} if found is not None else None


environment.globals["csrf_field"] = csrf_field
environment.globals["error_message"] = error_message


@dataclass(frozen=True)
class NavItem:
    text: str
    href: str
    roles: frozenset[str]
    teams: frozenset[str] | None = None  # for team users: only these teams (None: every team)

    def shown_to(self, user: Any) -> bool:
        if user.role not in self.roles:
            return False
        return user.role != Role.TEAM or self.teams is None or user.team in self.teams


# The service navigation. A new page that people reach from the header adds a NavItem here.
NAVIGATION: list[NavItem] = [
    NavItem("Inbox", "/notifications", frozenset({Role.DSL, Role.TEAM, Role.WORKER, Role.MANAGER})),
    NavItem("Caseload", "/caseload", frozenset({Role.WORKER})),
    NavItem("Match reviews", "/reviews", frozenset({Role.TEAM, Role.MANAGER}), frozenset({FRONT_DOOR})),
    NavItem("Consent decisions", "/decisions", frozenset({Role.TEAM, Role.MANAGER}), frozenset({FRONT_DOOR})),
    NavItem("Overdue", "/overdue", frozenset({Role.MANAGER})),
    NavItem("Dashboard", "/dashboard", frozenset({Role.MANAGER})),
    NavItem("Users", "/admin/users", frozenset({Role.ADMIN})),
]


def service_name(request: Request) -> str:
    rules = request.app.state.services.settings.rules
    return str(rules.get("web", {}).get("service_name") or "Safeguarding children partnership")


def navigation_for(request: Request, visitor: SignedIn | None) -> list[dict[str, Any]]:
    if visitor is None:
        return []
    path = request.url.path
    return [{"text": item.text, "href": item.href, "active": path == item.href or path.startswith(item.href + "/")}
            for item in NAVIGATION if item.shown_to(visitor.user)]


def page(request: Request, template: str, *, title: str, status: int = 200, **values: Any) -> HTMLResponse:
    """Render ``template`` (a file under pipeline/web/templates) inside the base layout."""
    visitor: SignedIn | None = getattr(request.state, "visitor", None)
    context = {
        "title": title, "service_name": service_name(request), "visitor": visitor,
        "user": visitor.user if visitor else None, "csrf_token": csrf_token_for(request),
        "navigation": navigation_for(request, visitor), "errors": values.pop("errors", None) or [],
        **values,
    }
    html = environment.get_template(template).render(context)
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})


def csrf_token_for(request: Request) -> str:
    """The token this visitor's forms carry: the session's, or before login the login form's own."""
    visitor: SignedIn | None = getattr(request.state, "visitor", None)
    if visitor is not None:
        return visitor.csrf_token
    return str(getattr(request.state, "login_csrf", ""))
