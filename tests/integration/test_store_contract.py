"""The storage port's contract: the in-memory fake, SQLite and PostgreSQL give the same answers, keep the same
uniqueness and return things in the same order (one test per port method, run on each backend)."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError

from pipeline.adapters.match_index import ReferenceIndex
from pipeline.adapters.memory_store import UniquenessViolation
from pipeline.domain.fellegi_sunter import Parameters
from pipeline.domain.model import (
    Candidate,
    Contact,
    DeadlineKind,
    DeadlineState,
    EventStatus,
    Identity,
    LadderStep,
    NotificationStatus,
    PlannedDeadline,
    PlannedNotification,
)
from tests.support.store_ports import Backend
from tests.support.world import AMELIA, EHE, INVOLVEMENTS, JACOB, OLIVER, PUPILS, SCHOOLS, TEAMS, attendance

NOW = datetime.fromisoformat("2026-11-24T20:00:00+00:00")
DAY = date(2026, 11, 24)


def _item(key: str = "dsl", **changes: object) -> PlannedNotification:
    item = PlannedNotification(key=key, recipient_role="dsl", recipient_ref="100001",
                               contact=Contact("dsl@riverside.sch.example", "+447700900001"), reason="attended ED",
                               urgency="URGENT", content={"attendance_id": "ED-1", "at": NOW}, school_urn="100001")
    return replace(item, **changes)  # type: ignore[arg-type]


def _deadline(kind: str = DeadlineKind.SELF_HARM_ACKNOWLEDGEMENT, due: datetime = NOW + timedelta(hours=16),
              steps: int = 2) -> PlannedDeadline:
    ladder = tuple(LadderStep(due + timedelta(hours=i), ("dsl",), "reminder" if i == 0 else "escalation")
                   for i in range(steps))
    return PlannedDeadline(kind, "dsl", due, ladder, school_urn="100001")


# ---- reference reads --------------------------------------------------------------------------------------

def test_school(store_backend: Backend) -> None:
    with store_backend.units.unit_of_work() as port:
        riverside = port.school("100001")
        assert riverside is not None and riverside.name == "Riverside Primary School" and riverside.in_area
        assert riverside.dsl == Contact("dsl@riverside.sch.example", "+447700900001")
        assert riverside.deputy == Contact("deputy@riverside.sch.example", "+447700900002")
        border = port.school("100004")
        assert border is not None and not border.in_area and border.la_code == "888"
        assert port.school("999999") is None
    # A school gone from the next file is ended: no longer current.
    store_backend.load_reference("schools", "\n".join(line for line in SCHOOLS.splitlines()
                                                      if not line.startswith("100005")) + "\n")
    with store_backend.units.unit_of_work() as port:
        assert port.school("100005") is None
        assert port.school("100001") is not None


def test_directory(store_backend: Backend) -> None:
    with store_backend.units.unit_of_work() as port:
        directory = port.directory()
    assert directory.team("SCIES") == Contact("scies@northshire.gov.example", "+447700900100")
    assert directory.team("LA_888") == Contact("la888@otherplace.gov.example", None)
    assert directory.team("NO_SUCH_TEAM") is None
    assert len(directory.teams) == 11


def test_child_id_is_made_once_per_person_key(store_backend: Backend) -> None:
    with store_backend.units.unit_of_work() as port:
        first = port.child_id("upn:A999100100001")
        assert port.child_id("upn:A999100100001") == first
        other = port.child_id("upn:B999100100002")
    assert other != first
    with store_backend.units.unit_of_work() as port:
        assert port.child_id("upn:A999100100001") == first  # committed: the same in the next unit of work


def test_a_child_id_is_random_and_tells_nothing_of_when_the_child_came_to_notice(store_backend: Backend) -> None:
    """Producers see a child's id (``match.child_id``) and social care sends it back: a time-ordered id would tell
    a hospital when police or another trust first reported the child. Version 4, unlike the other records' ids."""
    with store_backend.units.unit_of_work() as port:
        one = port.child_id("upn:A999100100001")
        many = port.child_ids(["upn:B999100100002", "nhs:9990000018"])
    for child_id in (one, *many.values()):
        assert uuid.UUID(child_id).version == 4 and str(uuid.UUID(child_id)) == child_id


def test_child_ids_are_child_id_of_each_person_key_at_once(store_backend: Backend) -> None:
    with store_backend.units.unit_of_work() as port:
        known = port.child_id("upn:A999100100001")
    with store_backend.units.unit_of_work() as port:
        seen_here = port.child_id("upn:C999100100003")
        ids = port.child_ids(["upn:B999100100002", "upn:A999100100001", "upn:C999100100003", "upn:B999100100002",
                              "nhs:9990000018"])
        assert set(ids) == {"upn:A999100100001", "upn:B999100100002", "upn:C999100100003", "nhs:9990000018"}
        assert ids["upn:A999100100001"] == known  # issued in an earlier unit of work
        assert ids["upn:C999100100003"] == seen_here  # issued in this one
        assert len(set(ids.values())) == 4
        assert all(port.child_id(key) == child_id for key, child_id in ids.items())  # child_id agrees
        assert port.child_ids([]) == {}
    with store_backend.units.unit_of_work() as port:  # committed: the same ids in the next unit of work
        assert port.child_ids(list(ids)) == ids
        assert all(port.is_known_child(child_id) for child_id in ids.values())
    with pytest.raises(RuntimeError), store_backend.units.unit_of_work() as port:
        rolled_back = port.child_ids(["upn:D999100100004"])["upn:D999100100004"]
        raise RuntimeError("roll back")
    issued_apart = store_backend.sql is not None and store_backend.sql.issued_children.issuer is not None
    with store_backend.units.unit_of_work() as port:
        again = port.child_ids(["upn:D999100100004"])["upn:D999100100004"]
        if issued_apart:  # PostgreSQL: an id is issued and committed apart, as a sequence hands out numbers
            assert port.is_known_child(rolled_back) and again == rolled_back
        else:  # issued in the unit of work: rolled back with it, and not kept
            assert not port.is_known_child(rolled_back) and again != rolled_back


