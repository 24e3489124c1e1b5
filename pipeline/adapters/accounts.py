"""Queries for people signing in: users, API tokens, server-side web sessions and login attempts.

``AccountQueries`` is the accounts part of the store port (pipeline/ports/accounts.py) in SQL. The web session and
login policy (how long a session lives, when logins are throttled) is in ``pipeline.service.sessions``; this module
only reads and writes the rows. ``TokenLookup`` authenticates each API request at the cost of one query.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, bindparam, func, update
from sqlalchemy import select as core_select
from sqlmodel import Session, col, select

from pipeline.adapters import notifications
from pipeline.adapters import tables as t
from pipeline.adapters.driver_statements import DriverStatement
from pipeline.ports.records import UserRecord


def user_by_email(session: Session, email: str) -> t.User | None:
    return session.exec(select(t.User).where(func.lower(t.User.email) == email.strip().lower())).first()


def all_users(session: Session) -> Sequence[t.User]:
    return session.exec(select(t.User).order_by(col(t.User.role), col(t.User.email))).all()


def user_by_id(session: Session, user_id: int) -> t.User | None:
    return session.get(t.User, user_id)


class AccountQueries:
    """The accounts part of the store port (pipeline/ports/accounts.py) in SQL: a mixin of ``Repository``, in
    its session."""

    if TYPE_CHECKING:
        @property
        def session(self) -> Session: ...

    def user_by_email(self, email: str) -> t.User | None:
        return user_by_email(self.session, email)

    def user_by_id(self, user_id: int) -> t.User | None:
        return user_by_id(self.session, user_id)

    def team_loaded(self, code: str) -> bool:
        contact = self.session.get(t.TeamContact, code)
        if contact is not None and contact.ended_at is None:
            return True
        return self.session.exec(select(t.Involvement.row_key).where(
            t.Involvement.team == code, col(t.Involvement.ended_at).is_(None)).limit(1)).first() is not None

    def add_user(self, email: str, role: str, school_urn: str | None, team: str | None,
                 password_hash: str | None) -> t.User:
        user = t.User(email=email, role=role, school_urn=school_urn, team=team, password_hash=password_hash)
        self.session.add(user)
        self.session.flush()  # for its id
        return user

    def add_token(self, token_hash: str, user_id: int, kind: str) -> None:
        self.session.add(t.ApiToken(token_hash=token_hash, user_id=user_id, kind=kind))

    def disable_user(self, user_id: int, now: datetime) -> None:
        user = self.session.get(t.User, user_id)
        if user is not None and user.disabled_at is None:
            user.disabled_at = now
            self.session.add(user)

    def set_password_hash(self, user_id: int, password_hash: str) -> None:
        user = self.session.get(t.User, user_id)
        if user is not None:
            user.password_hash = password_hash
            self.session.add(user)

    def add_web_session(self, token_hash: str, user_id: int, csrf_token: str, now: datetime) -> None:
        self.session.add(t.WebSession(token_hash=token_hash, user_id=user_id, csrf_token=csrf_token, created_at=now,
                                      last_seen_at=now))

    def web_session_with_user(self, token_hash: str) -> tuple[t.WebSession, t.User] | None:
        row = self.session.get(t.WebSession, token_hash)
        if row is None:
            return None
        user = self.session.get(t.User, row.user_id)
        return (row, user) if user is not None else None

    def web_session_used(self, token_hash: str, now: datetime) -> None:
        row = self.session.get(t.WebSession, token_hash)
        if row is not None:
            row.last_seen_at = now
            self.session.add(row)

    def end_web_session(self, token_hash: str, now: datetime) -> None:
        row = self.session.get(t.WebSession, token_hash)
        if row is not None and row.revoked_at is None:
            row.revoked_at = now
            self.session.add(row)

    def end_web_sessions_of(self, user_id: int, now: datetime) -> None:
        self.session.execute(update(t.WebSession).where(col(t.WebSession.user_id) == user_id,
                                                        col(t.WebSession.revoked_at).is_(None))
                             .values(revoked_at=now))

    def failures_since(self, key: str, since: datetime) -> int:
        last_success = self.session.exec(select(func.max(t.LoginAttempt.at)).where(
            t.LoginAttempt.key == key, col(t.LoginAttempt.succeeded).is_(True))).first()
        start = max(since, last_success) if last_success is not None else since
        return int(self.session.exec(select(func.count()).select_from(t.LoginAttempt).where(
            t.LoginAttempt.key == key, col(t.LoginAttempt.succeeded).is_(False),
            col(t.LoginAttempt.at) > start)).one())

    def record_login_attempt(self, key: str, at: datetime, succeeded: bool) -> None:
        self.session.add(t.LoginAttempt(key=key, at=at, succeeded=succeeded))

    def visible_notification(self, user: UserRecord, notification_id: str) -> t.Notification | None:
        return notifications.visible_notification(self.session, user, notification_id)


USERS = t.User.__table__  # type: ignore[attr-defined]
API_TOKENS = t.ApiToken.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class UserRow:
    """A user as read to authenticate one request: a plain record (``UserRecord``), never written back."""

    id: int | None
    email: str
    role: str
    school_urn: str | None
    team: str | None
    password_hash: str | None
    created_at: datetime
    disabled_at: datetime | None


# Only a token issued for the API (kind "api") authenticates it. Web logins once issued tokens of kind "web" as
# their cookie; they live in web sessions (with idle and absolute expiry) now, and an old "web" row still stored
# must not work as a bearer token that never expires.
_USER_HOLDING_TOKEN = (core_select(USERS.c.id, USERS.c.email, USERS.c.role, USERS.c.school_urn, USERS.c.team,
                                  USERS.c.password_hash, USERS.c.created_at, USERS.c.disabled_at)
                      .select_from(API_TOKENS.join(USERS, API_TOKENS.c.user_id == USERS.c.id))
                      .where(API_TOKENS.c.token_hash == bindparam("token_hash"), API_TOKENS.c.kind == "api",
                             USERS.c.disabled_at.is_(None)))


_USER_HOLDING_TOKEN_DRIVER = DriverStatement(_USER_HOLDING_TOKEN)


def enabled_user_holding_token(engine: Engine, token_hash: str) -> UserRow | None:
    """The user an API token (by its hash) was issued to, if that user is not disabled; None for an unknown
    token, a token of another kind or a disabled user. One Core query (api_token joined to user, built once) on a
    connection of its own, read afresh for every request: nothing is cached, so disabling a user refuses their
    token at once."""
    with engine.connect() as connection:
        row = connection.execute(_USER_HOLDING_TOKEN, {"token_hash": token_hash}).first()
    return UserRow(*row) if row is not None else None


class _KeptConnection:
    """One thread's DBAPI connection for the lookup, and the lock a query on it holds (so closing it waits)."""

    __slots__ = ("connection", "lock", "closed")

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.lock = threading.Lock()
        self.closed = False


