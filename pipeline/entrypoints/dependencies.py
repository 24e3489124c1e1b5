"""What every API route depends on, as FastAPI dependencies over the one ``Services`` object in
``app.state.services``: the services, a read session, the caller (bearer token, or for reading the web app's
session), paging, and the role checks.

A route declares ``services: ServicesDep``, ``user: CurrentUser``, ``s: SessionDep`` or ``paging: PagingDep``
and checks roles with ``require(user, Role.X, ...)``; out of scope is answered exactly as not found.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from pipeline.adapters.paging import Page
from pipeline.bootstrap import Services
from pipeline.domain.model import FRONT_DOOR, Role
from pipeline.entrypoints.errors import ApiError, forbidden, not_found
from pipeline.entrypoints.paging import Paging
from pipeline.ports.records import UserRecord as User
from pipeline.service.users import user_for_token
from pipeline.web.auth import services_of, visitor_of


def read_session(request: Request) -> Iterator[Session]:
    with services_of(request).store.read() as session:
        yield session


async def current_user(request: Request, authorization: Annotated[str | None, Header()] = None) -> User:
    """The caller, from a bearer token, or for reading (GET) from the web app's server-side session; 401
    otherwise. A change through the API always needs the bearer token (the web app's forms have their own
    routes, with CSRF protection).

    The token is looked up afresh on every request (nothing cached: a disabled user's token is refused at once,
    whichever process disabled it). On SQLite that lookup is one indexed read in this process, on a connection
    kept for it (``Store.tokens``), which under WAL never waits for a writer, so it runs here on the event loop:
    a hop to the thread pool cost more than the read. A PostgreSQL lookup is a round trip, and a web session is
    resumed in a write transaction: both stay in the thread pool."""
    store = services_of(request).store
    if authorization and authorization.lower().startswith("bearer "):
        token = authorization[7:].strip()
        if not token:
            user = None
        elif store.is_postgres:
            user = await run_in_threadpool(user_for_token, store.tokens, token)
        else:
            user = user_for_token(store.tokens, token)
    elif request.method in ("GET", "HEAD"):
        visitor = await run_in_threadpool(visitor_of, request)
        user = visitor.user if visitor is not None else None
    else:
        user = None
    if user is None:
        raise ApiError(401, {"detail": "authentication required"})
    return user


async def services_dependency(request: Request) -> Services:
    """The services, answered on the event loop: FastAPI runs a plain ``def`` dependency in its thread pool, a
    hop (a queue, a worker thread woken, the answer handed back) that cost more than this attribute read."""
    return services_of(request)


ServicesDep = Annotated[Services, Depends(services_dependency)]
CurrentUser = Annotated[User, Depends(current_user)]
SessionDep = Annotated[Session, Depends(read_session)]
PagingDep = Annotated[Paging, Depends()]


def require(user: User, *roles: Role) -> None:
    if user.role not in roles:
        raise forbidden()


def require_front_door(user: User) -> None:
    """The front door's work: its team, or a manager."""
    if not (user.role == Role.MANAGER or (user.role == Role.TEAM and user.team == FRONT_DOOR)):
        raise forbidden()


def found(page: Page[Any] | None) -> Page[Any]:
    """A page, or not found for a ``before`` id that is unknown or out of scope (answered alike)."""
    if page is None:
        raise not_found()
    return page


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