def test_pupils_read_ahead_leave_child_facts_as_they_are(store_backend: Backend) -> None:
    index = ReferenceIndex()
    jacob = Identity(given_name="Jacob", family_name="Merriman", date_of_birth=date(2011, 6, 6))
    with store_backend.units.unit_of_work() as port:
        port.sync_match_index(index)
        members = [c for c in index.candidates(jacob) if c.upn == "G999100100008"]
        child_id = port.child_id("upn:G999100100008")
        before = port.child_facts(child_id, members, jacob, DAY)
    with store_backend.units.unit_of_work() as port:
        port.sync_match_index(index)
        port.read_pupils_ahead(["G999100100008", "A999100100001", "Z000000000000"])  # one not on file
        port.read_pupils_ahead([])
        assert port.child_facts(child_id, members, jacob, DAY) == before
        assert port.child_facts(child_id, members, jacob, date(2019, 1, 1)).enrolments == ()  # off the roll then
        nobody = [replace(members[0], upn="Z000000000000", record_key="Z000000000000")]
        assert port.child_facts(child_id, nobody, jacob, DAY).enrolments == ()


def test_is_known_child(store_backend: Backend) -> None:
    with store_backend.units.unit_of_work() as port:
        child_id = port.child_id("upn:A999100100001")
    with store_backend.units.unit_of_work() as port:
        assert port.is_known_child(child_id)
        assert not port.is_known_child("00000000-0000-4000-8000-000000000000")


def test_child_facts_from_candidates(store_backend: Backend) -> None:
    index = ReferenceIndex()
    with store_backend.units.unit_of_work() as port:
        port.sync_match_index(index)
        jacob = Identity(given_name="Jacob", family_name="Merriman", date_of_birth=date(2011, 6, 6))
        members = [c for c in index.candidates(jacob) if c.upn == "G999100100008"]
        assert {c.source for c in members} == {"pupil", "involvement"}
        child_id = port.child_id("upn:G999100100008")
        facts = port.child_facts(child_id, members, jacob, DAY)
    assert facts.child_id == child_id
    assert [(e.upn, e.school.urn) for e in facts.enrolments] == [("G999100100008", "100001")]
    assert [(i.status, i.worker_email, i.team, i.iro_email) for i in facts.involvements] == [
        ("CHILD_LOOKED_AFTER", "sam.worker@northshire.gov.example", "CLA_TEAM", "iro@northshire.gov.example")]
    assert not facts.home_educated
    # Off the roll on the day asked about: no enrolment.
    with store_backend.units.unit_of_work() as port:
        assert port.child_facts(child_id, members, jacob, date(2019, 1, 1)).enrolments == ()


def test_child_facts_with_the_index_synced_find_records_under_the_childs_numbers(store_backend: Backend) -> None:
    """With the match index synced (the handlers' case), an involvement or home-education record carrying the
    child's UPN or NHS number is found though it is not among the members, and a child with none has none."""
    index = ReferenceIndex()
    oliver = Identity(given_name="Oliver", family_name="Brennan", date_of_birth=date(2011, 2, 3))
    amelia = Identity(given_name="Amelia", family_name="Hartley", date_of_birth=date(2013, 5, 14),
                      nhs_number="9990000018")

    def pupil(identity: Identity, upn: str) -> list[Candidate]:
        return [c for c in index.candidates(identity) if c.source == "pupil" and c.upn == upn]

    with store_backend.units.unit_of_work() as port:
        port.sync_match_index(index)
        facts = port.child_facts(port.child_id("upn:B999100100002"), pupil(oliver, "B999100100002"), oliver, DAY)
        assert [i.status for i in facts.involvements] == ["EARLY_HELP"]
        amelia_id = port.child_id("upn:A999100100001")
        facts = port.child_facts(amelia_id, pupil(amelia, "A999100100001"), amelia, DAY)
        assert facts.involvements == () and not facts.home_educated
    store_backend.load_reference("ehe", EHE + "Amy,Hartley,2013-05-14,NS1 2AB,9990000018\n")
    store_backend.load_reference("involvements", INVOLVEMENTS + "9990000018,,Amy,Hartley,2013-05-14,EARLY_HELP,"
                                 "erin.helper@northshire.gov.example,EARLY_HELP,eh.manager@northshire.gov.example,,\n")
    with store_backend.units.unit_of_work() as port:
        port.sync_match_index(index)
        facts = port.child_facts(amelia_id, pupil(amelia, "A999100100001"), amelia, DAY)
        assert facts.home_educated
        assert [(i.status, i.worker_email) for i in facts.involvements] == [
            ("EARLY_HELP", "erin.helper@northshire.gov.example")]


def test_facts_for_child(store_backend: Backend) -> None:
    with store_backend.units.unit_of_work() as port:
        oliver = port.child_id("upn:B999100100002")
        harvey = port.child_id("ehe:nobody")  # a person key whose record is not on file
        freya = port.child_id("upn:H999100100009")
    with store_backend.units.unit_of_work() as port:
        facts = port.facts_for_child(oliver, DAY)
        assert facts is not None and facts.identity.given_name == "Oliver"
        assert [e.school.urn for e in facts.enrolments] == ["100002"]
        assert [i.status for i in facts.involvements] == ["EARLY_HELP"]
        assert port.facts_for_child(harvey, DAY) is None
        assert port.facts_for_child("00000000-0000-4000-8000-000000000000", DAY) is None
        left = port.facts_for_child(freya, DAY)  # left the roll in July 2024
        assert left is not None and left.enrolments == ()


