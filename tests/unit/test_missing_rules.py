"""Pathway 2 rules, pure: the episode fold, risk, trigger criteria, who is told, and the deadlines."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.domain import missing as rules
from pipeline.domain.model import ChildFacts, Contact, Directory, Enrolment, Identity, Involvement, School
from pipeline.domain.policy import Policy
from pipeline.settings import Settings

pytestmark = pytest.mark.unit

POLICY = Policy.from_mapping(Settings().rules)
DIRECTORY = Directory({code: Contact(f"{code.lower()}@c.example") for code in (
    "MISSING_COORDINATOR", "FRONT_DOOR", "HEAD_OF_SERVICE", "LA_888")})
REPORTED = datetime(2026, 11, 24, 18, 0, tzinfo=UTC)
CHILD = Identity("Jacob", "Merriman", date(2011, 6, 6), "M")
SCHOOL = School("100001", "Riverside", "999", True, "STATE", Contact("dsl@r.example"), Contact(None))
LOOKED_AFTER = Involvement("CHILD_LOOKED_AFTER", "w@c.example", "CLA_TEAM", "m@c.example", "888", "iro@c.example")


def report(grade: str = "MEDIUM", flags: tuple[str, ...] = (), at: datetime = REPORTED,
           last_seen: timedelta = timedelta(hours=2)) -> dict[str, Any]:
    return {"reported_at": at, "last_seen_at": at - last_seen, "missing_from": "CARE", "risk_grade": grade,
            "exploitation_flags": list(flags)}


def episode(*events: tuple[str, dict[str, Any]]) -> rules.Episode:
    folded = rules.Episode("EP-1", "c1")
    for kind, record in events:
        folded = rules.fold(folded, kind, record)
    return folded


def facts(*involvements: Involvement, school: School | None = SCHOOL) -> ChildFacts:
    enrolments = (Enrolment("U1", school, CHILD),) if school else ()
    return ChildFacts("c1", CHILD, enrolments, False, involvements)


EVENTS = [
    ("missing-reported", report("LOW")),
    ("missing-updated", {"updated_at": REPORTED + timedelta(hours=1), "risk_grade": "HIGH",
                         "exploitation_flags": ["CCE"]}),
    ("missing-updated", {"updated_at": REPORTED + timedelta(hours=3), "risk_grade": "MEDIUM",
                         "exploitation_flags": ["CSE"]}),
    ("missing-found", {"found_at": REPORTED + timedelta(hours=5), "returned_to": "PLACEMENT"}),
    ("missing-updated", {"updated_at": REPORTED + timedelta(hours=6), "risk_grade": None, "exploitation_flags": []}),
    ("return-interview-recorded", {"outcome": "COMPLETED"}),
]


@given(st.permutations(EVENTS), st.lists(st.sampled_from(EVENTS), max_size=4))
def test_fold_is_the_same_for_any_order_and_repetition(order: list[Any], repeats: list[Any]) -> None:
    expected = episode(*EVENTS)
    assert episode(*order, *repeats) == expected
    assert expected.risk_grade == "MEDIUM" and expected.flags == {"CCE", "CSE"}
    assert expected.found_at == REPORTED + timedelta(hours=5)


def test_high_risk_includes_thirteen_or_under_with_a_flag() -> None:
    assert rules.high_risk(episode(("missing-reported", report("HIGH"))), CHILD.date_of_birth, POLICY)
    flagged = episode(("missing-reported", report("LOW", ("CSE",))))
    assert not rules.high_risk(flagged, date(2011, 6, 6), POLICY)  # 15
    assert rules.high_risk(flagged, date(2013, 1, 1), POLICY)  # 13
    assert not rules.high_risk(episode(("missing-reported", report("LOW"))), date(2016, 1, 1), POLICY)


@pytest.mark.parametrize("events,others,now,expected", [
    ([("missing-reported", report("HIGH"))], [], REPORTED, "high-risk"),
    ([("missing-reported", report("LOW", ("COUNTY_LINES",)))], [], REPORTED, "exploitation"),
    ([("missing-reported", report("LOW", last_seen=timedelta(hours=25)))], [], REPORTED, "24 hours"),
    ([("missing-reported", report("LOW"))], [], REPORTED + timedelta(hours=21, minutes=59), None),
    ([("missing-reported", report("LOW"))], [], REPORTED + timedelta(hours=22, minutes=1), "24 hours"),
    ([("missing-reported", report("LOW"))], [], REPORTED + timedelta(hours=22), "24 hours"),  # exactly 24 h
    ([("missing-reported", report("LOW")), ("missing-found", {"found_at": REPORTED + timedelta(hours=1),
                                                               "returned_to": "HOME"})],
     [], REPORTED + timedelta(days=5), None),
    ([("missing-reported", report("LOW"))], [-29, -10], REPORTED, "3 or more"),
    ([("missing-reported", report("LOW"))], [-31, -10], REPORTED, None),
    ([("missing-reported", report("LOW"))], [10, 29], REPORTED, "3 or more"),
    ([("missing-reported", report("LOW"))], [-20, 15], REPORTED, None),  # 35 days apart: no 30-day window
])
def test_trigger_criteria(events: list[Any], others: list[int], now: datetime, expected: str | None) -> None:
    this = episode(*events)
    child_episodes = [this, *(rules.Episode(f"E{d}", "c1", reported_at=REPORTED + timedelta(days=d),
                                            last_seen_at=REPORTED + timedelta(days=d)) for d in others)]
    reason = rules.trigger_reason(this, rules.high_risk(this, CHILD.date_of_birth, POLICY), child_episodes, now,
                                  POLICY)
    assert (reason is None) if expected is None else (reason is not None and expected in reason)


def roles(planned: list[Any]) -> list[str]:
    return sorted(n.recipient_role for n in planned)


def test_report_of_a_looked_after_child_placed_by_another_council() -> None:
    this = episode(("missing-reported", report("HIGH")))
    planned = rules.report_notifications(this, facts(LOOKED_AFTER), True, DIRECTORY, POLICY)
    assert roles(planned) == ["HEAD_OF_SERVICE", "LA_888", "MISSING_COORDINATOR", "dsl", "iro", "worker"]
    dsl = next(n for n in planned if n.recipient_role == "dsl")
    assert dsl.content["status"] == "missing" and set(dsl.content) == {"pupil", "status"}
    assert len({n.key for n in planned}) == len(planned)


def test_a_looked_after_child_with_no_iro_on_file_still_has_the_iro_notification_planned() -> None:
    no_iro = Involvement("CHILD_LOOKED_AFTER", "w@c.example", "CLA_TEAM", "m@c.example", None, None)
    planned = rules.report_notifications(episode(("missing-reported", report())), facts(no_iro), False, DIRECTORY,
                                         POLICY)
    iro = next(n for n in planned if n.recipient_role == "iro")
    assert not iro.contact.reachable  # the handler sends it to the front door, audited, never drops it


def test_no_worker_means_the_front_door_and_no_school_outside_term() -> None:
    half_term = datetime(2026, 10, 27, 12, 0, tzinfo=UTC)
    this = episode(("missing-reported", report("LOW", at=half_term)))
    assert roles(rules.report_notifications(this, facts(), False, DIRECTORY, POLICY)) == [
        "FRONT_DOOR", "MISSING_COORDINATOR"]


def test_found_tells_the_school_found_only() -> None:
    this = episode(("missing-reported", report()), ("missing-found", {"found_at": REPORTED + timedelta(hours=3),
                                                                      "returned_to": "PLACEMENT"}))
    planned = rules.found_notifications(this, facts(LOOKED_AFTER), DIRECTORY, POLICY)
    assert roles(planned) == ["MISSING_COORDINATOR", "dsl", "worker"]
    assert next(n for n in planned if n.recipient_role == "dsl").content["status"] == "found"


@pytest.mark.parametrize(("reported", "found", "school_told"), [
    (datetime(2026, 10, 23, 15, 0, tzinfo=UTC), datetime(2026, 10, 26, 9, 0, tzinfo=UTC), True),  # last day of term
    (datetime(2026, 10, 30, 15, 0, tzinfo=UTC), datetime(2026, 11, 2, 9, 0, tzinfo=UTC), False),  # in half term
])
def test_the_school_hears_found_exactly_when_it_heard_missing(reported: datetime, found: datetime,
                                                             school_told: bool) -> None:
    this = episode(("missing-reported", report(at=reported)),
                   ("missing-found", {"found_at": found, "returned_to": "HOME"}))
    told_missing = "dsl" in roles(rules.report_notifications(this, facts(), False, DIRECTORY, POLICY))
    told_found = "dsl" in roles(rules.found_notifications(this, facts(), DIRECTORY, POLICY))
    assert (told_missing, told_found) == (school_told, school_told)


def test_still_missing_ladders() -> None:
    this = episode(("missing-reported", report()))
    wanted, close = rules.episode_deadlines(this, False, POLICY)
    still = next(d for d in wanted if d.kind == "still_missing")
    assert [s.at - REPORTED for s in still.steps] == [timedelta(hours=h) for h in (24, 48, 72)]
    assert [s.notify for s in still.steps] == [("team_manager",), ("HEAD_OF_SERVICE",), ("DIRECTOR",)]
    assert "strategy_discussion" not in {d.kind for d in wanted}
    high, _ = rules.episode_deadlines(episode(("missing-reported", report("HIGH"))), True, POLICY)
    still_high = next(d for d in high if d.kind == "still_missing")
    assert [s.at - REPORTED for s in still_high.steps] == [timedelta(hours=h) for h in (6, 12, 24)]
    assert "strategy_discussion" in {d.kind for d in high} and close == set()


def test_return_interview_due_72_hours_after_found_with_a_reminder_at_48() -> None:
    found_at = REPORTED + timedelta(hours=5)
    this = episode(("missing-found", {"found_at": found_at, "returned_to": "HOME"}))
    wanted, close = rules.episode_deadlines(this, False, POLICY)
    (rhi,) = wanted
    assert rhi.kind == "return_interview" and rhi.due_at == found_at + timedelta(hours=72)
    assert [(s.at - found_at, s.action) for s in rhi.steps] == [
        (timedelta(hours=48), "reminder"), (timedelta(hours=72), "escalation"), (timedelta(hours=96), "escalation")]
    assert close == {"still_missing", "episode_length_check"}
    closed = rules.fold(this, "return-interview-recorded", {"outcome": "DECLINED"})
    assert "return_interview" in rules.episode_deadlines(closed, False, POLICY)[1]


@pytest.mark.parametrize("reported_at", [datetime(2026, 3, 28, 20, 0, tzinfo=UTC),
                                         datetime(2026, 10, 24, 20, 0, tzinfo=UTC)])
def test_ladders_are_absolute_hours_across_the_clock_changes(reported_at: datetime) -> None:
    this = episode(("missing-reported", report(at=reported_at)))
    still = next(d for d in rules.episode_deadlines(this, False, POLICY)[0] if d.kind == "still_missing")
    assert [(s.at - reported_at).total_seconds() / 3600 for s in still.steps] == [24, 48, 72]


def test_strategy_discussion_is_due_the_same_working_day() -> None:
    morning = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    this = episode(("missing-reported", report("HIGH", at=morning)))
    wanted, _ = rules.episode_deadlines(this, True, POLICY)
    assert next(d for d in wanted if d.kind == "strategy_discussion").due_at == datetime(2026, 11, 24, 17, 0,
                                                                                          tzinfo=UTC)


def test_an_episode_graded_high_at_any_point_is_high_risk_whatever_the_order() -> None:
    """Reported HIGH then re-graded LOW, or the re-grade arriving first: the same facts either way."""
    downgrade = {"updated_at": REPORTED + timedelta(hours=2), "risk_grade": "LOW", "exploitation_flags": []}
    in_order = episode(("missing-reported", report("HIGH")), ("missing-updated", downgrade))
    reversed_ = episode(("missing-updated", downgrade), ("missing-reported", report("HIGH")))
    assert in_order == reversed_
    assert in_order.risk_grade == "LOW" and in_order.graded_high_at == REPORTED
    assert rules.ever_high_risk(in_order, None, POLICY) and not rules.high_risk(in_order, None, POLICY)
    wanted, _ = rules.episode_deadlines(reversed_, False, POLICY)
    assert next(d for d in wanted if d.kind == "strategy_discussion").due_at == \
        POLICY.due("strategy_discussion", REPORTED)


def test_the_strategy_discussion_runs_from_the_earliest_flag_whatever_the_order() -> None:
    flagged = {"updated_at": REPORTED + timedelta(hours=3), "risk_grade": None, "exploitation_flags": ["CCE"]}
    later = {"updated_at": REPORTED + timedelta(hours=30), "risk_grade": None, "exploitation_flags": ["CSE"]}
    orders = [episode(("missing-reported", report()), ("missing-updated", later), ("missing-updated", flagged)),
              episode(("missing-updated", flagged), ("missing-updated", later), ("missing-reported", report()))]
    assert orders[0] == orders[1] and orders[0].flagged_at == REPORTED + timedelta(hours=3)
