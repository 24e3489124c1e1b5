"""The small web app: a DSL or worker logs in, reads and acknowledges; a manager sees what is overdue.

Server-rendered HTML (Jinja2, autoescaped); the session is an HttpOnly, SameSite=Strict cookie holding a
token like the API's. Nothing personal ever goes into a URL: pages are addressed by opaque ids.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import DictLoader, Environment, select_autoescape
from sqlmodel import col, select

from pipeline.adapters import tables as t
from pipeline.adapters.repository import Repository
from pipeline.bootstrap import Services
from pipeline.domain.model import Role
from pipeline.service import casework
from pipeline.service.access import may_acknowledge, notification_scope, visible_notification
from pipeline.service.users import check_password, issue_token

_BASE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{{ title }} - Safeguarding</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:60rem}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}.URGENT{color:#b00;font-weight:bold}
nav a{margin-right:1rem}</style></head><body>
<nav>{% if user %}<a href="/notifications">Notifications</a>{% if user.role == 'manager' %}
<a href="/overdue">Overdue</a>{% endif %}<form method="post" action="/logout" style="display:inline">
<button>Log out</button></form>{% endif %}</nav><h1>{{ title }}</h1>{% block body %}{% endblock %}</body></html>"""

_TEMPLATES = {
    "base.html": _BASE,
    "login.html": """{% extends "base.html" %}{% block body %}{% if error %}<p role="alert">{{ error }}</p>{% endif %}
<form method="post" action="/login"><label>Email <input name="email" type="email" required></label>
<label>Password <input name="password" type="password" required></label><button>Log in</button></form>
{% endblock %}""",
    "list.html": """{% extends "base.html" %}{% block body %}<table id="notifications"><tr><th>Created</th>
<th>Pathway</th><th>Kind</th><th>Urgency</th><th>Status</th><th></th></tr>{% for n in rows %}<tr>
<td>{{ n.created_at.strftime('%Y-%m-%d %H:%M') }}</td><td>{{ n.pathway }}</td><td>{{ n.kind }}</td>
<td class="{{ n.urgency }}">{{ n.urgency|lower }}</td><td class="status">{{ n.status }}</td>
<td><a href="/notifications/{{ n.id }}">Open</a></td></tr>{% else %}<tr><td colspan="6">Nothing here.</td></tr>
{% endfor %}</table>{% endblock %}""",
    "detail.html": """{% extends "base.html" %}{% block body %}<p class="{{ n.urgency }}">{{ n.urgency|lower }}
 &middot; {{ n.pathway }} &middot; <span id="status">{{ n.status }}</span></p><p>{{ n.reason }}</p>
<dl>{% for key, value in content.items() %}<dt>{{ key.replace('_', ' ') }}</dt><dd>{{ value }}</dd>{% endfor %}</dl>
{% if can_ack and not n.acknowledged_at %}<form method="post" action="/notifications/{{ n.id }}/acknowledge">
<label>Outcome <input name="outcome" required></label><button>Acknowledge</button></form>
{% elif n.acknowledged_at %}<p id="acknowledged">Acknowledged {{ n.acknowledged_at.strftime('%Y-%m-%d %H:%M') }}:
 {{ n.outcome }}</p>{% endif %}{% endblock %}""",
    "overdue.html": """{% extends "base.html" %}{% block body %}<table id="overdue"><tr><th>Kind</th><th>Due</th>
<th>Escalation level</th><th>Subject</th></tr>{% for d in rows %}<tr><td>{{ d.kind }}</td>
<td>{{ d.due_at.strftime('%Y-%m-%d %H:%M') }}</td><td>{{ d.escalation_level }}</td><td>{{ d.subject_id }}</td></tr>
{% else %}<tr><td colspan="4">Nothing overdue.</td></tr>{% endfor %}</table>{% endblock %}""",
}

_env = Environment(loader=DictLoader(_TEMPLATES), autoescape=select_autoescape(default=True))