def test_facts_for_child_with_the_index_synced_find_an_involvement_recorded_without_a_upn(
        store_backend: Backend) -> None:
    """A linked pupil's facts with the match index synced (the handlers' case): an involvement recorded without a
    UPN but with exactly the pupil's identity is the pupil's, loaded after the index was built as before it; one
    of another child with the same family name and date of birth is not."""
    index = ReferenceIndex()
    with store_backend.units.unit_of_work() as port:
        isla = port.child_id("upn:C999100100003")
    with store_backend.units.unit_of_work() as port:
        port.sync_match_index(index)
        facts = port.facts_for_child(isla, DAY)
        assert facts is not None and facts.involvements == ()
    store_backend.load_reference("involvements", INVOLVEMENTS + (
        ",,Isla,Fairbairn,2012-07-21,CHILD_IN_NEED,cin.worker@northshire.gov.example,CIN_TEAM,,,\n"
        ",,Ivy,Fairbairn,2012-07-21,EARLY_HELP,erin.helper@northshire.gov.example,EARLY_HELP,,,\n"))
    for built_now in (False, True):
        with store_backend.units.unit_of_work() as port:
            port.sync_match_index(ReferenceIndex() if built_now else index)
            facts = port.facts_for_child(isla, DAY)
            assert facts is not None
            assert [(i.status, i.team) for i in facts.involvements] == [("CHILD_IN_NEED", "CIN_TEAM")]


def test_team_of_person(store_backend: Backend) -> None:
    with store_backend.units.unit_of_work() as port:
        assert port.team_of_person("worker", "sam.worker@northshire.gov.example") == "CLA_TEAM"
        assert port.team_of_person("team_manager", "eh.manager@northshire.gov.example") == "EARLY_HELP"
        assert port.team_of_person("iro", "iro@northshire.gov.example") == "CLA_TEAM"
        assert port.team_of_person("worker", "nobody@northshire.gov.example") is None
        assert port.team_of_person("dsl", "dsl@riverside.sch.example") is None


def test_a_reference_reload_is_seen_by_the_next_unit_of_work(store_backend: Backend) -> None:
    """A school's DSL, a team's contact and a worker's team changed by a load (another process, in the runtimes)
    are what the next unit of work answers, though the previous one read them; a load of another kind after that
    changes none of them back."""
    with store_backend.units.unit_of_work() as port:
        assert port.school("100002") is not None and port.school("100002").dsl.email == "dsl@hilltop.sch.example"
        assert port.directory().team("SCIES") == Contact("scies@northshire.gov.example", "+447700900100")
        assert port.team_of_person("worker", "sam.worker@northshire.gov.example") == "CLA_TEAM"
    store_backend.load_reference("schools", SCHOOLS.replace("dsl@hilltop.sch.example", "new.dsl@hilltop.sch.example"))
    store_backend.load_reference("teams", TEAMS.replace("scies@northshire", "scies.duty@northshire"))
    store_backend.load_reference("involvements", INVOLVEMENTS.replace(",CLA_TEAM,", ",CLA_TEAM_2,"))
    for _ in range(2):
        with store_backend.units.unit_of_work() as port:
            hilltop = port.school("100002")
            assert hilltop is not None and hilltop.dsl == Contact("new.dsl@hilltop.sch.example", None)
            assert port.school("100001") is not None
            assert port.directory().team("SCIES") == Contact("scies.duty@northshire.gov.example", "+447700900100")
            assert port.team_of_person("worker", "sam.worker@northshire.gov.example") == "CLA_TEAM_2"
            assert port.team_of_person("iro", "iro@northshire.gov.example") == "CLA_TEAM_2"
        store_backend.load_reference("pupils", PUPILS + "Z999100100010,,Zara,Quill,2014-02-02,F,NS1 2AB,100001,,\n")


def test_sync_match_index_builds_then_applies_a_reload(store_backend: Backend) -> None:
    index = ReferenceIndex()
    amelia = Identity(given_name="Amelia", family_name="Hartley", date_of_birth=date(2013, 5, 14))
    newcomer = Identity(given_name="Zara", family_name="Quill", date_of_birth=date(2014, 2, 2))
    with store_backend.units.unit_of_work() as port:
        port.sync_match_index(index)
    assert "A999100100001" in {c.upn for c in index.candidates(amelia) if c.source == "pupil"}
    assert index.candidates(newcomer) == []
    store_backend.load_reference("pupils",
                                 PUPILS + "Z999100100010,,Zara,Quill,2014-02-02,F,NS1 2AB,100001,2021-09-01,\n")
    with store_backend.units.unit_of_work() as port:
        port.sync_match_index(index)
    assert [(c.source, c.upn) for c in index.candidates(newcomer)] == [("pupil", "Z999100100010")]


def test_newest_match_parameters(store_backend: Backend) -> None:
    with store_backend.units.unit_of_work() as port:
        assert port.newest_match_parameters(None) is None
    older, newer = Parameters(share_known=0.8), Parameters(share_known=0.7)
    store_backend.save_parameters(older, NOW)
    store_backend.save_parameters(newer, NOW + timedelta(minutes=1))
    with store_backend.units.unit_of_work() as port:
        found = port.newest_match_parameters(None)
        assert found is not None and found.version == newer.version
        assert port.newest_match_parameters(older.version) is not None
        assert port.newest_match_parameters(newer.version) is None


# ---- effects ----------------------------------------------------------------------------------------------

def test_audit_is_appended_in_order_and_only_on_commit(store_backend: Backend) -> None:
    with store_backend.units.unit_of_work() as port:
        port.audit(NOW, "system", "created", "n-1", "dsl: attended ED")
        port.audit(NOW, "dsl@riverside.sch.example", "acknowledged", "n-1")
    with pytest.raises(RuntimeError), store_backend.units.unit_of_work() as port:
        port.audit(NOW, "system", "created", "n-2", "rolled back")
        raise RuntimeError("the unit of work fails")
    assert store_backend.audit_entries() == [("system", "created", "n-1", "dsl: attended ED"),
                                             ("dsl@riverside.sch.example", "acknowledged", "n-1", "")]