class TokenLookup:
    """``enabled_user_holding_token`` for every request, at the cost of the query alone.

    On an SQLite file each thread that asks (the event loop, in practice) gets a DBAPI connection of its own,
    taken from the engine's pool once and detached from it (so it had every connection's set-up, the engine's
    connect listeners: busy timeout, foreign keys and the rest, and holds no pool slot) and kept: the same query,
    compiled once for the dialect, runs on it in autocommit mode, so there is no pool check-out, no BEGIN and no
    rollback around it. Each query is its own read transaction and sees every commit made before it, by this
    process or another (the CLI disabling a user): still nothing cached. Elsewhere (PostgreSQL, an in-memory
    SQLite) it is ``enabled_user_holding_token`` on the engine's pool.

    ``close`` (the store's disposal, at shutdown) waits for a query in flight on a connection before closing it,
    and a thread that asks after that opens another: a request under way as the process stops is answered."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        database = engine.url.database
        self._own_connections = engine.dialect.name == "sqlite" and bool(database) and database != ":memory:"
        self._query = _USER_HOLDING_TOKEN_DRIVER.compiled(engine.dialect)
        self._local = threading.local()
        self._opened: list[_KeptConnection] = []
        self._lock = threading.Lock()

    def user(self, token_hash: str) -> UserRow | None:
        if not self._own_connections:
            return enabled_user_holding_token(self._engine, token_hash)
        query = self._query
        while True:
            kept = self._kept()
            with kept.lock:
                if kept.closed:  # closed since this thread took it: take another
                    self._local.kept = None
                    continue
                # Read to the end: no read left open.
                raw = kept.connection.execute(query.sql, query.bind({"token_hash": token_hash})).fetchall()
            rows = query.rows(raw)
            return UserRow(*rows[0]) if rows else None

    def _kept(self) -> _KeptConnection:
        kept: _KeptConnection | None = getattr(self._local, "kept", None)
        if kept is None:
            pooled = self._engine.raw_connection()  # the engine's connect (and check-out) set-up applied
            connection = pooled.driver_connection
            assert connection is not None
            pooled.detach()  # no longer the pool's: its slot is free, and closing it closes it
            connection.isolation_level = None  # autocommit: each query reads the newest commit
            connection.execute("PRAGMA query_only=ON")
            # Used by this thread only (and closed by whichever thread disposes of the store).
            kept = _KeptConnection(connection)
            with self._lock:
                self._opened.append(kept)
            self._local.kept = kept
        return kept

    def close(self) -> None:
        """Close every connection opened so far, each once a query in flight on it has finished (a thread that
        asks again opens a new one)."""
        with self._lock:
            opened, self._opened = self._opened, []
        for kept in opened:
            with kept.lock:
                kept.closed = True
                kept.connection.close()

