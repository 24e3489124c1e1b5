"""The missing pathway's and casework's part of the storage port (pipeline/ports/episodes.py, casework.py): the
in-memory fake, SQLite and PostgreSQL give the same answers (one test per port method, on each backend)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from pipeline.domain.model import (
    Contact,
    DeadlineKind,
    DeadlineState,
    LadderStep,
    NotificationStatus,
    PlannedDeadline,
    PlannedNotification,
)
from tests.support.store_ports import Backend
from tests.support.world import INVOLVEMENTS

NOW = datetime.fromisoformat("2026-11-24T20:00:00+00:00")


def _meeting(due: datetime = NOW + timedelta(days=3)) -> PlannedDeadline:
    return PlannedDeadline(DeadlineKind.TRIGGER_MEETING, "child", due,
                           (LadderStep(due, ("assignee",), "reminder"),))


def _school_item(key: str, role: str, urn: str = "100001") -> PlannedNotification:
    return PlannedNotification(key=key, recipient_role=role, recipient_ref=urn, contact=Contact(f"{role}@school"),
                               reason="attended ED", urgency="URGENT", content={}, school_urn=urn)


# ---- episodes -------------------------------------------------------------------------------------------

def test_episode_for_update_makes_the_episode_once_and_keeps_what_is_assigned(store_backend: Backend) -> None:
    with store_backend.units.unit_of_work() as port:
        assert port.episode("EP-1") is None
        row = port.episode_for_update("EP-1")
        assert row.episode_id == "EP-1" and row.child_id is None and row.reported_at is None
        assert json.loads(row.exploitation_flags) == []
        row.reported_at, row.risk_grade, row.force_code = NOW, "HIGH", "NS01"
        row.exploitation_flags = json.dumps(["CSE"])
        assert port.episode_for_update("EP-1").risk_grade == "HIGH"
    with store_backend.units.unit_of_work() as port:
        again = port.episode_for_update("EP-1")
        assert (again.reported_at, again.risk_grade, again.force_code) == (NOW, "HIGH", "NS01")
        assert json.loads(again.exploitation_flags) == ["CSE"]
        found = port.episode("EP-1")
        assert found is not None and found.risk_grade == "HIGH"


def test_an_episode_made_in_a_failed_unit_of_work_is_gone(store_backend: Backend) -> None:
    with store_backend.units.unit_of_work() as port:
        port.episode_for_update("EP-1").risk_grade = "LOW"
    with pytest.raises(RuntimeError), store_backend.units.unit_of_work() as port:
        port.episode_for_update("EP-2")
        port.episode_for_update("EP-1").risk_grade = "HIGH"
        raise RuntimeError("the handler fails")
    with store_backend.units.unit_of_work() as port:
        assert port.episode("EP-2") is None
        first = port.episode("EP-1")
        assert first is not None and first.risk_grade == "LOW"


def test_episodes_for_update_are_episode_for_update_of_each_at_once(store_backend: Backend) -> None:
    with store_backend.units.unit_of_work() as port:
        port.episode_for_update("EP-1").risk_grade = "HIGH"
    with store_backend.units.unit_of_work() as port:
        port.episode("EP-2")  # read (not there), then asked for update with the others
        rows = port.episodes_for_update(["EP-3", "EP-1", "EP-2", "EP-3"])
        assert [row.episode_id for row in rows] == ["EP-3", "EP-1", "EP-2"]  # each once, in the order given
        assert (rows[1].risk_grade, rows[0].risk_grade, rows[2].reported_at) == ("HIGH", None, None)
        assert all(port.episode_for_update(row.episode_id) is row for row in rows)  # the same records
        rows[0].force_code = "NS01"
        assert port.episodes_for_update([]) == []
    with store_backend.units.unit_of_work() as port:
        assert [row.force_code for row in port.episodes_for_update(["EP-3", "EP-2"])] == ["NS01", None]
    with pytest.raises(RuntimeError), store_backend.units.unit_of_work() as port:
        port.episodes_for_update(["EP-9", "EP-1"])[1].risk_grade = "LOW"
        raise RuntimeError("roll back")
    with store_backend.units.unit_of_work() as port:
        assert port.episode("EP-9") is None
        found = port.episode("EP-1")
        assert found is not None and found.risk_grade == "HIGH"


def test_episodes_of_child(store_backend: Backend) -> None:
    with store_backend.units.unit_of_work() as port:
        child = port.child_id("upn:A999100100001")
        for episode_id, child_id in (("EP-1", child), ("EP-2", None), ("EP-3", child)):
            port.episode_for_update(episode_id).child_id = child_id
    with store_backend.units.unit_of_work() as port:
        assert sorted(e.episode_id for e in port.episodes_of_child(child)) == ["EP-1", "EP-3"]
        assert list(port.episodes_of_child(port.child_id("upn:B999100100002"))) == []


def test_episodes_and_meetings_of_a_child_are_read_with_what_this_unit_of_work_did(store_backend: Backend) -> None:
    with store_backend.units.unit_of_work() as port:
        child = port.child_id("upn:A999100100001")  # a child first seen here
        port.episode_for_update("EP-1").child_id = child
        port.episode_for_update("EP-2")
        assert [e.episode_id for e in port.episodes_of_child(child)] == ["EP-1"]
        assert port.last_trigger_meeting_held(child) is None
        port.add_trigger_meeting(child, NOW, "PLAN_AGREED", "ev-1")
        assert port.last_trigger_meeting_held(child) == NOW
    with store_backend.units.unit_of_work() as port:
        assert port.child_id("upn:A999100100001") == child
        port.episode_for_update("EP-2").child_id = child  # linked here, not written yet
        assert sorted(e.episode_id for e in port.episodes_of_child(child)) == ["EP-1", "EP-2"]
        assert port.last_trigger_meeting_held(child) == NOW


def test_children_locked_and_read_ahead_leave_the_answers_as_they_are(store_backend: Backend) -> None:
    """``lock_children`` and ``read_children_ahead`` (a Kafka batch's children, before its events): the episodes, last
    trigger meetings and facts asked for next are what they were without them, this unit of work's changes after
    them included, and a savepoint's rollback undoes what it did after them."""
    # An involvement recorded without a UPN, of one of two twins: the pupils' family key and date of birth match
    # it, the given name only Lily's.
    store_backend.load_reference("involvements", INVOLVEMENTS + ",,Lily,Ashworth,2012-03-03,CHILD_IN_NEED,"
                                 "cin.worker@northshire.gov.example,CIN_TEAM,,,\n")
    upns = ["F999100100006", "F999100100007", "G999100100008", "A999100100001"]
    day = date(2026, 11, 24)
    with store_backend.units.unit_of_work() as port:
        lily, lila, jacob, amelia = (port.child_id(f"upn:{upn}") for upn in upns)
        for episode_id, child_id, days in (("EP-1", lily, 10), ("EP-2", lily, 3), ("EP-3", jacob, 1),
                                           ("EP-4", None, 2)):
            row = port.episode_for_update(episode_id)
            row.child_id, row.reported_at = child_id, NOW - timedelta(days=days)
        port.add_trigger_meeting(lily, NOW - timedelta(days=5), "PLAN_AGREED", "ev-1")
        port.add_trigger_meeting(lily, NOW - timedelta(days=8), "PLAN_AGREED", "ev-2")
    children = [lily, lila, jacob, amelia]

    def answers(port: Any) -> dict[str, tuple[list[str], datetime | None, Any]]:
        return {child: (sorted(e.episode_id for e in port.episodes_of_child(child)),
                        port.last_trigger_meeting_held(child), port.facts_for_child(child, day)) for child in children}

    with store_backend.units.unit_of_work() as port:
        before = answers(port)
    assert before[lily][:2] == (["EP-1", "EP-2"], NOW - timedelta(days=5))
    assert before[jacob][:2] == (["EP-3"], None) and before[lila][:2] == ([], None)
    assert [i.team for i in before[lily][2].involvements] == ["CIN_TEAM"]
    assert before[lila][2].involvements == ()
    with store_backend.units.unit_of_work() as port:
        port.read_pupils_ahead(upns)
        port.lock_children([jacob, lily, "no-such-child", lila, jacob])
        port.lock_children([])
        port.read_children_ahead([lila, lily, jacob, amelia, "no-such-child"])
        port.read_children_ahead([])
        for child in children:
            port.lock_child(child)
        assert answers(port) == before
        # Changes after them: an episode linked, another moved, meetings held (one before the last one).
        port.episode_for_update("EP-4").child_id = lila
        port.episode_for_update("EP-2").child_id = jacob
        port.add_trigger_meeting(lila, NOW, "PLAN_AGREED", "ev-3")
        port.add_trigger_meeting(lily, NOW - timedelta(days=20), "PLAN_AGREED", "ev-4")
        assert [e.episode_id for e in port.episodes_of_child(lila)] == ["EP-4"]
        assert sorted(e.episode_id for e in port.episodes_of_child(jacob)) == ["EP-2", "EP-3"]
        assert [e.episode_id for e in port.episodes_of_child(lily)] == ["EP-1"]
        assert (port.last_trigger_meeting_held(lila), port.last_trigger_meeting_held(lily)) == \
            (NOW, NOW - timedelta(days=5))
        with pytest.raises(RuntimeError), port.savepoint():
            port.read_children_ahead([amelia])
            port.episode_for_update("EP-5").child_id = amelia
            port.add_trigger_meeting(amelia, NOW, "PLAN_AGREED", "ev-5")
            raise RuntimeError("this event's handler fails")
        assert list(port.episodes_of_child(amelia)) == [] and port.last_trigger_meeting_held(amelia) is None
        assert [e.episode_id for e in port.episodes_of_child(lila)] == ["EP-4"]
        assert port.last_trigger_meeting_held(lila) == NOW
    with store_backend.units.unit_of_work() as port:
        assert [e.episode_id for e in port.episodes_of_child(lila)] == ["EP-4"]
        assert port.last_trigger_meeting_held(lila) == NOW


# ---- trigger meetings -----------------------------------------------------------------------------------

def test_trigger_meetings_held_and_the_latest(store_backend: Backend) -> None:
    with store_backend.units.unit_of_work() as port:
        child = port.child_id("upn:A999100100001")
        assert port.last_trigger_meeting_held(child) is None
        port.add_trigger_meeting(child, NOW - timedelta(days=10), "PLAN_AGREED", "ev-1")
        port.add_trigger_meeting(child, NOW - timedelta(days=2), "PLAN_AGREED", "ev-2")
        port.add_trigger_meeting(child, NOW - timedelta(days=5), "NO_FURTHER_ACTION", "ev-3")
        other = port.child_id("upn:B999100100002")
    with store_backend.units.unit_of_work() as port:
        assert port.last_trigger_meeting_held(child) == NOW - timedelta(days=2)
        assert port.last_trigger_meeting_held(other) is None


def test_instants_come_back_the_same_instant_to_the_microsecond(store_backend: Backend) -> None:
    # Offsets other than UTC, microseconds and none: an episode's columns (an insert, then an update of the
    # changed ones), a trigger meeting and a guarded deadline insert, each read back in a later unit of work.
    reported = datetime(2026, 11, 24, 21, 5, 7, 123456, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    seen = datetime(2026, 11, 24, 4, 0, tzinfo=timezone(timedelta(hours=-8)))
    held = datetime(2026, 11, 25, 9, 30, 0, 999999, tzinfo=timezone(timedelta(hours=1)))
    with store_backend.units.unit_of_work() as port:
        child = port.child_id("upn:A999100100001")
        episode = port.episode_for_update("EP-T")
        episode.child_id, episode.reported_at, episode.last_seen_at = child, reported, seen
        port.add_trigger_meeting(child, held, "PLAN_AGREED", "ev-1")
        meeting = port.add_deadline(_meeting(due=reported), "trigger:EP-T", NOW, event_id="ev-1", child_id=child,
                                    once=True)
        assert meeting is not None
    with store_backend.units.unit_of_work() as port:
        stored = port.episode("EP-T")
        deadline = port.deadline(meeting.id)
        assert stored is not None and deadline is not None
        for got, wanted in ((stored.reported_at, reported), (stored.last_seen_at, seen),
                            (port.last_trigger_meeting_held(child), held), (deadline.due_at, reported),
                            (deadline.next_step_at, reported)):
            assert got is not None and got == wanted
            assert got.astimezone(UTC).replace(tzinfo=None) == wanted.astimezone(UTC).replace(tzinfo=None)


def test_open_trigger_meeting_of_a_child(store_backend: Backend) -> None:
    with store_backend.units.unit_of_work() as port:
        child = port.child_id("upn:A999100100001")
        assert port.open_trigger_meeting(child) is None
        closed = port.add_deadline(_meeting(), "trigger:EP-0", NOW, event_id="ev-0", child_id=child)
        assert closed is not None
        closed.state = DeadlineState.CLOSED
        pending = port.add_deadline(_meeting(), "trigger:EP-1", NOW, event_id="ev-1", child_id=child)
        assert pending is not None
        pending_id = pending.id
        # Another kind of deadline of the same child is not a trigger meeting.
        port.add_deadline(PlannedDeadline(DeadlineKind.RETURN_INTERVIEW, "episode", NOW, ()), "EP-1", NOW,
                          event_id="ev-1", child_id=child)
    with store_backend.units.unit_of_work() as port:
        found = port.open_trigger_meeting(child)
        assert found is not None and found.id == pending_id and found.subject_id == "trigger:EP-1"


def test_a_child_read_ahead_with_a_pending_meeting_still_has_its_episodes_when_the_meeting_closes(
        store_backend: Backend) -> None:
    """The SQL adapter reads a batch's children's episodes at the first question, leaving out those of a child whose
    trigger meeting it knows is pending (the pathway does not ask then). If that meeting closes in the same unit of
    work, the child's episodes are still all there when asked."""
    with store_backend.units.unit_of_work() as port:
        amelia, ben = port.child_id("upn:A999100100001"), port.child_id("upn:B999100100002")
        for episode_id, child_id in (("EP-1", amelia), ("EP-2", ben), ("EP-3", ben)):
            row = port.episode_for_update(episode_id)
            row.child_id, row.reported_at = child_id, NOW - timedelta(days=2)
        assert port.add_deadline(_meeting(), "trigger:EP-2", NOW, event_id="ev-1", child_id=ben, once=True)
    with store_backend.units.unit_of_work() as port:
        port.lock_children([amelia, ben])
        port.read_children_ahead([amelia, ben])
        pending = port.open_trigger_meeting(ben)
        assert pending is not None and port.open_trigger_meeting(amelia) is None
        assert [e.episode_id for e in port.episodes_of_child(amelia)] == ["EP-1"]
        pending.state = DeadlineState.CLOSED  # held
        assert sorted(e.episode_id for e in port.episodes_of_child(ben)) == ["EP-2", "EP-3"]
        assert [e.episode_id for e in port.episodes_of_child(amelia)] == ["EP-1"]


def test_a_batchs_trigger_meetings_are_guarded_as_one_by_one_after_its_episodes_and_children_are_read_ahead(
        store_backend: Backend) -> None:
    """After a batch's episodes and children are locked and read ahead (``episodes_for_update``, ``lock_children``,
    ``read_children_ahead``), ``add_deadline(once=True)`` of a trigger meeting refuses the same deadlines the unique
    indexes would (its episode raised one before, open or closed; its child has one pending, stored or made in this
    unit of work), and ``open_trigger_meeting`` and ``deadlines_of_subjects`` answer as before the read-ahead."""
    with store_backend.units.unit_of_work() as port:
        amelia, ben = port.child_id("upn:A999100100001"), port.child_id("upn:B999100100002")
        port.episode_for_update("EP-1").child_id = amelia
        port.episode_for_update("EP-2").child_id = ben
        held = port.add_deadline(_meeting(), "trigger:EP-1", NOW, event_id="ev-1", child_id=None, once=True)
        assert held is not None
        held.state = DeadlineState.CLOSED
        bens = port.add_deadline(_meeting(), "trigger:EP-2", NOW, event_id="ev-2", child_id=ben, once=True)
        assert bens is not None
        held_id, bens_id = held.id, bens.id
    with store_backend.units.unit_of_work() as port:
        port.episodes_for_update(["EP-1", "EP-2", "EP-3", "EP-4"])  # EP-3 and EP-4 new
        port.lock_children([amelia, ben])
        port.read_children_ahead([amelia, ben])
        assert [d.id for d in port.deadlines_of_subjects(["EP-1", "trigger:EP-1"])] == [held_id]
        assert port.deadlines_of_subjects(["EP-3", "trigger:EP-3"]) == []
        # EP-1 raised one already (closed since); Ben has one pending.
        assert port.add_deadline(_meeting(), "trigger:EP-1", NOW, event_id="ev-5", child_id=amelia, once=True) is None
        assert port.add_deadline(_meeting(), "trigger:EP-3", NOW, event_id="ev-5", child_id=ben, once=True) is None
        pending = port.open_trigger_meeting(ben)
        assert pending is not None and pending.id == bens_id
        assert port.open_trigger_meeting(amelia) is None
        made = port.add_deadline(_meeting(), "trigger:EP-3", NOW, event_id="ev-5", child_id=amelia, once=True)
        assert made is not None
        found = port.open_trigger_meeting(amelia)
        assert found is not None and found.id == made.id
        # Amelia's is now pending: a second one is refused, here and for an episode not read ahead.
        assert port.add_deadline(_meeting(), "trigger:EP-4", NOW, event_id="ev-6", child_id=amelia, once=True) is None
        assert port.add_deadline(_meeting(), "trigger:EP-9", NOW, event_id="ev-6", child_id=amelia, once=True) is None
        assert [d.id for d in port.deadlines_of_subjects(["EP-3", "trigger:EP-3"])] == [made.id]
        # Ben's held: the meeting closed, another may be raised for him; a rolled-back one leaves nothing behind.
        pending.state = DeadlineState.CLOSED
        assert port.open_trigger_meeting(ben) is None
        with pytest.raises(RuntimeError), port.savepoint():
            assert port.add_deadline(_meeting(), "trigger:EP-4", NOW, event_id="ev-7", child_id=ben,
                                     once=True) is not None
            raise RuntimeError("this event's handler fails")
        assert port.open_trigger_meeting(ben) is None
        again = port.add_deadline(_meeting(), "trigger:EP-4", NOW, event_id="ev-8", child_id=ben, once=True)
        assert again is not None
        made_id, again_id = made.id, again.id
    with store_backend.units.unit_of_work() as port:
        amelias, bens_now = port.open_trigger_meeting(amelia), port.open_trigger_meeting(ben)
        assert amelias is not None and (amelias.id, amelias.subject_id) == (made_id, "trigger:EP-3")
        assert bens_now is not None and (bens_now.id, bens_now.subject_id) == (again_id, "trigger:EP-4")
        assert [d.state for d in port.deadlines_of_subjects(["trigger:EP-1", "trigger:EP-2"])] == ["closed", "closed"]
        assert port.deadlines_of_subject("trigger:EP-9") == []


def test_rebind_deadline_makes_an_unbound_meeting_the_childs_one_pending(store_backend: Backend) -> None:
    with store_backend.units.unit_of_work() as port:
        child = port.child_id("upn:A999100100001")
        unbound = port.add_deadline(_meeting(), "trigger:EP-1", NOW, event_id="ev-1", child_id=None)
        assert unbound is not None
        port.rebind_deadline(unbound, child)
        assert unbound.child_id == child
        again = port.open_trigger_meeting(child)
        assert again is not None and again.id == unbound.id
        # The child's one pending meeting now guards against a second.
        assert port.add_deadline(_meeting(), "trigger:EP-2", NOW, event_id="ev-2", child_id=child, once=True) is None
    with store_backend.units.unit_of_work() as port:
        stored = port.deadline(unbound.id)
        assert stored is not None and stored.child_id == child
        assert [d.subject_id for d in port.deadlines_of_subject("trigger:EP-2")] == []


def test_first_audit_reason(store_backend: Backend) -> None:
    with store_backend.units.unit_of_work() as port:
        port.audit(NOW, "system", "escalated", "D-1", "level 1")
        port.audit(NOW, "system", "created", "D-1", "trigger meeting needed: high risk")
        port.audit(NOW + timedelta(minutes=1), "system", "created", "D-1", "a later one")
    with store_backend.units.unit_of_work() as port:
        assert port.first_audit_reason("D-1", "created") == "trigger meeting needed: high risk"
        assert port.first_audit_reason("D-1", "closed") is None
        assert port.first_audit_reason("D-2", "created") is None


# ---- casework -------------------------------------------------------------------------------------------

def test_school_copies_are_the_dsl_and_deputy_on_one_deadline(store_backend: Backend) -> None:
    with store_backend.units.unit_of_work() as port:
        dsl = port.add_notification("ev-1", "self-harm", _school_item("dsl", "dsl"), NotificationStatus.PENDING, NOW,
                                    deadline_id="D-1")
        deputy = port.add_notification("ev-1", "self-harm", _school_item("deputy", "deputy_dsl"),
                                       NotificationStatus.PENDING, NOW, deadline_id="D-1")
        # The same school on another deadline, another school on this one, a team: not copies.
        port.add_notification("ev-2", "self-harm", _school_item("dsl", "dsl"), NotificationStatus.PENDING, NOW,
                              deadline_id="D-2")
        port.add_notification("ev-1", "self-harm", _school_item("other", "dsl", "100002"),
                              NotificationStatus.PENDING, NOW, deadline_id="D-1")
        team = port.add_notification("ev-1", "self-harm", PlannedNotification(
            key="scies", recipient_role="SCIES", recipient_ref="SCIES", contact=Contact("scies@example"),
            reason="holiday", urgency="URGENT", content={}), NotificationStatus.PENDING, NOW, deadline_id="D-1")
        no_deadline = port.add_notification("ev-3", "self-harm", _school_item("dsl", "dsl"),
                                             NotificationStatus.PENDING, NOW)
        assert dsl is not None and deputy is not None and team is not None and no_deadline is not None
        ids = dsl.id, deputy.id, team.id, no_deadline.id
    with store_backend.units.unit_of_work() as port:
        dsl_row, deputy_row, team_row, lone_row = (port.notification(i) for i in ids)
        assert dsl_row is not None and deputy_row is not None and team_row is not None and lone_row is not None
        assert sorted(c.id for c in port.school_copies(dsl_row)) == sorted(ids[:2])
        assert sorted(c.id for c in port.school_copies(deputy_row)) == sorted(ids[:2])
        assert [c.id for c in port.school_copies(team_row)] == [team_row.id]
        assert [c.id for c in port.school_copies(lone_row)] == [lone_row.id]


def test_open_deadline_of_event(store_backend: Backend) -> None:
    review = PlannedDeadline(DeadlineKind.MATCH_REVIEW, "review", NOW + timedelta(hours=4), ())
    with store_backend.units.unit_of_work() as port:
        assert port.open_deadline_of_event("ev-1", DeadlineKind.MATCH_REVIEW) is None
        first = port.add_deadline(review, "N-1", NOW, event_id="ev-1", child_id=None)
        assert first is not None
        first.state = DeadlineState.CLOSED
        second = port.add_deadline(review, "N-2", NOW, event_id="ev-1", child_id=None)
        assert second is not None
        second_id = second.id
    with store_backend.units.unit_of_work() as port:
        found = port.open_deadline_of_event("ev-1", DeadlineKind.MATCH_REVIEW)
        assert found is not None and found.id == second_id
        assert port.open_deadline_of_event("ev-1", DeadlineKind.CONSENT_DECISION) is None
        assert port.open_deadline_of_event("ev-2", DeadlineKind.MATCH_REVIEW) is None


def test_notifications_of_event(store_backend: Backend) -> None:
    with store_backend.units.unit_of_work() as port:
        for key, status in (("dsl", NotificationStatus.WITHHELD), ("deputy", NotificationStatus.PENDING)):
            port.add_notification("ev-1", "self-harm", _school_item(key, "dsl"), status, NOW)
        port.add_notification("ev-2", "self-harm", _school_item("dsl", "dsl"), NotificationStatus.PENDING, NOW)
    with store_backend.units.unit_of_work() as port:
        rows = port.notifications_of_event("ev-1")
        assert sorted((n.plan_key, n.status) for n in rows) == [("deputy", "pending"), ("dsl", "withheld")]
        assert list(port.notifications_of_event("ev-9")) == []


def test_person_key_of(store_backend: Backend) -> None:
    with store_backend.units.unit_of_work() as port:
        child = port.child_id("nhs:9990000018")
    with store_backend.units.unit_of_work() as port:
        assert port.person_key_of(child) == "nhs:9990000018"
        assert port.person_key_of("not-a-child") is None