def test_outbox(store_backend: Backend) -> None:
    with store_backend.units.unit_of_work() as port:
        port.outbox(NOW, "pathway-notifications", "e-1", {"notification_id": "n-1", "at": NOW}, "n-1")
        port.outbox(NOW, "escalations", "e-1", {"level": 1})
    assert store_backend.outbox_rows() == [
        ("pathway-notifications", "e-1", {"notification_id": "n-1", "at": str(NOW)}, "n-1"),
        ("escalations", "e-1", {"level": 1}, None)]


def test_add_notification_and_read_it_back(store_backend: Backend) -> None:
    with store_backend.units.unit_of_work() as port:
        row = port.add_notification("e-1", "self_harm", _item(), NotificationStatus.PENDING, NOW)
        assert row is not None
        notification_id = row.id
    with store_backend.units.unit_of_work() as port:
        stored = port.notification(notification_id)
        assert stored is not None
        assert (stored.event_id, stored.pathway, stored.kind, stored.plan_key, stored.recipient_role,
                stored.recipient_ref, stored.school_urn, stored.contact_email, stored.contact_phone, stored.urgency,
                stored.reason, stored.status, stored.deadline_id, stored.created_at, stored.dedupe_key) == (
            "e-1", "self_harm", "alert", "dsl", "dsl", "100001", "100001", "dsl@riverside.sch.example",
            "+447700900001", "URGENT", "attended ED", NotificationStatus.PENDING, None, NOW, None)
        assert json.loads(stored.content_json) == {"attendance_id": "ED-1", "at": str(NOW)}
        assert stored.delivered_at is None and stored.acknowledged_at is None
        assert port.notification("no-such-id") is None


def test_a_dedupe_key_stores_a_notification_once_ever(store_backend: Backend) -> None:
    with store_backend.units.unit_of_work() as port:
        first = port.add_notification("e-1", "missing", _item(), NotificationStatus.PENDING, NOW, dedupe_key="k")
        assert first is not None
        port.audit(NOW, "system", "created", first.id)
        assert port.add_notification("e-2", "missing", _item(), NotificationStatus.PENDING, NOW,
                                     dedupe_key="k") is None
        # The refused repeat leaves the rest of the unit of work alone.
        port.audit(NOW, "system", "kept", first.id)
    with store_backend.units.unit_of_work() as port:
        assert port.add_notification("e-3", "missing", _item(), NotificationStatus.PENDING, NOW,
                                     dedupe_key="k") is None
        assert port.add_notification("e-3", "missing", _item(), NotificationStatus.PENDING, NOW,
                                     dedupe_key="other") is not None
    assert [(action, subject) for _, action, subject, _ in store_backend.audit_entries()] == [
        ("created", first.id), ("kept", first.id)]


def test_a_key_known_to_be_new_is_stored_once_and_refused_after(store_backend: Backend) -> None:
    with store_backend.units.unit_of_work() as port:
        first = port.add_notification("e-1", "missing", _item(), NotificationStatus.PENDING, NOW, dedupe_key="new",
                                      key_is_new=True)
        assert first is not None and port.notification(first.id) is first
        # A repeat in the same unit of work, told it is new or not, is refused.
        assert port.add_notification("e-1", "missing", _item(), NotificationStatus.PENDING, NOW, dedupe_key="new",
                                     key_is_new=True) is None
        assert port.add_notification("e-1", "missing", _item(), NotificationStatus.PENDING, NOW,
                                     dedupe_key="new") is None
        first.deadline_id = "d-1"
        with pytest.raises(RuntimeError), port.savepoint():
            undone = port.add_notification("e-1", "missing", _item(), NotificationStatus.PENDING, NOW,
                                           dedupe_key="undone", key_is_new=True)
            assert undone is not None
            raise RuntimeError("the handler fails")
        # Undone with its savepoint: the key is free again.
        assert port.add_notification("e-1", "missing", _item(), NotificationStatus.PENDING, NOW,
                                     dedupe_key="undone", key_is_new=True) is not None
    with store_backend.units.unit_of_work() as port:
        stored = port.notification(first.id)
        assert stored is not None and (stored.dedupe_key, stored.deadline_id) == ("new", "d-1")
        assert port.add_notification("e-2", "missing", _item(), NotificationStatus.PENDING, NOW,
                                     dedupe_key="new") is None
        assert port.add_notification("e-2", "missing", _item(), NotificationStatus.PENDING, NOW,
                                     dedupe_key="undone") is None


def test_add_delivery_once_per_channel(store_backend: Backend) -> None:
    with store_backend.units.unit_of_work() as port:
        row = port.add_notification("e-1", "self_harm", _item(), NotificationStatus.PENDING, NOW)
        assert row is not None
        port.add_delivery(row.id, "email", NOW)
        port.add_delivery(row.id, "sms", NOW)
    assert store_backend.delivery_channels() == [(row.id, "email", "new"), (row.id, "sms", "new")]
    with pytest.raises(Exception), store_backend.units.unit_of_work() as port:  # noqa: B017 - each adapter's own
        port.add_delivery(row.id, "email", NOW)
    assert store_backend.delivery_channels() == [(row.id, "email", "new"), (row.id, "sms", "new")]


def test_add_dead_letter(store_backend: Backend) -> None:
    with store_backend.units.unit_of_work() as port:
        letter = port.add_dead_letter(NOW, "handler", "trigger-meeting-recorded", "child_id: never issued",
                                      b"{}", producer_id=None, event_id="e-1")
        assert (letter.source, letter.event_type, letter.reason, letter.payload, letter.event_id,
                letter.received_at) == ("handler", "trigger-meeting-recorded", "child_id: never issued", b"{}",
                                        "e-1", NOW)
        assert letter.id


# ---- deadlines --------------------------------------------------------------------------------------------

