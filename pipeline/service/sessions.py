"""Web sign-in: server-side sessions that expire, and login throttling.

A browser holds only a random session token (HttpOnly cookie); the server keeps the session row (its
SHA-256), the CSRF token for its forms, when it started and when it was last used. A session ends when it
has been idle for ``web.session_idle``, is older than ``web.session_absolute`` (both in config), or at
logout. After ``web.login_max_failures`` failed logins within ``web.login_window`` for one email (or five
times that many from one client address), logins for it are refused until the window has passed.
All times come from the caller's clock, so tests can move them.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pipeline.domain.calendar import Duration, parse_timescale

if TYPE_CHECKING:
    from pipeline.ports.accounts import AccountStore
    from pipeline.ports.records import UserRecord as User

ADDRESS_FAILURE_FACTOR = 5  # one school or office network shares an address: allow more from it


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _duration(rules: dict[str, Any], key: str, default: str) -> timedelta:
    try:
        value = parse_timescale(rules.get("web", {}).get(key, default))
    except ValueError as error:
        raise ValueError(f"web.{key}: {error}") from None
    if not isinstance(value, Duration):
        raise ValueError(f"web.{key} must be an ISO-8601 duration such as PT30M")
    return value.delta


@dataclass(frozen=True)
class SessionPolicy:
    idle: timedelta
    absolute: timedelta
    max_failures: int
    window: timedelta

    @classmethod
    def from_rules(cls, rules: dict[str, Any]) -> SessionPolicy:
        web = rules.get("web", {})
        return cls(idle=_duration(rules, "session_idle", "PT30M"),
                   absolute=_duration(rules, "session_absolute", "PT12H"),
                   max_failures=int(web.get("login_max_failures", 5)), window=_duration(rules, "login_window", "PT15M"))


@dataclass(frozen=True)
class SignedIn:
    """A live web session: who, and the CSRF token its forms must carry."""

    user: User
    csrf_token: str


def start(port: AccountStore, user: User, now: datetime) -> str:
    """A new session for ``user``; returns the token for the cookie (shown once, stored only hashed)."""
    assert user.id is not None
    token = secrets.token_urlsafe(32)
    port.add_web_session(_digest(token), user.id, secrets.token_urlsafe(32), now)
    return token


def resume(port: AccountStore, token: str, policy: SessionPolicy, now: datetime) -> SignedIn | None:
    """The session's user if it is still live (and marks it used); None when unknown, revoked or expired."""
    digest = _digest(token)
    found = port.web_session_with_user(digest)
    if found is None:
        return None
    row, user = found
    if row.revoked_at is not None or user.disabled_at is not None:
        return None
    if now - row.last_seen_at > policy.idle or now - row.created_at > policy.absolute:
        port.end_web_session(digest, now)
        return None
    if now - row.last_seen_at > timedelta(seconds=30):  # one write a half-minute is enough for the idle clock
        port.web_session_used(digest, now)
    return SignedIn(user, row.csrf_token)


def end(port: AccountStore, token: str, now: datetime) -> None:
    port.end_web_session(_digest(token), now)


def end_all_for(port: AccountStore, user_id: int, now: datetime) -> None:
    """Sign a user out everywhere (their password was reset, or they were disabled)."""
    port.end_web_sessions_of(user_id, now)


def _keys(email: str, address: str | None) -> list[tuple[str, int]]:
    return [("email:" + _digest(email.strip().lower()), 1), ("address:" + _digest(address or "unknown"),
                                                             ADDRESS_FAILURE_FACTOR)]


def login_throttled(port: AccountStore, email: str, address: str | None, policy: SessionPolicy,
                    now: datetime) -> bool:
    return any(port.failures_since(key, now - policy.window) >= policy.max_failures * factor
               for key, factor in _keys(email, address))


def record_login(port: AccountStore, email: str, address: str | None, succeeded: bool, now: datetime) -> None:
    for key, _ in _keys(email, address):
        port.record_login_attempt(key, now, succeeded)
