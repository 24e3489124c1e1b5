"""Users, bearer tokens and web passwords.

Tokens are 256-bit random strings shown once; only their SHA-256 is stored (they are not guessable, so a
slow hash adds nothing). Web passwords are hashed with Argon2.
"""

from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session, select

from pipeline.adapters import tables as t
from pipeline.domain.model import Role

_hasher = PasswordHasher()


class UserError(ValueError):
    pass


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(session: Session, user: t.User, kind: str = "api") -> str:
    assert user.id is not None
    token = secrets.token_urlsafe(32)
    session.add(t.ApiToken(token_hash=token_hash(token), user_id=user.id, kind=kind))
    return token


def add_user(session: Session, role: str, email: str, school_urn: str | None = None, team: str | None = None,
             password: str | None = None) -> tuple[t.User, str]:
    """Create a user and return it with a new API token."""
    try:
        Role(role)
    except ValueError as error:
        raise UserError(f"unknown role; use one of {', '.join(r.value for r in Role)}") from error
    if role == Role.DSL and not school_urn:
        raise UserError("a dsl user needs --school URN")
    team = team.strip() if team else None  # a team is named as in the teams file: any non-blank text
    if role == Role.TEAM and not team:
        raise UserError("a team user needs --team NAME")
    if session.exec(select(t.User).where(t.User.email == email)).first() is not None:
        raise UserError("a user with that email already exists")
    user = t.User(email=email, role=role, school_urn=school_urn, team=team,
                  password_hash=_hasher.hash(password) if password else None)
    session.add(user)
    session.flush()
    return user, issue_token(session, user)


def user_for_token(session: Session, token: str) -> t.User | None:
    row = session.get(t.ApiToken, token_hash(token))
    return session.get(t.User, row.user_id) if row is not None else None


def check_password(session: Session, email: str, password: str) -> t.User | None:
    user = session.exec(select(t.User).where(t.User.email == email)).first()
    if user is None or not user.password_hash:
        _hasher.hash(password)  # same work either way, so timing does not reveal which emails exist
        return None
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    return user
