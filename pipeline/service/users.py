"""Users, bearer tokens and web passwords.

Tokens are 256-bit random strings shown once; only their SHA-256 is stored (they are not guessable, so a
slow hash adds nothing). Web passwords are hashed with Argon2.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime
from typing import TYPE_CHECKING

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from pipeline.domain.model import Role

if TYPE_CHECKING:
    from pipeline.ports.accounts import AccountStore, TokenHolders
    from pipeline.ports.records import UserRecord as User

_hasher = PasswordHasher()


def use_password_hashing(time_cost: int, memory_kib: int) -> None:
    """The Argon2id cost of new password hashes (from the settings, at start-up). A stored hash carries its own
    parameters, so passwords hashed at another cost still verify."""
    global _hasher
    _hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib)


class UserError(ValueError):
    pass


class NotLoadedError(UserError):
    """The school or team named is not in the loaded reference data."""


EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                   r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+")


# The shortest web password ``set_password`` accepts (the CLI's reset, the admin pages), one figure for both.
MIN_PASSWORD = 12


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(port: AccountStore, user: User, kind: str = "api") -> str:
    assert user.id is not None
    token = secrets.token_urlsafe(32)
    port.add_token(token_hash(token), user.id, kind)
    return token


def add_user(port: AccountStore, role: str, email: str, school_urn: str | None = None, team: str | None = None,
             password: str | None = None) -> tuple[User, str]:
    """Create a user and return it with a new API token."""
    try:
        Role(role)
    except ValueError as error:
        raise UserError(f"unknown role; use one of {', '.join(r.value for r in Role)}") from error
    if not EMAIL.fullmatch(email or ""):
        raise UserError("the email address is not valid: write it like name@example.org")
    if role == Role.DSL and not school_urn:
        raise UserError("a dsl user needs --school URN")
    team = team.strip() if team else None  # a team is named as in the teams file: any non-blank text
    if role == Role.TEAM and not team:
        raise UserError("a team user needs --team NAME")
    if school_urn and port.school(school_urn) is None:
        raise NotLoadedError("no school with that URN is loaded: load the schools file first")
    if team and not port.team_loaded(team):
        raise NotLoadedError("no team with that code is loaded: load the teams (or involvements) file first")
    if port.user_by_email(email) is not None:
        raise UserError("a user with that email already exists")
    user = port.add_user(email, role, school_urn, team, _hasher.hash(password) if password else None)
    return user, issue_token(port, user)


def user_for_token(tokens: TokenHolders, token: str) -> User | None:
    """The user holding an API token, or None when the token is unknown or its user is disabled (read afresh
    for every request: a disabled user's token is refused on the next one)."""
    return tokens.user(token_hash(token))


def check_password(port: AccountStore, email: str, password: str) -> User | None:
    user = port.user_by_email(email)
    if user is None or not user.password_hash or user.disabled_at is not None:
        _hasher.hash(password)  # same work either way, so timing does not reveal which emails exist
        return None
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    return user


def user_with_email(port: AccountStore, email: str) -> User:
    user = port.user_by_email(email)
    if user is None or user.id is None:
        raise UserError("no user with that email")
    return user


def disable(port: AccountStore, user: User, now: datetime) -> None:
    """The user can no longer sign in or use an API token; their web sessions end now. The row stays, so
    the audit still names them."""
    assert user.id is not None
    port.disable_user(user.id, now)
    port.end_web_sessions_of(user.id, now)


def disable_user(port: AccountStore, email: str, now: datetime) -> User:
    """``disable`` the user with this email address."""
    user = user_with_email(port, email)
    disable(port, user, now)
    return user


def set_password(port: AccountStore, user: User, password: str, now: datetime) -> None:
    """A new web password (Argon2); every web session the user had ends."""
    if len(password) < MIN_PASSWORD:
        raise UserError(f"the password must be at least {MIN_PASSWORD} characters")
    assert user.id is not None
    port.set_password_hash(user.id, _hasher.hash(password))
    port.end_web_sessions_of(user.id, now)


def reset_password(port: AccountStore, email: str, password: str, now: datetime) -> User:
    """``set_password`` of the user with this email address."""
    if len(password) < MIN_PASSWORD:  # refused before the look-up, as ever: the CLI's exit code tells the two apart
        raise UserError(f"the password must be at least {MIN_PASSWORD} characters")
    user = user_with_email(port, email)
    set_password(port, user, password, now)
    return user