def _page(name: str, status: int = 200, **values: Any) -> HTMLResponse:
    return HTMLResponse(_env.get_template(name).render(**values), status_code=status)


def add_web_routes(app: FastAPI, services: Services, current_user: Callable[..., t.User]) -> None:
    from pipeline.entrypoints.api import SESSION_COOKIE, ApiError

    def user_or_none(request: Request) -> t.User | None:
        try:
            return current_user(request, None)
        except ApiError:
            return None

    @app.get("/", include_in_schema=False)
    def home() -> Response:
        return RedirectResponse("/notifications", status_code=303)

    @app.get("/login", response_class=HTMLResponse)
    def login_page() -> HTMLResponse:
        return _page("login.html", title="Log in", user=None)

    @app.post("/login")
    def login(email: str = Form(...), password: str = Form(...)) -> Response:
        with services.store.transaction() as s:
            user = check_password(s, email, password)
            token = issue_token(s, user, kind="web") if user is not None else None
        if token is None:
            return _page("login.html", 401, title="Log in", user=None, error="Email or password not recognised.")
        response = RedirectResponse("/notifications", status_code=303)
        response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict")
        return response

    @app.post("/logout")
    def logout() -> Response:
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    @app.get("/notifications", response_class=HTMLResponse)
    def notifications_page(request: Request) -> Response:
        user = user_or_none(request)
        if user is None:
            return RedirectResponse("/login", status_code=303)
        with services.store.read() as s:
            rows = s.exec(select(t.Notification).where(notification_scope(user))
                          .order_by(col(t.Notification.created_at).desc()).limit(200)).all()
        return _page("list.html", title="Notifications", user=user, rows=rows)

    @app.get("/notifications/{notification_id}", response_class=HTMLResponse)
    def notification_page(notification_id: str, request: Request) -> Response:
        user = user_or_none(request)
        if user is None:
            return RedirectResponse("/login", status_code=303)
        with services.store.transaction() as s:
            row = visible_notification(s, user, notification_id)
            if row is None:
                return _page("list.html", 404, title="Not found", user=user, rows=[])
            casework.record_view(Repository(s), row, user.email, services.clock())
        return _page("detail.html", title="Safeguarding notification", user=user, n=row,
                     content=json.loads(row.content_json), can_ack=may_acknowledge(user, row))

    @app.post("/notifications/{notification_id}/acknowledge")
    def acknowledge_form(notification_id: str, request: Request, outcome: str = Form(...)) -> Response:
        user = user_or_none(request)
        if user is None:
            return RedirectResponse("/login", status_code=303)
        outcome = outcome.strip()
        if not outcome or len(outcome) > 2000:  # the form asks again; nothing is acknowledged
            return RedirectResponse(f"/notifications/{notification_id}", status_code=303)
        with services.store.transaction() as s:
            row = visible_notification(s, user, notification_id)
            if row is None or not may_acknowledge(user, row) or user.id is None:
                return _page("list.html", 404, title="Not found", user=user, rows=[])
            with contextlib.suppress(casework.CaseworkError):  # a withheld item: the page shows its state
                casework.acknowledge(Repository(s), row, user.email, user.id, outcome, services.clock())
        return RedirectResponse(f"/notifications/{notification_id}", status_code=303)

    @app.get("/overdue", response_class=HTMLResponse)
    def overdue_page(request: Request) -> Response:
        user = user_or_none(request)
        if user is None:
            return RedirectResponse("/login", status_code=303)
        if user.role != Role.MANAGER:
            return _page("list.html", 404, title="Not found", user=user, rows=[])
        with services.store.read() as s:
            rows = s.exec(select(t.Deadline).where(t.Deadline.state == "open",
                                                   col(t.Deadline.due_at) <= services.clock())
                          .order_by(col(t.Deadline.due_at)).limit(500)).all()
        return _page("overdue.html", title="Overdue", user=user, rows=rows)
