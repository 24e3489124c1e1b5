"""Signing in and out, and the guards every page uses.

- ``signed_in_as(*roles)``: a FastAPI dependency for GET pages. No live session: the browser is sent to
  ``/login?next=<this path>`` (and comes back after signing in); a role not listed: the page answers 404,
  exactly as a page that does not exist.
- ``posted_by(*roles)``: the same for a form POST, which also reads the form and refuses it (403) unless its
  ``csrf_token`` field is the session's token. Every form template includes ``{{ csrf_field() }}``.

The session itself is kept on the server (``pipeline.service.sessions``); the cookie holds only its random
token (HttpOnly, SameSite=Lax, Secure when the public URL is https).
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from pipeline.bootstrap import Services
from pipeline.domain.model import Role
from pipeline.service import sessions
from pipeline.service.sessions import SessionPolicy, SignedIn
from pipeline.service.users import check_password
from pipeline.web.render import page
from pipeline.web.security import check_csrf

SESSION_COOKIE = "safeguard_session"
LOGIN_CSRF_COOKIE = "safeguard_login_csrf"
MAX_FIELD = 2000


class LoginRequired(Exception):
    """No live session: the handler sends the browser to the login page."""


class PageNotFound(Exception):
    """Out of scope, or a page the role never uses: answered as not found."""


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def policy_of(services: Services) -> SessionPolicy:
    return services.session_policy


def visitor_of(request: Request) -> SignedIn | None:
    """The signed-in visitor from the session cookie (looked up once per request)."""
    if hasattr(request.state, "visitor"):
        visitor: SignedIn | None = request.state.visitor
        return visitor
    token = request.cookies.get(SESSION_COOKIE)
    visitor = None
    if token:
        services = services_of(request)
        with services.store.unit_of_work() as port:
            visitor = sessions.resume(port, token, policy_of(services), services.clock())
        request.state.session_ended = visitor is None
    request.state.visitor = visitor
    return visitor


def signed_in_as(*roles: Role) -> Callable[[Request], SignedIn]:
    def dependency(request: Request) -> SignedIn:
        visitor = visitor_of(request)
        if visitor is None:
            raise LoginRequired()
        if roles and visitor.user.role not in roles:
            raise PageNotFound()
        return visitor
    return dependency


@dataclass(frozen=True)
class Posted:
    """A form POST from a signed-in visitor whose CSRF token checked out."""

    visitor: SignedIn
    form: FormData

    def text(self, name: str) -> str:
        value = self.form.get(name)
        return value.strip() if isinstance(value, str) else ""


def posted_by(*roles: Role) -> Callable[[Request], Awaitable[Posted]]:
    async def dependency(request: Request) -> Posted:
        visitor = signed_in_as(*roles)(request)
        form = await request.form(max_files=0, max_fields=50)
        check_csrf(form, visitor.csrf_token)
        return Posted(visitor, form)
    return dependency


def home_for(visitor: SignedIn | None) -> str:
    if visitor is None:
        return "/login"
    return {Role.ADMIN: "/admin/users", Role.PRODUCER: "/signed-in"}.get(Role(visitor.user.role), "/notifications")


def _safe_next(value: Any) -> str | None:
    """Only a path on this site (never another host) may be returned to after login."""
    if isinstance(value, str) and value.startswith("/") and not value.startswith("//") and "\\" not in value \
            and len(value) < 300:
        return value
    return None


def login_redirect(request: Request) -> RedirectResponse:
    target = "/login"
    query = []
    if request.method == "GET" and request.url.path not in ("/", "/login"):
        query.append("next=" + quote(request.url.path, safe="/"))
    if getattr(request.state, "session_ended", False):
        query.append("ended=1")
    return RedirectResponse(target + ("?" + "&".join(query) if query else ""), status_code=303)


router = APIRouter(include_in_schema=False)


def _login_page(request: Request, status: int = 200, **values: Any) -> Response:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
    request.state.login_csrf = token
    response = page(request, "login.html", title="Sign in", status=status, **values)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", path="/login",
                        secure=_secure(request))
    return response


def _secure(request: Request) -> bool:
    return services_of(request).settings.public_url.startswith("https://")


@router.get("/")
def home(request: Request) -> Response:
    return RedirectResponse(home_for(visitor_of(request)), status_code=303)


@router.get("/login")
def login_page(request: Request) -> Response:
    visitor = visitor_of(request)
    if visitor is not None:
        return RedirectResponse(_safe_next(request.query_params.get("next")) or home_for(visitor), status_code=303)
    ended = request.query_params.get("ended") == "1"
    return _login_page(request, next=_safe_next(request.query_params.get("next")), ended=ended,
                       signed_out=request.query_params.get("signed_out") == "1")


@router.post("/login")
async def login(request: Request) -> Response:
    services = services_of(request)
    form = await request.form(max_files=0, max_fields=10)
    check_csrf(form, request.cookies.get(LOGIN_CSRF_COOKIE, ""))
    email = str(form.get("email") or "").strip()[:320]
    password = str(form.get("password") or "")[:MAX_FIELD]
    next_path = _safe_next(form.get("next"))
    errors = []
    if not email:
        errors.append({"text": "Enter your email address", "href": "#email"})
    if not password:
        errors.append({"text": "Enter your password", "href": "#password"})
    if errors:
        return _login_page(request, 400, errors=errors, email=email, next=next_path)
    address = request.client.host if request.client else None
    now = services.clock()
    with services.store.unit_of_work() as port:
        if sessions.login_throttled(port, email, address, policy_of(services), now):
            throttled = True
            user = None
        else:
            throttled = False
            user = check_password(port, email, password)
            sessions.record_login(port, email, address, user is not None, now)
        token = sessions.start(port, user, now) if user is not None else None
    if throttled:
        minutes = max(1, math.ceil(policy_of(services).window.total_seconds() / 60))
        wait = "1 minute" if minutes == 1 else f"{minutes} minutes"
        return _login_page(request, 429, email=email, next=next_path, errors=[{
            "text": f"Too many failed attempts to sign in. Wait {wait}, then try again", "href": "#email"}])
    if token is None:
        return _login_page(request, 401, email=email, next=next_path, errors=[{
            "text": "Enter a correct email address and password", "href": "#email"}])
    response = RedirectResponse(next_path or "/", status_code=303)
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="lax", secure=_secure(request))
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
async def logout(request: Request, posted: Annotated[Posted, Depends(posted_by())]) -> Response:
    services = services_of(request)
    token = request.cookies.get(SESSION_COOKIE, "")
    with services.store.unit_of_work() as port:
        sessions.end(port, token, services.clock())
    response = RedirectResponse("/login?signed_out=1", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/signed-in")
def signed_in(request: Request, visitor: Annotated[SignedIn, Depends(signed_in_as())]) -> Response:
    """Where a user with no pages of their own (a sending system's account) lands."""
    return page(request, "signed_in.html", title="Signed in")