def test_add_deadline_and_read_it_back(store_backend: Backend) -> None:
    planned = _deadline()
    with store_backend.units.unit_of_work() as port:
        row = port.add_deadline(planned, "n-1", NOW, event_id="e-1", child_id="c-1")
        assert row is not None
        deadline_id = row.id
    with store_backend.units.unit_of_work() as port:
        stored = port.deadline(deadline_id)
        assert stored is not None
        assert (stored.kind, stored.subject_id, stored.event_id, stored.child_id, stored.school_urn, stored.due_at,
                stored.state, stored.escalation_level, stored.next_step_at, stored.created_at, stored.closed_at) == (
            DeadlineKind.SELF_HARM_ACKNOWLEDGEMENT, "n-1", "e-1", "c-1", "100001", planned.due_at,
            DeadlineState.OPEN, 0, planned.steps[0].at, NOW, None)
        assert json.loads(stored.steps_json) == [
            {"at": step.at.isoformat(), "notify": ["dsl"], "action": step.action} for step in planned.steps]
        assert port.deadline("no-such-id") is None


def test_one_deadline_per_kind_and_subject(store_backend: Backend) -> None:
    with store_backend.units.unit_of_work() as port:
        first = port.add_deadline(_deadline(), "n-1", NOW, event_id="e-1", child_id=None)
        assert first is not None
        first.state, first.closed_at = DeadlineState.CLOSED, NOW  # closed: still never re-opened
    with store_backend.units.unit_of_work() as port:
        assert port.add_deadline(_deadline(), "n-1", NOW, event_id="e-2", child_id=None, once=True) is None
        other_kind = port.add_deadline(_deadline(DeadlineKind.MATCH_REVIEW), "n-1", NOW + timedelta(minutes=1),
                                       event_id="e-2",
                                       child_id=None, once=True)
        assert other_kind is not None
    with pytest.raises(Exception), store_backend.units.unit_of_work() as port:  # noqa: B017 - each adapter's own
        port.add_deadline(_deadline(), "n-1", NOW, event_id="e-3", child_id=None)
    with store_backend.units.unit_of_work() as port:
        assert [d.kind for d in port.deadlines_of_subject("n-1")] == [DeadlineKind.SELF_HARM_ACKNOWLEDGEMENT,
                                                                      DeadlineKind.MATCH_REVIEW]
        assert port.deadline(first.id) is not None and port.deadline(first.id).state == DeadlineState.CLOSED  # type: ignore[union-attr]


def test_one_open_trigger_meeting_per_child(store_backend: Backend) -> None:
    meeting = _deadline(DeadlineKind.TRIGGER_MEETING)
    with store_backend.units.unit_of_work() as port:
        first = port.add_deadline(meeting, "trigger:ep-1", NOW, event_id="e-1", child_id="c-1", once=True)
        assert first is not None
        assert port.add_deadline(meeting, "trigger:ep-2", NOW, event_id="e-2", child_id="c-1", once=True) is None
        assert port.add_deadline(meeting, "trigger:ep-3", NOW, event_id="e-3", child_id="c-2", once=True) is not None
    with store_backend.units.unit_of_work() as port:
        closing = port.deadline(first.id)
        assert closing is not None
        closing.state, closing.closed_at = DeadlineState.CLOSED, NOW
    with store_backend.units.unit_of_work() as port:  # once the first is closed, the child may have another
        assert port.add_deadline(meeting, "trigger:ep-2", NOW, event_id="e-2", child_id="c-1", once=True) is not None


def test_deadlines_of_subject_oldest_first(store_backend: Backend) -> None:
    with store_backend.units.unit_of_work() as port:
        for minutes, kind in ((2, DeadlineKind.RETURN_INTERVIEW), (0, DeadlineKind.STILL_MISSING),
                              (1, DeadlineKind.STRATEGY_DISCUSSION)):
            port.add_deadline(_deadline(kind), "ep-1", NOW + timedelta(minutes=minutes), event_id="e-1",
                              child_id=None)
        port.add_deadline(_deadline(), "ep-2", NOW, event_id="e-1", child_id=None)
    with store_backend.units.unit_of_work() as port:
        assert [d.kind for d in port.deadlines_of_subject("ep-1")] == [
            DeadlineKind.STILL_MISSING, DeadlineKind.STRATEGY_DISCUSSION, DeadlineKind.RETURN_INTERVIEW]
        assert port.deadlines_of_subject("ep-3") == []


def test_deadlines_of_subjects_reads_several_subjects_oldest_first(store_backend: Backend) -> None:
    with store_backend.units.unit_of_work() as port:
        for minutes, kind, subject in ((2, DeadlineKind.RETURN_INTERVIEW, "ep-1"),
                                       (0, DeadlineKind.TRIGGER_MEETING, "trigger:ep-1"),
                                       (1, DeadlineKind.STILL_MISSING, "ep-1"),
                                       (3, DeadlineKind.STILL_MISSING, "ep-2")):
            port.add_deadline(_deadline(kind), subject, NOW + timedelta(minutes=minutes), event_id="e-1",
                              child_id=None)
    with store_backend.units.unit_of_work() as port:
        assert [(d.subject_id, d.kind) for d in port.deadlines_of_subjects(["ep-1", "trigger:ep-1"])] == [
            ("trigger:ep-1", DeadlineKind.TRIGGER_MEETING), ("ep-1", DeadlineKind.STILL_MISSING),
            ("ep-1", DeadlineKind.RETURN_INTERVIEW)]
        # One record per deadline in a unit of work, whichever read handed it out.
        first = port.deadlines_of_subjects(["ep-2"])[0]
        assert port.deadlines_of_subject("ep-2") == [first]
        first.state = DeadlineState.CLOSED
        assert [d.state for d in port.deadlines_of_subjects(["ep-2", "ep-9"])] == [DeadlineState.CLOSED]
        assert port.deadlines_of_subjects(["ep-3"]) == [] and port.deadlines_of_subjects([]) == []


