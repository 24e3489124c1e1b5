"""The in-memory fake's answers to the accounts part of the store port (pipeline/ports/accounts.py): a mixin of
``pipeline.adapters.memory_store.MemoryStore``, over its state.

Users, API tokens, web sessions and login attempts live in the fake's state beside its other records, so a unit of
work or savepoint that raises undoes them with everything else. The schema's guarantees are kept: one user per
email address (the SQL adapter's unique index), one row per token or session hash.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pipeline.adapters.store_records import Notification, UniquenessViolation
from pipeline.domain.model import CASELOAD_ROLES, SCHOOL_ROLES, Role
from pipeline.ports.records import UserRecord

if TYPE_CHECKING:
    from pipeline.adapters.memory_store import _State


@dataclass(eq=False)
class MemoryUser:
    id: int
    email: str
    role: str
    school_urn: str | None
    team: str | None
    password_hash: str | None
    created_at: datetime
    disabled_at: datetime | None = None


@dataclass(eq=False)
class MemoryApiToken:
    token_hash: str
    user_id: int
    kind: str
    created_at: datetime


@dataclass(eq=False)
class MemoryWebSession:
    token_hash: str
    user_id: int
    csrf_token: str
    created_at: datetime
    last_seen_at: datetime
    revoked_at: datetime | None = None


@dataclass(eq=False)
class MemoryLoginAttempt:
    key: str
    at: datetime
    succeeded: bool


def in_scope(user: UserRecord, notification: Notification) -> bool:
    """The contract's scopes (``pipeline.adapters.notifications.notification_scope`` as a WHERE clause)."""
    if user.role == Role.MANAGER:
        return True
    if notification.status == "withheld":
        return False
    if user.role == Role.DSL:
        return notification.recipient_role in SCHOOL_ROLES and notification.school_urn == user.school_urn
    if user.role == Role.WORKER:
        return notification.recipient_role in CASELOAD_ROLES and \
            notification.recipient_ref == user.email
    if user.role == Role.TEAM:
        return notification.recipient_role == user.team and notification.recipient_ref == user.team
    return False


class MemoryAccounts:
    """Users, tokens, web sessions, login attempts and the scoped notification look-up over the fake's state."""

    if TYPE_CHECKING:
        _state: _State

        def _current(self, kind: str) -> list[Any]: ...

    def user_by_email(self, email: str) -> MemoryUser | None:
        wanted = email.strip().lower()
        return next((user for user in self._state.users.values() if user.email.lower() == wanted), None)

    def user_by_id(self, user_id: int) -> MemoryUser | None:
        return self._state.users.get(user_id)

    def team_loaded(self, code: str) -> bool:
        contact = self._state.teams.get(code)
        if contact is not None and contact.ended_at is None:
            return True
        return any(row.team == code for row in self._current("involvements"))

    def add_user(self, email: str, role: str, school_urn: str | None, team: str | None,
                 password_hash: str | None) -> MemoryUser:
        if any(user.email == email for user in self._state.users.values()):
            raise UniquenessViolation(f"user email {email!r}")
        user = MemoryUser(max(self._state.users, default=0) + 1, email, role, school_urn, team, password_hash,
                          datetime.now(UTC))
        self._state.users[user.id] = user
        return user

    def add_token(self, token_hash: str, user_id: int, kind: str) -> None:
        self._state.api_tokens[token_hash] = MemoryApiToken(token_hash, user_id, kind, datetime.now(UTC))

    def disable_user(self, user_id: int, now: datetime) -> None:
        user = self._state.users.get(user_id)
        if user is not None and user.disabled_at is None:
            user.disabled_at = now

    def set_password_hash(self, user_id: int, password_hash: str) -> None:
        user = self._state.users.get(user_id)
        if user is not None:
            user.password_hash = password_hash

    def add_web_session(self, token_hash: str, user_id: int, csrf_token: str, now: datetime) -> None:
        self._state.web_sessions[token_hash] = MemoryWebSession(token_hash, user_id, csrf_token, now, now)

    def web_session_with_user(self, token_hash: str) -> tuple[MemoryWebSession, MemoryUser] | None:
        row = self._state.web_sessions.get(token_hash)
        user = self._state.users.get(row.user_id) if row is not None else None
        return (row, user) if row is not None and user is not None else None

    def web_session_used(self, token_hash: str, now: datetime) -> None:
        row = self._state.web_sessions.get(token_hash)
        if row is not None:
            row.last_seen_at = now

    def end_web_session(self, token_hash: str, now: datetime) -> None:
        row = self._state.web_sessions.get(token_hash)
        if row is not None and row.revoked_at is None:
            row.revoked_at = now

    def end_web_sessions_of(self, user_id: int, now: datetime) -> None:
        for row in self._state.web_sessions.values():
            if row.user_id == user_id and row.revoked_at is None:
                row.revoked_at = now

    def failures_since(self, key: str, since: datetime) -> int:
        attempts = [attempt for attempt in self._state.login_attempts.values() if attempt.key == key]
        successes = [attempt.at for attempt in attempts if attempt.succeeded]
        start = max(since, max(successes)) if successes else since
        return sum(1 for attempt in attempts if not attempt.succeeded and attempt.at > start)

    def record_login_attempt(self, key: str, at: datetime, succeeded: bool) -> None:
        self._state.login_attempts[len(self._state.login_attempts) + 1] = MemoryLoginAttempt(key, at, succeeded)

    def visible_notification(self, user: UserRecord, notification_id: str) -> Notification | None:
        notification = self._state.notifications.get(notification_id)
        return notification if notification is not None and in_scope(user, notification) else None
