"""The accounts part of the storage port's contract (pipeline/ports/accounts.py): users, API tokens, web sessions,
login attempts and a notification in a user's scope give the same answers on the in-memory fake, SQLite and
PostgreSQL, and are undone with the unit of work that made them."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from sqlalchemy.exc import IntegrityError

from pipeline.adapters.store_records import UniquenessViolation
from pipeline.domain.model import Contact, NotificationStatus, PlannedNotification
from pipeline.ports import StorePort
from tests.support.store_ports import Backend

NOW = datetime.fromisoformat("2026-11-24T20:00:00+00:00")


def _add(port: StorePort, email: str, role: str = "dsl", school_urn: str | None = "100001",
         team: str | None = None) -> int:
    user = port.add_user(email, role, school_urn, team, "hash-of-a-password")
    assert user.id is not None
    return user.id


def test_a_user_is_found_by_email_in_any_case_and_by_id(store_backend: Backend) -> None:
    with store_backend.units.unit_of_work() as port:
        user_id = _add(port, "Dsl@Riverside.sch.example")
    with store_backend.units.unit_of_work() as port:
        found = port.user_by_email("  dsl@RIVERSIDE.sch.example ")
        assert found is not None and found.id == user_id
        assert (found.email, found.role, found.school_urn, found.team, found.password_hash, found.disabled_at) == (
            "Dsl@Riverside.sch.example", "dsl", "100001", None, "hash-of-a-password", None)
        by_id = port.user_by_id(user_id)
        assert by_id is not None and by_id.email == "Dsl@Riverside.sch.example"
        assert port.user_by_email("nobody@riverside.sch.example") is None
        assert port.user_by_id(user_id + 1000) is None


def test_user_ids_are_distinct(store_backend: Backend) -> None:
    with store_backend.units.unit_of_work() as port:
        first, second = _add(port, "a@riverside.sch.example"), _add(port, "b@riverside.sch.example")
    assert first != second


def test_an_email_is_one_user_only(store_backend: Backend) -> None:
    with store_backend.units.unit_of_work() as port:
        _add(port, "dsl@riverside.sch.example")
    with pytest.raises((IntegrityError, UniquenessViolation)), store_backend.units.unit_of_work() as port:
        _add(port, "dsl@riverside.sch.example")


def test_a_user_added_in_a_unit_of_work_that_fails_is_not_kept(store_backend: Backend) -> None:
    with pytest.raises(RuntimeError), store_backend.units.unit_of_work() as port:
        _add(port, "dsl@riverside.sch.example")
        raise RuntimeError("the caller failed")
    with store_backend.units.unit_of_work() as port:
        assert port.user_by_email("dsl@riverside.sch.example") is None


def test_changes_to_users_and_sessions_in_a_unit_of_work_that_fails_are_undone(store_backend: Backend) -> None:
    with store_backend.units.unit_of_work() as port:
        user_id = _add(port, "dsl@riverside.sch.example")
        port.add_web_session("session-hash", user_id, "csrf-token", NOW)
    with pytest.raises(RuntimeError), store_backend.units.unit_of_work() as port:
        port.disable_user(user_id, NOW)
        port.set_password_hash(user_id, "another-hash")
        port.end_web_sessions_of(user_id, NOW)
        port.add_web_session("another-session", user_id, "csrf", NOW)
        port.record_login_attempt("email:abc", NOW, False)
        raise RuntimeError("the caller failed")
    with store_backend.units.unit_of_work() as port:
        user = port.user_by_id(user_id)
        assert user is not None and (user.disabled_at, user.password_hash) == (None, "hash-of-a-password")
        found = port.web_session_with_user("session-hash")
        assert found is not None and found[0].revoked_at is None
        assert port.web_session_with_user("another-session") is None
        assert port.failures_since("email:abc", NOW - timedelta(hours=1)) == 0


def test_loaded_teams(store_backend: Backend) -> None:
    with store_backend.units.unit_of_work() as port:
        assert port.team_loaded("FRONT_DOOR")  # in the teams file
        assert port.team_loaded("CLA_TEAM")  # named by a current involvement only
        assert not port.team_loaded("NO_SUCH_TEAM")


def test_disabling_a_user_keeps_the_first_time_and_the_row(store_backend: Backend) -> None:
    with store_backend.units.unit_of_work() as port:
        user_id = _add(port, "dsl@riverside.sch.example")
    with store_backend.units.unit_of_work() as port:
        port.disable_user(user_id, NOW)
    with store_backend.units.unit_of_work() as port:
        port.disable_user(user_id, NOW + timedelta(days=1))
    with store_backend.units.unit_of_work() as port:
        user = port.user_by_id(user_id)
        assert user is not None and user.disabled_at == NOW


def test_a_new_password_hash_replaces_the_old(store_backend: Backend) -> None:
    with store_backend.units.unit_of_work() as port:
        user_id = _add(port, "dsl@riverside.sch.example")
        port.set_password_hash(user_id, "another-hash")
    with store_backend.units.unit_of_work() as port:
        user = port.user_by_email("dsl@riverside.sch.example")
        assert user is not None and user.password_hash == "another-hash"


def test_a_web_session_is_found_with_its_user_used_and_ended(store_backend: Backend) -> None:
    with store_backend.units.unit_of_work() as port:
        user_id = _add(port, "dsl@riverside.sch.example")
        port.add_web_session("session-hash", user_id, "csrf-token", NOW)
    with store_backend.units.unit_of_work() as port:
        found = port.web_session_with_user("session-hash")
        assert found is not None
        session, user = found
        assert (session.user_id, session.csrf_token, session.created_at, session.last_seen_at, session.revoked_at) \
            == (user_id, "csrf-token", NOW, NOW, None)
        assert user.id == user_id
        assert port.web_session_with_user("unknown-hash") is None
        port.web_session_used("session-hash", NOW + timedelta(minutes=5))
    with store_backend.units.unit_of_work() as port:
        found = port.web_session_with_user("session-hash")
        assert found is not None and found[0].last_seen_at == NOW + timedelta(minutes=5)
        port.end_web_session("session-hash", NOW + timedelta(minutes=6))
        port.end_web_session("unknown-hash", NOW)  # nothing to end: no error
    with store_backend.units.unit_of_work() as port:
        port.end_web_session("session-hash", NOW + timedelta(hours=1))  # ended already: the first end stays
    with store_backend.units.unit_of_work() as port:
        found = port.web_session_with_user("session-hash")
        assert found is not None and found[0].revoked_at == NOW + timedelta(minutes=6)


def test_ending_a_users_sessions_ends_only_theirs_that_are_still_live(store_backend: Backend) -> None:
    with store_backend.units.unit_of_work() as port:
        mine, theirs = _add(port, "a@riverside.sch.example"), _add(port, "b@riverside.sch.example")
        port.add_web_session("mine-1", mine, "c1", NOW)
        port.add_web_session("mine-2", mine, "c2", NOW)
        port.add_web_session("theirs", theirs, "c3", NOW)
        port.end_web_session("mine-2", NOW + timedelta(minutes=1))
    with store_backend.units.unit_of_work() as port:
        port.end_web_sessions_of(mine, NOW + timedelta(hours=1))
    with store_backend.units.unit_of_work() as port:
        revoked = {}
        for token_hash in ("mine-1", "mine-2", "theirs"):
            found = port.web_session_with_user(token_hash)
            assert found is not None
            revoked[token_hash] = found[0].revoked_at
        assert revoked == {"mine-1": NOW + timedelta(hours=1), "mine-2": NOW + timedelta(minutes=1), "theirs": None}


def test_failed_logins_are_counted_after_the_window_start_and_the_last_success(store_backend: Backend) -> None:
    with store_backend.units.unit_of_work() as port:
        for minutes, succeeded in ((0, False), (10, False), (20, True), (30, False), (40, False)):
            port.record_login_attempt("email:abc", NOW + timedelta(minutes=minutes), succeeded)
        port.record_login_attempt("address:def", NOW + timedelta(minutes=35), False)
    with store_backend.units.unit_of_work() as port:
        assert port.failures_since("email:abc", NOW - timedelta(hours=1)) == 2  # after the success at 20
        assert port.failures_since("email:abc", NOW + timedelta(minutes=35)) == 1  # the window starts later
        assert port.failures_since("address:def", NOW) == 1
        assert port.failures_since("email:unknown", NOW) == 0


def test_a_notification_is_visible_only_in_its_users_scope(store_backend: Backend) -> None:
    dsl_alert = PlannedNotification(key="dsl", recipient_role="dsl", recipient_ref="100001",
                                    contact=Contact("dsl@riverside.sch.example", None), reason="attended ED",
                                    urgency="URGENT", content={}, school_urn="100001")
    worker_alert = replace(dsl_alert, key="worker", recipient_role="worker",
                           recipient_ref="sam.worker@northshire.gov.example", school_urn=None)
    team_alert = replace(dsl_alert, key="team", recipient_role="FRONT_DOOR", recipient_ref="FRONT_DOOR",
                         school_urn=None)
    others = [
        replace(dsl_alert, key="deputy", recipient_role="deputy_dsl"),
        replace(dsl_alert, key="other_school", recipient_ref="100002", school_urn="100002"),
        replace(worker_alert, key="team_manager", recipient_role="team_manager"),
        replace(worker_alert, key="iro", recipient_role="iro"),
        replace(worker_alert, key="another_worker", recipient_ref="erin.helper@northshire.gov.example"),
        replace(team_alert, key="team_named_elsewhere", recipient_ref="SCIES"),
        replace(team_alert, key="another_team", recipient_role="SCIES", recipient_ref="SCIES"),
    ]
    with store_backend.units.unit_of_work() as port:
        stored = {}
        for item, status in ((dsl_alert, NotificationStatus.PENDING), (worker_alert, NotificationStatus.PENDING),
                             (team_alert, NotificationStatus.PENDING),
                             (replace(dsl_alert, key="withheld"), NotificationStatus.WITHHELD),
                             (replace(worker_alert, key="withheld_worker"), NotificationStatus.WITHHELD),
                             *((other, NotificationStatus.DELIVERED) for other in others)):
            row = port.add_notification("e-1", "self_harm", item, status, NOW)
            assert row is not None
            stored[item.key] = row.id
        users = {
            "dsl": port.user_by_id(_add(port, "dsl@riverside.sch.example")),
            "other_dsl": port.user_by_id(_add(port, "dsl@other.sch.example", school_urn="100002")),
            "worker": port.user_by_id(_add(port, "sam.worker@northshire.gov.example", "worker", None)),
            "team": port.user_by_id(_add(port, "fd@northshire.gov.example", "team", None, "FRONT_DOOR")),
            "manager": port.user_by_id(_add(port, "manager@northshire.gov.example", "manager", None)),
            "producer": port.user_by_id(_add(port, "hospital@nhs.example", "producer", None)),
        }
    with store_backend.units.unit_of_work() as port:
        seen = {}
        for who, user in users.items():
            assert user is not None
            seen[who] = {key for key, notification_id in stored.items()
                         if (found := port.visible_notification(user, notification_id)) is not None
                         and found.id == notification_id}
            assert port.visible_notification(user, "no-such-notification") is None
    assert seen == {"dsl": {"dsl", "deputy"}, "other_dsl": {"other_school"},
                    "worker": {"worker", "team_manager", "iro"}, "team": {"team"}, "manager": set(stored),
                    "producer": set()}
