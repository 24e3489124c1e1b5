"""Admin pages: the users, and disabling one or resetting a password (as ``safeguard users disable`` and
``users reset-password`` do). An admin sees no case content."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from pipeline.adapters import accounts
from pipeline.domain.model import Role
from pipeline.service import users
from pipeline.service.sessions import SignedIn
from pipeline.web.auth import PageNotFound, Posted, posted_by, services_of, signed_in_as
from pipeline.web.render import page

router = APIRouter(include_in_schema=False)


@router.get("/admin/users")
def users_page(request: Request, visitor: Annotated[SignedIn, Depends(signed_in_as(Role.ADMIN))]) -> Response:
    with services_of(request).store.read() as s:
        everyone = list(accounts.all_users(s))
    done = {"disabled": "User disabled. Their sessions have ended.",
            "password": "Password reset. Their sessions have ended."}.get(request.query_params.get("done", ""))
    return page(request, "admin_users.html", title="Users", users=everyone, done=done)


@router.post("/admin/users/{user_id}/disable")
def disable(user_id: int, request: Request, posted: Annotated[Posted, Depends(posted_by(Role.ADMIN))]) -> Response:
    services = services_of(request)
    with services.store.unit_of_work() as port:
        user = port.user_by_id(user_id)
        if user is None or user.id == posted.visitor.user.id:  # an admin does not lock themself out
            raise PageNotFound()
        users.disable(port, user, services.clock())
    return RedirectResponse("/admin/users?done=disabled", status_code=303)


def _password_page(request: Request, user_id: int, status: int = 200, **values: Any) -> Response:
    with services_of(request).store.read() as s:
        user = accounts.user_by_id(s, user_id)
    if user is None:
        raise PageNotFound()
    return page(request, "admin_password.html", title="Reset a password", status=status, target=user, **values)


@router.get("/admin/users/{user_id}/password")
def password_page(user_id: int, request: Request,
                  visitor: Annotated[SignedIn, Depends(signed_in_as(Role.ADMIN))]) -> Response:
    return _password_page(request, user_id)


@router.post("/admin/users/{user_id}/password")
def set_password(user_id: int, request: Request,
                 posted: Annotated[Posted, Depends(posted_by(Role.ADMIN))]) -> Response:
    services = services_of(request)
    password = str(posted.form.get("password") or "")
    if len(password) < users.MIN_PASSWORD:
        return _password_page(request, user_id, 400, errors=[{
            "text": f"Enter a password of at least {users.MIN_PASSWORD} characters", "href": "#password"}])
    with services.store.unit_of_work() as port:
        user = port.user_by_id(user_id)
        if user is None:
            raise PageNotFound()
        try:
            users.set_password(port, user, password, services.clock())
        except users.UserError:
            raise PageNotFound() from None
    return RedirectResponse("/admin/users?done=password", status_code=303)