def test_open_deadlines_due_earliest_step_first(store_backend: Backend) -> None:
    with store_backend.units.unit_of_work() as port:
        late = port.add_deadline(_deadline(due=NOW + timedelta(hours=3)), "n-late", NOW, event_id=None, child_id=None)
        early = port.add_deadline(_deadline(due=NOW + timedelta(hours=1)), "n-early", NOW, event_id=None,
                                  child_id=None)
        port.add_deadline(_deadline(due=NOW + timedelta(hours=9)), "n-future", NOW, event_id=None, child_id=None)
        closed = port.add_deadline(_deadline(due=NOW), "n-closed", NOW, event_id=None, child_id=None)
        no_steps = port.add_deadline(_deadline(due=NOW, steps=0), "n-no-steps", NOW, event_id=None, child_id=None)
        assert late and early and closed and no_steps
        closed.state, closed.next_step_at = DeadlineState.CLOSED, None
    at = NOW + timedelta(hours=5)
    with store_backend.units.unit_of_work() as port:
        assert [d.id for d in port.open_deadlines_due(at, 10)] == [early.id, late.id]
        assert [d.id for d in port.open_deadlines_due(at, 1)] == [early.id]
        assert port.open_deadlines_due(NOW, 10) == []


def test_changes_to_new_records_are_stored_at_commit(store_backend: Backend) -> None:
    with store_backend.units.unit_of_work() as port:
        plain = port.add_notification("e-1", "self_harm", _item(), NotificationStatus.PENDING, NOW)
        keyed = port.add_notification("e-1", "missing", _item("deputy"), NotificationStatus.PENDING, NOW,
                                      dedupe_key="k")
        acknowledgement = port.add_deadline(_deadline(), "n-1", NOW, event_id="e-1", child_id=None)
        review = port.add_deadline(_deadline(DeadlineKind.MATCH_REVIEW), "n-1", NOW, event_id="e-1", child_id=None,
                                   once=True)
        assert plain and keyed and acknowledgement and review
        plain.deadline_id = keyed.deadline_id = acknowledgement.id
        review.state, review.closed_at, review.closed_reason = DeadlineState.CLOSED, NOW, "decided"
        review.next_step_at = None
    with store_backend.units.unit_of_work() as port:
        assert [port.notification(row.id).deadline_id for row in (plain, keyed)] == [  # type: ignore[union-attr]
            acknowledgement.id, acknowledgement.id]
        stored = port.deadline(review.id)
        assert stored is not None
        assert (stored.state, stored.closed_at, stored.closed_reason, stored.next_step_at) == (
            DeadlineState.CLOSED, NOW, "decided", None)


def test_a_unit_of_work_reads_back_what_it_created_and_changed(store_backend: Backend) -> None:
    meeting = _deadline(DeadlineKind.TRIGGER_MEETING, due=NOW - timedelta(hours=2))
    with store_backend.units.unit_of_work() as port:
        row = port.add_notification("e-1", "self_harm", _item(), NotificationStatus.PENDING, NOW)
        first = port.add_deadline(meeting, "trigger:ep-1", NOW, event_id="e-1", child_id="c-1", once=True)
        assert row is not None and first is not None
        assert port.notification(row.id) is row and port.deadline(first.id) is first
        assert port.deadlines_of_subject("trigger:ep-1") == [first]
        assert port.open_trigger_meeting("c-1") is first
        assert port.open_deadlines_due(NOW, 10) == [first]
        first.state, first.closed_at, first.next_step_at = DeadlineState.CLOSED, NOW, None
        assert port.open_trigger_meeting("c-1") is None
        assert port.open_deadlines_due(NOW, 10) == []
        # Closed in this unit of work: the child may have another pending meeting at once.
        second = port.add_deadline(meeting, "trigger:ep-2", NOW, event_id="e-2", child_id="c-1", once=True)
        assert second is not None and port.open_trigger_meeting("c-1") is second


def test_a_savepoint_that_rolls_back_restores_new_records(store_backend: Backend) -> None:
    with store_backend.units.unit_of_work() as port:
        kept = port.add_deadline(_deadline(), "n-1", NOW, event_id="e-1", child_id=None, once=True)
        assert kept is not None
        with pytest.raises(RuntimeError), port.savepoint():
            kept.state, kept.closed_at = DeadlineState.CLOSED, NOW
            undone = port.add_deadline(_deadline(DeadlineKind.MATCH_REVIEW), "n-1", NOW, event_id="e-1",
                                       child_id=None, once=True)
            assert undone is not None
            raise RuntimeError("the handler fails")
        assert port.deadline(undone.id) is None
        again = port.deadline(kept.id)
        assert again is not None and (again.state, again.closed_at) == (DeadlineState.OPEN, None)
        assert [d.id for d in port.deadlines_of_subject("n-1")] == [kept.id]
    with store_backend.units.unit_of_work() as port:
        assert [(d.id, d.state) for d in port.deadlines_of_subject("n-1")] == [(kept.id, DeadlineState.OPEN)]


# ---- events -----------------------------------------------------------------------------------------------

def test_events_by_id(store_backend: Backend) -> None:
    first, second = attendance(AMELIA), attendance(OLIVER)
    store_backend.add_event("self-harm-attendance", first, NOW)
    store_backend.add_event("self-harm-attendance", second, NOW)
    with store_backend.units.unit_of_work() as port:
        found = {e.event_id: e for e in port.events_by_id([first["event_id"], second["event_id"], "nope"])}
        assert set(found) == {first["event_id"], second["event_id"]}
        event = found[first["event_id"]]
        assert (event.event_type, event.status, event.processed_at, event.attempts, event.held_at) == (
            "self-harm-attendance", EventStatus.ACCEPTED, None, 0, None)
        assert json.loads(event.record_json)["attendance_id"] == first["attendance_id"]
        event.status, event.processed_at = EventStatus.PROCESSED, NOW  # a live record: kept at commit
    with store_backend.units.unit_of_work() as port:
        again = port.events_by_id([first["event_id"]], lock=False)[0]
        assert (again.status, again.processed_at) == (EventStatus.PROCESSED, NOW)


