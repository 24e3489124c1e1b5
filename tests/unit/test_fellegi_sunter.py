"""The Fellegi-Sunter model: every comparison level, the estimation, the blocking index and the rules on top."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import date

import pytest

from pipeline.adapters.match_index import ReferenceIndex, ReferenceRow
from pipeline.domain.fellegi_sunter import (
    DEFAULT_M,
    DEFAULT_U,
    FIELDS,
    LEVELS,
    FellegiSunterMatcher,
    Parameters,
    Thresholds,
    are_nicknames,
    compare,
    date_level,
    estimate_u,
    expectation_maximisation,
    prepare,
    score,
)
from pipeline.domain.matching import ReferenceStats
from pipeline.domain.model import Candidate, Identity, MatchOutcome

pytestmark = pytest.mark.unit

BASE = Identity("Oliver", "Brennan", date(2011, 2, 3), "M", None, "NS2 3CD", "Hilltop Academy")
STATS = ReferenceStats(population=4000)
MATCHER = FellegiSunterMatcher()


def levels(event: Identity, record: Identity = BASE, school: str | None = "Hilltop Academy") -> dict[str, str]:
    return compare(prepare(event), prepare(record, school))


@pytest.mark.parametrize("given,level", [
    ("Oliver", "exact"), ("OLIVER", "exact"), ("Ollie", "nickname"), ("Olliver", "jaro_winkler_0.95"),
    ("Olivier", "jaro_winkler_0.95"), ("Olyver", "phonetic"), ("Zebedee", "different"), (None, "absent"),
])
def test_given_name_levels(given: str | None, level: str) -> None:
    assert levels(replace(BASE, given_name=given))["given_name"] == level


def test_nicknames_come_from_a_full_maintained_list() -> None:
    assert are_nicknames("william", "bill") and are_nicknames("bill", "will") and are_nicknames("margaret", "peggy")
    assert are_nicknames("elizabeth", "betsy") and are_nicknames("jon", "john")
    assert not are_nicknames("oliver", "olivia")


def test_phonetic_and_lower_jaro_winkler_bands() -> None:
    assert levels(replace(BASE, family_name="Brennann"))["family_name"] == "jaro_winkler_0.95"
    assert levels(replace(BASE, family_name="Brenan"))["family_name"] == "phonetic"  # Metaphone BRNN both
    record = replace(BASE, given_name="Catherine")
    assert levels(replace(BASE, given_name="Kathryn"), record)["given_name"] in ("phonetic", "nickname")
    assert levels(replace(BASE, family_name="Thomson"), replace(BASE, family_name="Tomsen"))["family_name"] == \
        "different"  # Jaro-Winkler 0.86, Metaphone 0MSN / TMSN
    assert levels(replace(BASE, family_name="Brenon"), replace(BASE, family_name="Brannen"))["family_name"] in (
        "phonetic", "jaro_winkler_0.88")


@pytest.mark.parametrize("family,level", [
    ("Brennan", "exact"), ("Brennan-Okafor", "hyphenated"), ("Okafor Brennan", "hyphenated"),
    ("Okafor", "different"), (None, "absent"),
])
def test_family_name_levels(family: str | None, level: str) -> None:
    assert levels(replace(BASE, family_name=family))["family_name"] == level


def test_transposed_names_are_one_level_counted_once() -> None:
    found = levels(replace(BASE, given_name="Brennan", family_name="Oliver"))
    assert found["given_name"] == found["family_name"] == "transposed"
    weights = Parameters().weights
    assert weights["given_name"]["transposed"] > 0 and weights["family_name"]["transposed"] == 0


def test_one_name_agreeing_while_the_other_is_absent() -> None:
    found = levels(replace(BASE, given_name=None))
    assert found["given_name"] == "absent" and found["family_name"] == "exact"
    assert Parameters().weights["given_name"]["absent"] == 0


@pytest.mark.parametrize("born,level", [
    (date(2011, 2, 3), "exact"), (date(2011, 3, 2), "day_month_swap"), (date(2011, 2, 8), "one_digit"),
    (date(2011, 2, 25), "within_month"), (date(2011, 9, 30), "within_year"), (date(2005, 9, 30), "different"),
    (None, "absent"),
])
def test_date_of_birth_levels(born: date | None, level: str) -> None:
    assert date_level(born, BASE.date_of_birth) == level
    assert levels(replace(BASE, date_of_birth=born))["date_of_birth"] == level


@pytest.mark.parametrize("postcode,level", [
    ("NS2 3CD", "full"), ("ns23cd", "full"), ("NS2 3ZZ", "sector"), ("NS2 9ZZ", "district"), ("NS7 1AA", "different"),
    (None, "absent"),
])
def test_postcode_levels(postcode: str | None, level: str) -> None:
    assert levels(replace(BASE, postcode=postcode))["postcode"] == level


@pytest.mark.parametrize("sex,level", [("M", "agree"), ("F", "different"), ("U", "absent"), (None, "absent")])
def test_sex_levels(sex: str | None, level: str) -> None:
    assert levels(replace(BASE, sex=sex))["sex"] == level


@pytest.mark.parametrize("stated,level", [
    ("Hilltop Academy", "similar"), ("Hill Top Academy", "similar"), ("hilltop", "similar"),
    ("Riverside Primary School", "different"), (None, "absent"),
])
def test_stated_school_against_the_rolls_school_name(stated: str | None, level: str) -> None:
    assert levels(replace(BASE, school_name=stated))["school"] == level


@pytest.mark.parametrize("number,level", [("9990000018", "exact"), ("9434765919", "different"),
                                          ("9990000017", "absent"), (None, "absent")])
def test_nhs_number_levels(number: str | None, level: str) -> None:
    record = replace(BASE, nhs_number="9990000018")
    assert levels(replace(BASE, nhs_number=number), record)["nhs_number"] == level


def test_every_level_has_a_weight_and_absent_weighs_nothing() -> None:
    weights = Parameters().weights
    for name in FIELDS:
        assert set(weights[name]) == set(LEVELS[name])
        assert weights[name]["absent"] == 0
        ordered = [weights[name][lv] for lv in LEVELS[name] if lv not in ("absent", "transposed")]
        assert ordered[0] == max(ordered) and ordered[-1] == min(ordered)  # agreement first, disagreement last


def test_term_frequency_makes_a_common_name_weigh_less_than_a_rare_one() -> None:
    stats = ReferenceStats(population=4000, given_counts={"oliver": 120, "zebedee": 1}, records=4000)
    common, _ = score(Parameters(), prepare(BASE), prepare(BASE), stats)
    rare_event = replace(BASE, given_name="Zebedee")
    rare, _ = score(Parameters(), prepare(rare_event), prepare(rare_event), stats)
    assert rare - common > 5


def test_parameters_round_trip_and_their_version_is_their_content() -> None:
    params = Parameters()
    again = Parameters.from_json(params.to_json())
    assert again == params and again.version == params.version
    changed = Parameters(params.m, params.u, 0.5)
    assert changed.version != params.version


def test_u_and_m_are_recovered_from_unlabelled_pairs() -> None:
    rng = random.Random(3)
    true_m = {"exact": 0.8, "jaro_winkler_0.95": 0.05, "different": 0.15}

    def pair(match: bool) -> dict[str, str]:
        found: dict[str, str] = {}
        for name in FIELDS:
            probs = (DEFAULT_M if match else DEFAULT_U)[name]
            found[name] = rng.choices(list(probs), weights=list(probs.values()))[0]
        if match:
            found["postcode"] = rng.choices(list(true_m), weights=list(true_m.values()))[0]
            found["postcode"] = {"jaro_winkler_0.95": "sector"}.get(found["postcode"], found["postcode"])
            found["postcode"] = {"exact": "full"}.get(found["postcode"], found["postcode"])
        return found

    randoms = [pair(False) for _ in range(20000)]
    u = estimate_u(randoms, Parameters())
    assert abs(u["sex"]["agree"] - 0.5) < 0.02
    blocked = [pair(True) for _ in range(3000)] + [pair(False) for _ in range(3000)]
    m, share = expectation_maximisation(blocked, Parameters(u=u), fixed=("date_of_birth",))
    assert abs(m["postcode"]["full"] - 0.8) < 0.05 and abs(share - 0.5) < 0.05


def test_thresholds_come_from_settings_and_must_be_ordered() -> None:
    assert Thresholds.from_mapping({"link_threshold": 0.97, "review_threshold": 0.4}).link == 0.97
    with pytest.raises(ValueError, match="review_threshold"):
        Thresholds.from_mapping({"link_threshold": 0.4, "review_threshold": 0.9})


# ---- decisions ---------------------------------------------------------------------------------------------

ROLL = Candidate("pupil", "B1", replace(BASE, school_name=None), upn="B1", school_name="Hilltop Academy")


def decide(event: Identity, *candidates: Candidate) -> MatchOutcome:
    return MATCHER.decide(event, list(candidates), urgent=False, stats=STATS).outcome


@pytest.mark.parametrize("change", [
    {"given_name": "Brennan", "family_name": "Oliver"},  # transposed
    {"family_name": "Brenan"},  # a typo
    {"given_name": "Olvier"},  # a typo
    {"date_of_birth": date(2011, 2, 8)},  # one digit of the date of birth wrong
    {"date_of_birth": date(2011, 3, 2)},  # day and month swapped
    {"given_name": "Ollie", "postcode": "NS2 9ZZ"},  # a nickname and a previous postcode
    {"family_name": "Brennan-Okafor"},  # a hyphenated surname
])
def test_usual_corruptions_are_still_matched(change: dict[str, object]) -> None:
    assert decide(replace(BASE, **change), ROLL) is MatchOutcome.LINKED


def test_one_name_different_with_everything_else_exact_is_linked() -> None:
    assert decide(replace(BASE, given_name="Patrick"), ROLL) is MatchOutcome.LINKED


def test_different_valid_nhs_numbers_are_never_linked() -> None:
    record = Candidate("involvement", "r1", replace(BASE, nhs_number="9990000018"))
    decision = MATCHER.decide(replace(BASE, nhs_number="9434765919"), [record], urgent=False, stats=STATS)
    assert decision.outcome is not MatchOutcome.LINKED and decision.person_key is None


def test_equal_nhs_numbers_with_date_of_birth_and_family_name_disagreeing_go_to_review() -> None:
    record = Candidate("involvement", "r1", replace(BASE, nhs_number="9990000018", family_name="Okafor",
                                                    date_of_birth=date(2015, 9, 9)))
    decision = MATCHER.decide(replace(BASE, nhs_number="9990000018"), [record], urgent=False, stats=STATS)
    assert decision.outcome is MatchOutcome.REVIEW and decision.breakdown["rule"] == "nhs_number_conflict"


def test_an_incomplete_identity_is_matched_on_what_it_carries_and_never_linked() -> None:
    for change in ({"date_of_birth": None}, {"given_name": None}, {"family_name": None}):
        assert decide(replace(BASE, **change), ROLL) is MatchOutcome.REVIEW  # type: ignore[arg-type]
    assert decide(Identity(), ROLL) is MatchOutcome.NO_MATCH


def test_jon_and_john_both_plausible_go_to_review() -> None:
    jon = Candidate("pupil", "J1", Identity("Jon", "Smith", date(2012, 4, 3), "M", None, "NS1 2AB"), upn="J1")
    john = Candidate("pupil", "J2", Identity("John", "Smith", date(2012, 3, 4), "M", None, "NS1 2AB"), upn="J2")
    decision = MATCHER.decide(Identity("Jon", "Smith", date(2012, 3, 4), "M", None, "NS1 2AB"), [jon, john],
                              urgent=False, stats=STATS)
    assert decision.outcome is MatchOutcome.REVIEW and len(decision.breakdown["candidates"]) == 2


def test_twins_and_siblings_at_one_address_are_never_merged_on_a_fuzzy_name() -> None:
    tom = Candidate("pupil", "T1", Identity("Thomas", "Okafor", date(2014, 6, 1), "M", None, "NS4 1AB"), upn="T1")
    tim = Candidate("pupil", "T2", Identity("Timothy", "Okafor", date(2014, 6, 1), "M", None, "NS4 1AB"), upn="T2")
    assert decide(Identity("Tom", "Okafor", date(2014, 6, 1), "M", None, "NS4 1AB"), tom, tim) is MatchOutcome.REVIEW
    decision = MATCHER.decide(Identity("Thomas", "Okafor", date(2014, 6, 1), "M", None, "NS4 1AB"), [tom, tim],
                              urgent=False, stats=STATS)
    assert decision.outcome is MatchOutcome.LINKED and decision.person_key == "upn:T1"


def test_a_no_match_keeps_its_breakdown_per_candidate_and_field() -> None:
    stranger = Identity("Zebedee", "Quixote", date(2009, 12, 12), "M", None, "NS9 9ZZ")
    decision = MATCHER.decide(stranger, [ROLL], urgent=False, stats=STATS)
    assert decision.outcome is MatchOutcome.NO_MATCH
    (candidate,) = decision.breakdown["candidates"]
    assert {c["field"] for c in candidate["comparisons"]} == set(FIELDS)
    assert all({"field", "level", "weight"} <= set(c) for c in candidate["comparisons"])
    assert decision.breakdown["model_version"] == MATCHER.version


# ---- the blocking index -------------------------------------------------------------------------------------

def row(key: str, given: str, family: str, born: date, postcode: str = "NS1 1AA") -> ReferenceRow:
    return ReferenceRow("pupils", key, Identity(given, family, born, "F", None, postcode), upn=key)


def test_the_index_fetches_on_every_key_and_applies_changes_without_a_rebuild() -> None:
    index = ReferenceIndex()
    index.load([row("A", "Amelia", "Hartley", date(2013, 5, 14)), row("B", "Ruby", "Penhale", date(2014, 1, 9))])

    def found(identity: Identity) -> set[str]:
        return {c.record_key for c in index.candidates(identity)}

    assert found(Identity("Hartley", "Amelia", date(2013, 5, 14))) == {"A"}  # transposed
    assert found(Identity("Amelia", "Hartlee", date(2013, 9, 14))) == {"A"}  # family typo and a date error
    assert found(Identity("Amelia", "Smith", date(2013, 5, 14))) == {"A"}  # surname changed
    assert found(Identity("Zoe", "Quixote", date(2010, 1, 1))) == set()  # nothing in common
    assert found(Identity(None, None, date(2013, 5, 14))) == {"A"}  # the date of birth alone
    assert found(Identity("Amelia", "Hartley", None, postcode="NS1 1ZZ")) == {"A"}  # no date of birth
    records = index.records
    index.add(row("C", "Kit", "Marlowe", date(2014, 2, 26)))
    index.remove("pupils", "A")
    assert found(Identity("Kit", "Marlowe", date(2014, 2, 26))) == {"C"}
    assert found(Identity("Amelia", "Hartley", date(2013, 5, 14))) == set()
    assert index.records is records and index.live == 2
