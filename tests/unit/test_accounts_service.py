"""The accounts services (pipeline/service/users.py, sessions.py, access.py) against the store port's fake: who may
be added, password checks, web sessions that expire, sign-in throttling and ending a user's sessions. The SQL
adapter gives the fake's answers (tests/integration/test_store_contract_accounts.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from argon2 import PasswordHasher

from pipeline.adapters.memory_store import MemoryStore
from pipeline.service import sessions, users
from pipeline.service.sessions import SessionPolicy

NOW = datetime.fromisoformat("2026-11-24T09:00:00+00:00")
POLICY = SessionPolicy(idle=timedelta(minutes=30), absolute=timedelta(hours=12), max_failures=3,
                       window=timedelta(minutes=15))
PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def cheap_hashes() -> Iterator[None]:
    users.use_password_hashing(1, 64)
    yield
    users._hasher = PasswordHasher()


def test_a_user_is_added_with_a_token_and_their_password_checks(store: MemoryStore) -> None:
    with store.unit_of_work() as port:
        user, token = users.add_user(port, "dsl", "dsl@riverside.sch.example", "100001", password=PASSWORD)
        assert store._state.api_tokens[users.token_hash(token)].user_id == user.id
    with store.unit_of_work() as port:
        assert users.check_password(port, "DSL@riverside.sch.example", PASSWORD) is not None
        assert users.check_password(port, "dsl@riverside.sch.example", "wrong password") is None
        assert users.check_password(port, "nobody@riverside.sch.example", PASSWORD) is None


@pytest.mark.parametrize(("role", "email", "school", "team", "refused"), [
    ("dsl", "dsl@riverside.sch.example", "999999", None, "no school with that URN is loaded"),
    ("team", "fd@northshire.gov.example", None, "NO_SUCH_TEAM", "no team with that code is loaded"),
    ("dsl", "dsl@riverside.sch.example", None, None, "a dsl user needs --school URN"),
    ("chief", "c@northshire.gov.example", None, None, "unknown role"),
    ("manager", "not an email", None, None, "the email address is not valid"),
])
def test_a_user_who_cannot_be_added_is_refused_before_anything_is_stored(
        store: MemoryStore, role: str, email: str, school: str | None, team: str | None, refused: str) -> None:
    # The refusal caught inside the unit of work, so it commits whatever was written before it.
    with store.unit_of_work() as port, pytest.raises(users.UserError, match=refused):
        users.add_user(port, role, email, school, team)
    assert store._state.users == {} and store._state.api_tokens == {}


def test_an_email_already_used_is_refused_in_any_case(store: MemoryStore) -> None:
    with store.unit_of_work() as port:
        users.add_user(port, "manager", "manager@northshire.gov.example")
    with pytest.raises(users.UserError, match="already exists"), store.unit_of_work() as port:
        users.add_user(port, "manager", "Manager@Northshire.gov.example")


def test_a_session_lives_while_used_and_ends_when_idle_or_too_old(store: MemoryStore) -> None:
    with store.unit_of_work() as port:
        user, _ = users.add_user(port, "manager", "manager@northshire.gov.example", password=PASSWORD)
        token = sessions.start(port, user, NOW)
    with store.unit_of_work() as port:
        visitor = sessions.resume(port, token, POLICY, NOW + timedelta(minutes=29))
        assert visitor is not None and visitor.user.id == user.id and visitor.csrf_token
        # Used every 20 minutes, it lives until its absolute limit.
        for minutes in range(40, 12 * 60 + 1, 20):
            assert sessions.resume(port, token, POLICY, NOW + timedelta(minutes=minutes)) is not None
        assert sessions.resume(port, token, POLICY, NOW + timedelta(hours=12, minutes=1)) is None
        # Ended for good: not live again.
        assert sessions.resume(port, token, POLICY, NOW + timedelta(hours=12, minutes=2)) is None
        assert sessions.resume(port, "a token never issued", POLICY, NOW) is None
        idle_token = sessions.start(port, user, NOW)
        assert sessions.resume(port, idle_token, POLICY, NOW + timedelta(minutes=31)) is None


def test_signing_out_or_disabling_the_user_ends_sessions(store: MemoryStore) -> None:
    with store.unit_of_work() as port:
        user, _ = users.add_user(port, "manager", "manager@northshire.gov.example", password=PASSWORD)
        signed_out, other, kept = (sessions.start(port, user, NOW) for _ in range(3))
        sessions.end(port, signed_out, NOW)
        assert sessions.resume(port, signed_out, POLICY, NOW) is None
        assert sessions.resume(port, other, POLICY, NOW) is not None
        users.reset_password(port, "manager@northshire.gov.example", "a new long password", NOW)
        assert sessions.resume(port, other, POLICY, NOW) is None
        assert users.check_password(port, "manager@northshire.gov.example", "a new long password") is not None
        kept = sessions.start(port, user, NOW)
        users.disable_user(port, "manager@northshire.gov.example", NOW)
        assert sessions.resume(port, kept, POLICY, NOW) is None
        assert users.check_password(port, "manager@northshire.gov.example", "a new long password") is None


def test_sign_in_is_throttled_after_repeated_failures_until_the_window_passes(store: MemoryStore) -> None:
    with store.unit_of_work() as port:
        for minute in range(POLICY.max_failures):
            assert not sessions.login_throttled(port, "dsl@riverside.sch.example", "10.0.0.1", POLICY,
                                                NOW + timedelta(minutes=minute))
            sessions.record_login(port, "dsl@riverside.sch.example", "10.0.0.1", False,
                                  NOW + timedelta(minutes=minute))
        assert sessions.login_throttled(port, " DSL@riverside.sch.example", "10.0.0.2", POLICY,
                                        NOW + timedelta(minutes=5))
        assert not sessions.login_throttled(port, "other@riverside.sch.example", "10.0.0.1", POLICY,
                                            NOW + timedelta(minutes=5))  # the address allows more
        assert not sessions.login_throttled(port, "dsl@riverside.sch.example", "10.0.0.1", POLICY,
                                            NOW + timedelta(minutes=17))