def test_held_event_ids_oldest_first(store_backend: Backend) -> None:
    events = [attendance(child) for child in (AMELIA, OLIVER, JACOB)]
    for event in events:
        store_backend.add_event("self-harm-attendance", event, NOW)
    store_backend.set_event(events[2]["event_id"], held_at=NOW, attempts=5)
    store_backend.set_event(events[0]["event_id"], held_at=NOW + timedelta(minutes=1), attempts=5)
    with store_backend.units.unit_of_work() as port:
        assert port.held_event_ids() == [events[0]["event_id"], events[2]["event_id"]]
        port.lock_child(port.child_id("upn:A999100100001"))  # holds nothing up within one unit of work


def test_claim_due_events_new_and_due_again_oldest_first(store_backend: Backend) -> None:
    new, due_again, waiting, held = (attendance(child) for child in (AMELIA, OLIVER, JACOB, AMELIA))
    for event in (new, due_again, waiting, held):
        store_backend.add_event("self-harm-attendance", event, NOW)
    store_backend.set_event(due_again["event_id"], attempts=1, error="RuntimeError",
                            next_attempt_at=NOW - timedelta(seconds=1))
    store_backend.set_event(waiting["event_id"], attempts=1, next_attempt_at=NOW + timedelta(seconds=10))
    store_backend.set_event(held["event_id"], attempts=5, held_at=NOW)
    with store_backend.units.unit_of_work() as port:
        claimed = port.claim_due_events(NOW, 10)
        assert [e.event_id for e in claimed] == [new["event_id"], due_again["event_id"]]
        seqs = [e.seq for e in claimed]
        assert all(seq is not None for seq in seqs) and seqs == sorted(seqs)
        assert (claimed[1].attempts, claimed[1].error) == (1, "RuntimeError")
        assert [e.event_id for e in port.claim_due_events(NOW, 1)] == [new["event_id"]]
        assert [e.event_id for e in port.claim_due_events(NOW, 10, retries_only=True)] == [due_again["event_id"]]
        # Live records: what is set on them is stored at commit (only the columns changed).
        claimed[0].status, claimed[0].processed_at = EventStatus.PROCESSED, NOW
        claimed[1].attempts, claimed[1].next_attempt_at = 2, NOW + timedelta(seconds=20)
    with store_backend.units.unit_of_work() as port:
        assert port.claim_due_events(NOW, 10) == []
        assert [e.event_id for e in port.claim_due_events(NOW + timedelta(seconds=20), 10)] == [
            due_again["event_id"], waiting["event_id"]]
        (stored,) = port.events_by_id([due_again["event_id"]], lock=False)
        assert (stored.status, stored.attempts, stored.error, stored.next_attempt_at) == (
            EventStatus.ACCEPTED, 2, "RuntimeError", NOW + timedelta(seconds=20))
        (done,) = port.events_by_id([new["event_id"]], lock=False)
        assert (done.status, done.processed_at, done.attempts, done.held_at) == (EventStatus.PROCESSED, NOW, 0, None)


def test_claim_events_by_seq_still_accepted_held_or_not(store_backend: Backend) -> None:
    events = [attendance(child) for child in (AMELIA, OLIVER, JACOB)]
    for event in events:
        store_backend.add_event("self-harm-attendance", event, NOW)
    store_backend.set_event(events[0]["event_id"], status=EventStatus.PROCESSED, processed_at=NOW)
    store_backend.set_event(events[2]["event_id"], attempts=5, held_at=NOW)
    with store_backend.units.unit_of_work() as port:
        seqs = {e.event_id: e.seq for e in port.events_by_id([e["event_id"] for e in events], lock=False)}
        claimed = port.claim_events([s for s in reversed(seqs.values()) if s is not None] + [10_000])
        assert [e.event_id for e in claimed] == [events[1]["event_id"], events[2]["event_id"]]
        assert claimed[1].held_at == NOW and claimed[1].attempts == 5
        assert port.claim_events([]) == []


def _stored_by_worker(port: Any, event: dict[str, Any], now: datetime = NOW) -> Any:
    """``store_event`` as the Kafka worker calls it (consumers/kafka_records.py)."""
    return port.store_event("self-harm-attendance", event["event_id"], json.dumps(event), f"hash-{event['event_id']}",
                            now, producer_id=7)


def test_store_event_stores_a_live_record_with_the_unit_of_work(store_backend: Backend) -> None:
    earlier, processed, waiting = attendance(AMELIA), attendance(OLIVER), attendance(JACOB)
    store_backend.add_event("self-harm-attendance", earlier, NOW)
    with store_backend.units.unit_of_work() as port:
        done = _stored_by_worker(port, processed)
        assert (done.event_id, done.event_type, done.status, done.processed_at, done.attempts, done.held_at,
                done.producer_id, done.received_at) == (processed["event_id"], "self-harm-attendance",
                                                        EventStatus.ACCEPTED, None, 0, None, 7, NOW)
        _stored_by_worker(port, waiting)
        done.status, done.processed_at, done.child_id = EventStatus.PROCESSED, NOW, "c-1"  # stored with it
        # Seen within the unit of work that stores them.
        assert {e.event_id for e in port.events_by_id([processed["event_id"], waiting["event_id"]])} == {
            processed["event_id"], waiting["event_id"]}
    with store_backend.units.unit_of_work() as port:
        stored = {e.event_id: e for e in port.events_by_id([e["event_id"] for e in (earlier, processed, waiting)],
                                                           lock=False)}
        again = stored[processed["event_id"]]
        assert (again.status, again.processed_at, again.child_id, again.content_hash, again.producer_id) == (
            EventStatus.PROCESSED, NOW, "c-1", f"hash-{processed['event_id']}", 7)
        assert json.loads(again.record_json) == processed
        seqs = [stored[e["event_id"]].seq for e in (earlier, processed, waiting)]
        assert None not in seqs and seqs == sorted(seqs)  # numbered when stored, after the earlier event
        assert [e.event_id for e in port.claim_due_events(NOW, 10)] == [earlier["event_id"], waiting["event_id"]]


