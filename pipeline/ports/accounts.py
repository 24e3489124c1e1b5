"""The accounts part of the store port: users, their API tokens, web sessions and login attempts, and the one
notification a user asks for by id (pipeline/service/users.py, sessions.py and access.py ask; the SQL adapter,
pipeline/adapters/accounts.py, and the fake, pipeline/adapters/memory_store_accounts.py, answer).

The rules stay in the services: who may be added, when a session has expired, when logins are throttled, what a
password must be. The port only reads and writes the records.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from pipeline.domain.model import School
from pipeline.ports.records import NotificationRecord, UserRecord, WebSessionRecord


class AccountStore(Protocol):
    """Users and how they sign in; whether a school is loaded is ``ReferenceReads.school``."""

    def school(self, urn: str) -> School | None:
        """A current school by URN (``ReferenceReads.school``: a user's school must be one)."""
        ...

    def user_by_email(self, email: str) -> UserRecord | None:
        """The user with this email address, in any letter case (the address is trimmed first)."""
        ...

    def user_by_id(self, user_id: int) -> UserRecord | None:
        ...

    def team_loaded(self, code: str) -> bool:
        """A current team in the teams file, or a team named by a current involvement."""
        ...

    def add_user(self, email: str, role: str, school_urn: str | None, team: str | None,
                 password_hash: str | None) -> UserRecord:
        """A new user, with its id, created now."""
        ...

    def add_token(self, token_hash: str, user_id: int, kind: str) -> None:
        """An API token (only its hash) for the user."""
        ...

    def disable_user(self, user_id: int, now: datetime) -> None:
        """The user's ``disabled_at`` is now, unless it was disabled before."""
        ...

    def set_password_hash(self, user_id: int, password_hash: str) -> None:
        ...

    def add_web_session(self, token_hash: str, user_id: int, csrf_token: str, now: datetime) -> None:
        """A new web session (its token only hashed), started and last used now."""
        ...

    def web_session_with_user(self, token_hash: str) -> tuple[WebSessionRecord, UserRecord] | None:
        """The web session with this token hash, and its user; None when either is unknown."""
        ...

    def web_session_used(self, token_hash: str, now: datetime) -> None:
        """The session was last used now (its idle clock starts again)."""
        ...

    def end_web_session(self, token_hash: str, now: datetime) -> None:
        """The session is revoked now, unless it ended before (an unknown token changes nothing)."""
        ...

    def end_web_sessions_of(self, user_id: int, now: datetime) -> None:
        """Every web session of the user that has not ended is revoked now."""
        ...

    def failures_since(self, key: str, since: datetime) -> int:
        """Failed login attempts for ``key`` after ``since`` and after the key's last successful one."""
        ...

    def record_login_attempt(self, key: str, at: datetime, succeeded: bool) -> None:
        ...

    def visible_notification(self, user: UserRecord, notification_id: str) -> NotificationRecord | None:
        """The notification if this user may see it (the contract's scopes: a DSL their school's, a worker those
        addressed to them, a team its own, a manager all; a withheld one only a manager); None when it does not
        exist or is out of scope alike."""
        ...


class TokenHolders(Protocol):
    """Who holds an API token, asked on every API request outside any unit of work (``accounts.TokenLookup``: one
    query on a kept connection)."""

    def user(self, token_hash: str) -> UserRecord | None:
        """The user an API token (by its hash) was issued to, if that user is not disabled; None for an unknown
        token, a token of another kind than ``api``, or a disabled user."""
        ...
