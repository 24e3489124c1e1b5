"""Every row of the self-harm routing table, consent, the holiday rule and the no-contact fallback.

Pure: facts are built by hand, the clock is a parameter.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import pytest

from pipeline.domain.events import SelfHarmAttendance
from pipeline.domain.model import (
    ChildFacts,
    Contact,
    Directory,
    Enrolment,
    EventStatus,
    Identity,
    Involvement,
    MatchDecision,
    MatchOutcome,
    School,
)
from pipeline.domain.policy import Policy
from pipeline.domain.self_harm import compulsory_school_age, route_self_harm
from pipeline.settings import Settings, deep_merge

pytestmark = pytest.mark.unit

POLICY = Policy.from_mapping(Settings().rules)
TEAMS = ("SCIES", "EHE_MANAGER", "CME", "FRONT_DOOR", "FRONT_DOOR_MANAGER", "EDUCATION_SAFEGUARDING_LEAD",
         "HEAD_OF_SERVICE", "LA_888")
DIRECTORY = Directory({code: Contact(f"{code.lower()}@council.example") for code in TEAMS})
CHILD = Identity("Amelia", "Hartley", date(2013, 5, 14), "F", None, "NS1 2AB")
TERM_EVENING = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)  # a Tuesday in term
LINKED = MatchDecision(MatchOutcome.LINKED, "upn:A1", 12.0, {}, "names and date of birth agree")

RIVERSIDE = School("100001", "Riverside", "999", True, "STATE", Contact("dsl@r.example"), Contact("dep@r.example"))
HILLTOP_NO_DEPUTY = School("100002", "Hilltop", "999", True, "STATE", Contact("dsl@h.example"), Contact(None))
NO_CONTACT = School("100005", "Quiet Lane", "999", True, "STATE", Contact(None), Contact(None))
INDEPENDENT = School("100003", "Oakwood", "999", True, "INDEPENDENT", Contact("dsl@o.example"), Contact(None))
OUT_OF_AREA = School("100004", "Border", "888", False, "STATE", Contact("dsl@b.example"), Contact(None))


def event(**changes: Any) -> SelfHarmAttendance:
    base = SelfHarmAttendance("e1", "ED-1", "RXX01", TERM_EVENING, CHILD, False, "safety plan", "NO_CONCERN", "GIVEN",
                              None, "nurse ext 1")
    return replace(base, **changes)


def facts(*schools: School, home_educated: bool = False, involvements: tuple[Involvement, ...] = (),
          identity: Identity = CHILD) -> ChildFacts:
    return ChildFacts("c1", identity, tuple(Enrolment(f"U{s.urn}", s, identity) for s in schools), home_educated,
                      involvements)


def route(e: SelfHarmAttendance, f: ChildFacts | None, match: MatchDecision = LINKED,
          now: datetime = TERM_EVENING) -> Any:
    return route_self_harm(e, match, f, DIRECTORY, POLICY, now)


def roles(plan: Any, *, sent_only: bool = False) -> list[str]:
    return sorted(n.recipient_role for n in plan.notifications if not (sent_only and n.withheld))


def test_in_area_state_school_gets_dsl_and_deputy_with_an_acknowledgement_deadline() -> None:
    plan = route(event(), facts(RIVERSIDE))
    assert roles(plan) == ["deputy_dsl", "dsl"]
    (deadline,) = plan.deadlines
    assert deadline.kind == "self_harm_acknowledgement"
    assert deadline.due_at == datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    assert [s.at for s in deadline.steps] == [datetime(2026, 11, 25, 12, 0, tzinfo=UTC),
                                              datetime(2026, 11, 25, 14, 0, tzinfo=UTC),
                                              datetime(2026, 11, 25, 15, 30, tzinfo=UTC)]
    assert [s.notify for s in deadline.steps] == [("dsl", "deputy_dsl"), ("SCIES",), ("EDUCATION_SAFEGUARDING_LEAD",)]


def test_school_sees_only_its_own_minimised_view() -> None:
    plan = route(event(), facts(RIVERSIDE))
    dsl = next(n for n in plan.notifications if n.recipient_role == "dsl")
    assert set(dsl.content) == {"pupil", "school_urn", "attendance_id", "attendance_date", "hospital_ods_code",
                                "risk_summary", "clinician_contact"}
    assert set(dsl.content["pupil"]) == {"given_name", "family_name", "date_of_birth", "upn"}


def test_the_school_sees_the_pupil_as_on_its_own_roll_not_as_the_hospital_keyed_it() -> None:
    keyed = Identity("Millie", "Hartly", date(2013, 5, 14), "F", None, "NS1 2AB")  # the hospital's spelling
    plan = route(event(child=keyed), facts(RIVERSIDE))
    dsl = next(n for n in plan.notifications if n.recipient_role == "dsl")
    assert dsl.content["pupil"] == {"given_name": "Amelia", "family_name": "Hartley", "date_of_birth": "2013-05-14",
                                    "upn": "U100001"}


def test_no_deputy_on_file_means_dsl_only() -> None:
    assert roles(route(event(), facts(HILLTOP_NO_DEPUTY))) == ["dsl"]


@pytest.mark.parametrize("school", [INDEPENDENT, OUT_OF_AREA])
def test_independent_or_out_of_area_school_goes_to_scies(school: School) -> None:
    plan = route(event(), facts(school))
    assert roles(plan) == ["SCIES"]
    assert plan.deadlines == ()


def test_home_educated_goes_to_the_ehe_managers_manager() -> None:
    assert roles(route(event(), facts(home_educated=True))) == ["EHE_MANAGER"]


def test_compulsory_age_on_no_roll_goes_to_cme_and_front_door() -> None:
    assert roles(route(event(), facts())) == ["CME", "FRONT_DOOR"]


def test_sixteen_or_seventeen_on_no_roll_goes_to_front_door() -> None:
    older = replace(CHILD, date_of_birth=date(2009, 6, 1))  # 17 in November 2026
    assert roles(route(event(child=older), facts(identity=older))) == ["FRONT_DOOR"]


def test_sixteen_or_seventeen_and_home_educated_goes_to_the_ehe_manager_and_the_front_door() -> None:
    older = replace(CHILD, date_of_birth=date(2009, 6, 1))
    plan = route(event(child=older), facts(home_educated=True, identity=older))
    assert roles(plan) == ["EHE_MANAGER", "FRONT_DOOR"]


def test_compulsory_school_age_starts_on_the_prescribed_day_after_the_fifth_birthday() -> None:
    born = date(2021, 9, 10)  # five on 10 September 2026: compulsory from 31 December 2026
    assert not compulsory_school_age(born, date(2026, 11, 24))
    assert compulsory_school_age(born, date(2026, 12, 31))
    assert compulsory_school_age(date(2021, 3, 31), date(2026, 3, 31))  # a birthday on a prescribed day
    assert not compulsory_school_age(date(2021, 4, 1), date(2026, 8, 30))
    assert compulsory_school_age(date(2021, 4, 1), date(2026, 8, 31))


def test_compulsory_school_age_ends_on_the_last_friday_of_june_of_year_11() -> None:
    born = date(2010, 10, 1)  # turns 16 in October 2026: school year 2026-27
    assert compulsory_school_age(born, date(2027, 6, 25))
    assert not compulsory_school_age(born, date(2027, 6, 26))
    assert not compulsory_school_age(date(2022, 1, 1), date(2026, 11, 24))  # aged 4


def test_living_in_another_councils_area_goes_to_front_door() -> None:
    elsewhere = replace(CHILD, postcode="OT4 5GH")
    plan = route(event(child=elsewhere), facts(RIVERSIDE, identity=elsewhere))
    assert roles(plan) == ["FRONT_DOOR", "deputy_dsl", "dsl"]
    front = next(n for n in plan.notifications if n.recipient_role == "FRONT_DOOR")
    assert "another council" in front.reason


def test_placed_here_by_another_council_and_looked_after() -> None:
    looked_after = Involvement("CHILD_LOOKED_AFTER", "w@council.example", "CLA", "m@council.example", "888")
    plan = route(event(), facts(RIVERSIDE, involvements=(looked_after,)))
    assert roles(plan) == ["LA_888", "deputy_dsl", "dsl", "team_manager", "worker"]
    assert all(n.urgency == "URGENT" for n in plan.notifications)


def test_open_to_early_help_tells_the_worker_only() -> None:
    early_help = Involvement("EARLY_HELP", "w@council.example", "EH", "m@council.example", None)
    assert roles(route(event(), facts(RIVERSIDE, involvements=(early_help,)))) == ["deputy_dsl", "dsl", "worker"]


def test_child_protection_plan_also_tells_the_team_manager() -> None:
    plan_status = Involvement("CHILD_PROTECTION_PLAN", "w@council.example", "CSC", "m@council.example", None)
    assert roles(route(event(), facts(involvements=(plan_status,)))) == [
        "CME", "FRONT_DOOR", "team_manager", "worker"]


def test_a_protected_child_with_no_team_manager_on_file_keeps_the_team_manager_in_the_plan() -> None:
    # The rules never drop the unreachable recipient; the one notify function sends it to the front door
    # (tests/integration/test_delivery.py checks that end to end).
    no_manager = Involvement("CHILD_PROTECTION_PLAN", "w@council.example", "CSC", None, None)
    plan = route(event(), facts(RIVERSIDE, involvements=(no_manager,)))
    assert roles(plan) == ["deputy_dsl", "dsl", "team_manager", "worker"]
    manager = next(n for n in plan.notifications if n.recipient_role == "team_manager")
    assert not manager.contact.reachable


def test_exploitation_concern_also_goes_to_front_door_urgently() -> None:
    plan = route(event(exploitation_screening="CONCERN"), facts(RIVERSIDE))
    assert roles(plan) == ["FRONT_DOOR", "deputy_dsl", "dsl"]
    assert {n.urgency for n in plan.notifications} == {"URGENT"}


def test_several_reasons_for_the_front_door_make_one_notification() -> None:
    plan = route(event(exploitation_screening="CONCERN"), facts())
    assert roles(plan) == ["CME", "FRONT_DOOR"]
    front = next(n for n in plan.notifications if n.recipient_role == "FRONT_DOOR")
    assert len(front.content["reasons"]) == 2


@pytest.mark.parametrize("consent,reason,shared", [
    ("GIVEN", None, True), ("REFUSED", "risk of serious harm", True), ("NOT_SOUGHT", "child at immediate risk", True),
    ("REFUSED", None, False), ("NOT_SOUGHT", None, False), ("REFUSED", "   ", False),
])
def test_consent(consent: str, reason: str | None, shared: bool) -> None:
    plan = route(event(consent=consent, shared_without_consent_reason=reason), facts(RIVERSIDE))
    if shared:
        assert plan.status is EventStatus.PROCESSED
        assert roles(plan, sent_only=True) == ["deputy_dsl", "dsl"]
        return
    assert plan.status is EventStatus.WITHHELD
    assert roles(plan, sent_only=True) == ["FRONT_DOOR"]
    assert [d.kind for d in plan.deadlines] == ["consent_decision"]
    assert plan.deadlines[0].due_at == datetime(2026, 11, 25, 17, 0, tzinfo=UTC)  # 20:00 is past today's end
    assert ("withheld", f"consent {consent} and no reason to share without it") in plan.audit


def test_withheld_still_tells_the_worker_of_a_looked_after_child() -> None:
    looked_after = Involvement("CHILD_LOOKED_AFTER", "w@council.example", "CLA", "m@council.example", None)
    plan = route(event(consent="REFUSED"), facts(RIVERSIDE, involvements=(looked_after,)))
    assert roles(plan, sent_only=True) == ["FRONT_DOOR", "worker"]
    assert {n.recipient_role for n in plan.notifications if n.withheld} == {"dsl", "deputy_dsl", "team_manager"}


def test_release_routes_as_shared_with_the_clock_from_the_release() -> None:
    released = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    plan = route_self_harm(event(consent="REFUSED"), LINKED, facts(RIVERSIDE), DIRECTORY, POLICY, released,
                           released_at=released)
    assert roles(plan, sent_only=True) == ["deputy_dsl", "dsl"]
    assert plan.deadlines[0].due_at == datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def test_half_term_arrival_also_tells_scies_due_next_working_day() -> None:
    half_term = datetime(2026, 10, 26, 10, 0, tzinfo=UTC)  # Monday of autumn half term
    plan = route(event(arrived_at=half_term), facts(RIVERSIDE), now=half_term)
    assert roles(plan) == ["SCIES", "deputy_dsl", "dsl"]
    kinds = {d.kind: d.due_at for d in plan.deadlines}
    assert kinds["self_harm_acknowledgement"] == datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
    assert kinds["self_harm_holiday_scies"] == datetime(2026, 10, 27, 12, 0, tzinfo=UTC)


def test_an_academy_with_its_own_half_term_is_routed_by_its_own_term_dates() -> None:
    """Riverside keeps its own autumn half term, a week before the council's: an arrival on its Monday off is the
    holiday rule for Riverside's pupil, and an ordinary school night for Hilltop's."""
    own_terms = {"calendar": {"school_term_holidays": {"100001": [
        {"from": "2026-10-19", "to": "2026-10-23", "name": "academy half term"}]}}}
    policy = Policy.from_mapping(deep_merge(Settings().rules, own_terms))
    monday = datetime(2026, 10, 19, 10, 0, tzinfo=UTC)
    academy = route_self_harm(event(arrived_at=monday), LINKED, facts(RIVERSIDE), DIRECTORY, policy, monday)
    assert roles(academy) == ["SCIES", "deputy_dsl", "dsl"]
    assert {d.kind: d.due_at for d in academy.deadlines}["self_harm_acknowledgement"] == datetime(
        2026, 10, 26, 12, 0, tzinfo=UTC)  # (the academy is back before the council's half term)
    council = route_self_harm(event(arrived_at=monday), LINKED, facts(HILLTOP_NO_DEPUTY), DIRECTORY, policy, monday)
    assert roles(council) == ["dsl"]
    assert council.deadlines[0].due_at == datetime(2026, 10, 20, 11, 0, tzinfo=UTC)  # 12:00 BST on Tuesday


def test_friday_evening_is_not_the_holiday_rule() -> None:
    friday = datetime(2026, 11, 27, 19, 0, tzinfo=UTC)
    plan = route(event(arrived_at=friday), facts(RIVERSIDE), now=friday)
    assert roles(plan) == ["deputy_dsl", "dsl"]
    assert plan.deadlines[0].due_at == datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def test_recipient_without_contact_stays_in_the_plan_never_dropped() -> None:
    plan = route(event(), facts(NO_CONTACT))
    assert roles(plan) == ["dsl"]
    assert plan.notifications[0].school_urn == "100005" and not plan.notifications[0].contact.reachable
    assert plan.deadlines[0].kind == "self_harm_acknowledgement"


def test_review_sends_nothing_to_a_school() -> None:
    review = MatchDecision(MatchOutcome.REVIEW, None, 7.0, {}, "several candidates")
    plan = route(event(), None, review)
    assert plan.status is EventStatus.REVIEW
    assert roles(plan) == ["FRONT_DOOR"]
    assert plan.deadlines[0].kind == "match_review"
    assert plan.deadlines[0].due_at == datetime(2026, 11, 25, 11, 0, tzinfo=UTC)  # 2 working hours from 09:00


def test_no_match_goes_to_the_front_door() -> None:
    none = MatchDecision(MatchOutcome.NO_MATCH, None, 0.0, {}, "no candidate record")
    plan = route(event(), None, none)
    assert plan.status is EventStatus.PROCESSED
    assert roles(plan) == ["FRONT_DOOR"]