def test_store_event_of_an_event_id_already_stored_fails_the_unit_of_work(store_backend: Backend) -> None:
    first, second = attendance(AMELIA), attendance(OLIVER)
    store_backend.add_event("self-harm-attendance", first, NOW)
    with pytest.raises((IntegrityError, UniquenessViolation)), store_backend.units.unit_of_work() as port:
        _stored_by_worker(port, second)
        _stored_by_worker(port, first)
        port.audit(NOW, "system", "stored", second["event_id"])
    with store_backend.units.unit_of_work() as port:
        assert [e.event_id for e in port.events_by_id([first["event_id"], second["event_id"]], lock=False)] == [
            first["event_id"]]
    assert store_backend.audit_entries() == []


def test_store_event_in_a_savepoint_that_rolls_back_is_not_stored(store_backend: Backend) -> None:
    kept, undone = attendance(AMELIA), attendance(OLIVER)
    with store_backend.units.unit_of_work() as port:
        _stored_by_worker(port, kept)
        with pytest.raises(RuntimeError), port.savepoint():
            _stored_by_worker(port, undone)
            raise RuntimeError("the record's handler failed")
        assert [e.event_id for e in port.events_by_id([kept["event_id"], undone["event_id"]])] == [kept["event_id"]]
    with store_backend.units.unit_of_work() as port:
        assert [e.event_id for e in port.events_by_id([kept["event_id"], undone["event_id"]], lock=False)] == [
            kept["event_id"]]


def test_an_event_changed_after_a_rolled_back_savepoint_is_stored(store_backend: Backend) -> None:
    """A savepoint that rolls back puts the event back as it was at the savepoint; what is set on it afterwards
    (a failure counted, as the consumer does for the event that failed) is stored at commit."""
    first, second = attendance(AMELIA), attendance(OLIVER)
    for event in (first, second):
        store_backend.add_event("self-harm-attendance", event, NOW)
    with store_backend.units.unit_of_work() as port:
        one, two = port.claim_due_events(NOW, 10)
        with port.savepoint():
            one.status, one.processed_at = EventStatus.PROCESSED, NOW
        with pytest.raises(RuntimeError), port.savepoint():
            two.status, two.processed_at, two.child_id = EventStatus.PROCESSED, NOW, "c-1"
            port.add_notification(two.event_id, "self_harm", _item(), NotificationStatus.PENDING, NOW)
            raise RuntimeError("the handler failed")
        assert (two.status, two.processed_at, two.child_id) == (EventStatus.ACCEPTED, None, None)
        two.attempts, two.error = 1, "RuntimeError"
    with store_backend.units.unit_of_work() as port:
        stored = {e.event_id: e for e in port.events_by_id([first["event_id"], second["event_id"]], lock=False)}
        assert (stored[first["event_id"]].status, stored[first["event_id"]].processed_at) == (
            EventStatus.PROCESSED, NOW)
        again = stored[second["event_id"]]
        assert (again.status, again.processed_at, again.child_id, again.attempts, again.error) == (
            EventStatus.ACCEPTED, None, None, 1, "RuntimeError")
        assert port.notifications_of_event(second["event_id"]) == []


# ---- the unit of work -------------------------------------------------------------------------------------

def test_savepoint_undoes_only_what_was_written_inside(store_backend: Backend) -> None:
    with store_backend.units.unit_of_work() as port:
        kept = port.add_notification("e-1", "self_harm", _item(), NotificationStatus.PENDING, NOW)
        assert kept is not None
        port.audit(NOW, "system", "created", kept.id)
        with pytest.raises(RuntimeError), port.savepoint():
            kept.status = NotificationStatus.FAILED
            undone = port.add_notification("e-1", "self_harm", _item("deputy"), NotificationStatus.PENDING, NOW)
            assert undone is not None
            port.audit(NOW, "system", "created", undone.id)
            raise RuntimeError("the handler fails")
        assert port.notification(undone.id) is None
        again = port.notification(kept.id)
        assert again is not None and again.status == NotificationStatus.PENDING
        with port.savepoint():
            port.audit(NOW, "system", "viewed", kept.id)
    assert [(action, subject) for _, action, subject, _ in store_backend.audit_entries()] == [
        ("created", kept.id), ("viewed", kept.id)]


def test_a_clash_written_inside_a_savepoint_fails_that_savepoint_only(store_backend: Backend) -> None:
    with store_backend.units.unit_of_work() as port:
        first = port.add_deadline(_deadline(), "n-1", NOW, event_id="e-1", child_id=None)
        assert first is not None
        with pytest.raises(Exception), port.savepoint():  # noqa: B017 - each adapter's own uniqueness error
            port.audit(NOW, "system", "created", "n-1")
            port.add_deadline(_deadline(), "n-1", NOW, event_id="e-2", child_id=None)  # (kind, subject) again
        with port.savepoint():  # the next savepoint is not charged with it
            port.add_deadline(_deadline(), "n-2", NOW, event_id="e-3", child_id=None)
            port.audit(NOW, "system", "created", "n-2")
    with store_backend.units.unit_of_work() as port:
        assert sorted(d.event_id or "" for d in port.deadlines_of_subjects(["n-1", "n-2"])) == ["e-1", "e-3"]
    assert [(action, subject) for _, action, subject, _ in store_backend.audit_entries()] == [("created", "n-2")]


def test_a_failed_unit_of_work_leaves_nothing(store_backend: Backend) -> None:
    with pytest.raises(RuntimeError), store_backend.units.unit_of_work() as port:
        row = port.add_notification("e-1", "self_harm", _item(), NotificationStatus.PENDING, NOW, dedupe_key="k")
        assert row is not None
        port.add_deadline(_deadline(), row.id, NOW, event_id="e-1", child_id=None)
        port.outbox(NOW, "escalations", "e-1", {})
        raise RuntimeError("the batch fails")
    with store_backend.units.unit_of_work() as port:
        assert port.notification(row.id) is None
        assert port.deadlines_of_subject(row.id) == []
        assert port.add_notification("e-1", "self_harm", _item(), NotificationStatus.PENDING, NOW,
                                     dedupe_key="k") is not None
    assert store_backend.outbox_rows() == []
