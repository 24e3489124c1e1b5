"""The matcher's rules (domain.md) on top of the Fellegi-Sunter model: the NHS number rule, names with date of
birth, twins, several candidates."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from pipeline.domain.fellegi_sunter import FellegiSunterMatcher
from pipeline.domain.matching import ReferenceStats, nhs_number_valid
from pipeline.domain.model import Candidate, Identity, MatchOutcome

pytestmark = pytest.mark.unit

MATCHER = FellegiSunterMatcher()
STATS = ReferenceStats(population=4000)  # a roll of a realistic size: the model's prior depends on it
AMELIA = Identity("Amelia", "Hartley", date(2013, 5, 4), "F", "9990000018", "NS1 2AB")
ROLL_AMELIA = Candidate("pupil", "A1", replace(AMELIA, nhs_number=None), upn="A1", school_urn="100001")


def decide(event: Identity, *candidates: Candidate) -> MatchOutcome:
    return MATCHER.decide(event, list(candidates), urgent=False, stats=STATS).outcome


@pytest.mark.parametrize("number,valid", [
    ("9434765919", True), ("9434765918", False), ("9990000018", True), ("123", False), (None, False),
    ("943 476 5919", True), ("abcdefghij", False), ("0000000000", True),
])
def test_nhs_check_digit(number: str | None, valid: bool) -> None:
    assert nhs_number_valid(number) is valid


def test_nhs_number_with_date_of_birth_matches() -> None:
    record = Candidate("involvement", "r1", replace(AMELIA, given_name="Millie"))
    assert decide(AMELIA, record) is MatchOutcome.LINKED


def test_nhs_number_with_family_name_and_swapped_birth_date_matches() -> None:
    record = Candidate("involvement", "r1", replace(AMELIA, date_of_birth=date(2013, 4, 5), given_name="A"))
    assert decide(AMELIA, record) is MatchOutcome.LINKED


def test_equal_nhs_number_with_both_disagreeing_goes_to_review() -> None:
    sibling = Candidate("involvement", "r1", replace(AMELIA, family_name="Okafor", date_of_birth=date(2015, 9, 9),
                                                       given_name="Tobi"))
    decision = MATCHER.decide(AMELIA, [sibling], urgent=False, stats=STATS)
    assert decision.outcome is MatchOutcome.REVIEW
    assert "disagree" in decision.reason


def test_invalid_nhs_number_is_not_evidence() -> None:
    event = replace(AMELIA, nhs_number="9990000017")
    stranger = Candidate("involvement", "r1", Identity("Tobi", "Okafor", date(2015, 9, 9), "M", "9990000017"))
    assert decide(event, stranger) is MatchOutcome.NO_MATCH


def test_names_and_date_of_birth_match_a_roll_record_without_nhs_number() -> None:
    assert decide(AMELIA, ROLL_AMELIA) is MatchOutcome.LINKED


@pytest.mark.parametrize("change", [
    {"given_name": "amelia"}, {"family_name": "HARTLEY"}, {"date_of_birth": date(2013, 4, 5)},
    {"given_name": "Ameila"}, {"postcode": "NS1 9ZZ"},
])
def test_tolerated_differences_still_match(change: dict[str, object]) -> None:
    assert decide(replace(AMELIA, nhs_number=None, **change), ROLL_AMELIA) is MatchOutcome.LINKED


def test_nickname_matches() -> None:
    william = Identity("William", "Stone", date(2012, 1, 1), "M", None, "NS2 1AA")
    record = Candidate("pupil", "W1", replace(william, given_name="Bill"), upn="W1")
    assert decide(william, record) is MatchOutcome.LINKED


def test_different_child_is_no_match() -> None:
    other = Identity("Zebedee", "Quixote", date(2009, 12, 12), "M", None, "NS9 9ZZ")
    assert decide(other, ROLL_AMELIA) is MatchOutcome.NO_MATCH
    assert decide(other) is MatchOutcome.NO_MATCH


def test_twins_are_never_linked_on_a_fuzzy_name() -> None:
    lily = Candidate("pupil", "T1", Identity("Lily", "Ashworth", date(2012, 3, 3), "F", None, "NS5 7LM"), upn="T1")
    lila = Candidate("pupil", "T2", Identity("Lila", "Ashworth", date(2012, 3, 3), "F", None, "NS5 7LM"), upn="T2")
    typo = Identity("Lilly", "Ashworth", date(2012, 3, 3), "F", None, "NS5 7LM")
    assert decide(typo, lily, lila) is MatchOutcome.REVIEW
    exact = Identity("Lily", "Ashworth", date(2012, 3, 3), "F", None, "NS5 7LM")
    assert decide(exact, lily, lila) is MatchOutcome.LINKED


def test_records_of_one_person_across_sources_are_one_candidate() -> None:
    involvement = Candidate("involvement", "r1", replace(AMELIA, nhs_number=None), upn="A1")
    decision = MATCHER.decide(replace(AMELIA, nhs_number=None), [ROLL_AMELIA, involvement], urgent=False, stats=STATS)
    assert decision.outcome is MatchOutcome.LINKED
    assert decision.person_key == "upn:A1"


def test_two_different_people_both_plausible_go_to_review() -> None:
    other = Candidate("pupil", "A2", replace(AMELIA, nhs_number=None, postcode="NS3 3CC"), upn="A2")
    # Nothing the event carries tells them apart: close in probability, so a person decides.
    assert decide(replace(AMELIA, nhs_number=None, postcode=None), ROLL_AMELIA, other) is MatchOutcome.REVIEW
    # The address the event carries is one of theirs and not the other's: that one is far more likely.
    assert decide(replace(AMELIA, nhs_number=None), ROLL_AMELIA, other) is MatchOutcome.LINKED


def test_breakdown_never_names_the_person() -> None:
    decision = MATCHER.decide(AMELIA, [ROLL_AMELIA], urgent=False, stats=STATS)
    text = str(decision.breakdown)
    for value in ("Amelia", "Hartley", "9990000018", "A1", "NS1"):
        assert value not in text


def test_a_social_care_record_without_upn_joins_the_roll_record_with_exactly_its_identity() -> None:
    pupil = replace(AMELIA, nhs_number=None)
    social_care = Candidate("involvement", "r9", pupil)  # no UPN, no NHS number
    decision = MATCHER.decide(pupil, [ROLL_AMELIA, social_care], urgent=False, stats=STATS)
    assert decision.outcome is MatchOutcome.LINKED and decision.person_key == "upn:A1"


def test_a_near_identity_without_upn_stays_apart_and_goes_to_review() -> None:
    pupil = replace(AMELIA, nhs_number=None)
    near = Candidate("involvement", "r9", replace(pupil, given_name="Amelie"))
    assert decide(pupil, ROLL_AMELIA, near) is MatchOutcome.LINKED  # the exact one wins over a similar one
    twin_roll = Candidate("pupil", "A2", replace(pupil, given_name="Amelie"), upn="A2")
    assert decide(pupil, ROLL_AMELIA, twin_roll, near) is MatchOutcome.LINKED
    assert MATCHER.decide(pupil, [ROLL_AMELIA, twin_roll, near], urgent=False, stats=STATS).person_key == "upn:A1"
