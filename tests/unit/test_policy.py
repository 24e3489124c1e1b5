"""Timescales and ladders come from config, per council, and every default ladder step lands where domain.md says."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, timezone
from pathlib import Path

import pytest

from pipeline.domain.calendar import Duration, SchoolDays, WorkingDays
from pipeline.domain.policy import Policy
from pipeline.settings import Settings, deep_merge

pytestmark = pytest.mark.unit

DEFAULTS = Policy.from_mapping(Settings().rules)
WEDNESDAY_NOON = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_acknowledgement_ladder_defaults() -> None:
    steps = DEFAULTS.ladder("self_harm_acknowledgement", WEDNESDAY_NOON, "100001")
    assert [(s.at.hour, s.at.minute, s.notify, s.action) for s in steps] == [
        (12, 0, ("dsl", "deputy_dsl"), "reminder"),
        (14, 0, ("SCIES",), "escalation"),
        (15, 30, ("EDUCATION_SAFEGUARDING_LEAD",), "escalation"),
    ]


def test_the_education_safeguarding_lead_step_follows_the_councils_end_of_the_school_day() -> None:
    rules = deep_merge(Settings().rules, {"calendar": {"school_day_end": "15:05"}})
    steps = Policy.from_mapping(rules).ladder("self_harm_acknowledgement", WEDNESDAY_NOON, "100001")
    assert (steps[-1].at.hour, steps[-1].at.minute) == (15, 5)


def test_two_working_hours_after_a_friday_afternoon_due_time_is_monday() -> None:
    friday = datetime(2026, 11, 27, 16, 0, tzinfo=UTC)
    steps = DEFAULTS.ladder("self_harm_acknowledgement", friday)
    assert steps[1].at == datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


def test_review_and_consent_ladders() -> None:
    review = DEFAULTS.ladder("match_review", WEDNESDAY_NOON)
    assert [(s.at, s.notify) for s in review] == [(WEDNESDAY_NOON, ("FRONT_DOOR_MANAGER",)),
                                                  (WEDNESDAY_NOON + timedelta(hours=1), ("HEAD_OF_SERVICE",))]
    consent = DEFAULTS.ladder("consent_decision", WEDNESDAY_NOON)
    assert [s.notify for s in consent] == [("FRONT_DOOR_MANAGER",), ("HEAD_OF_SERVICE",)]


def test_config_file_overrides_one_timescale_and_keeps_the_rest(tmp_path: Path) -> None:
    override = tmp_path / "council.yaml"
    override.write_text("timescales:\n  self_harm_acknowledgement: PT10S\ncouncil:\n  la_code: '123'\n")
    policy = Policy.from_mapping(Settings(config=override).rules)
    assert policy.timescales["self_harm_acknowledgement"] == Duration(timedelta(seconds=10))
    assert policy.la_code == "123"
    assert policy.ladders["self_harm_acknowledgement_ladder"] == DEFAULTS.ladders["self_harm_acknowledgement_ladder"]
    assert policy.postcode_districts == DEFAULTS.postcode_districts


def test_a_timescale_may_change_its_form_and_a_ladder_may_name_any_team(tmp_path: Path) -> None:
    """A timescale written as a mapping is one value: {working_days, at} replaces the default {working_hours}
    (merged, the two made neither). A ladder may name a team as the teams file does ("Crewe CIN/CP 2"); only a
    lower-case word that is not a role ("dls") is refused."""
    override = tmp_path / "council.yaml"
    override.write_text("timescales:\n  match_review: {working_days: 0, at: '17:00'}\n"
                        "  match_review_ladder:\n    - {after: PT0S, notify: [Crewe CIN/CP 2], action: escalation}\n")
    policy = Policy.from_mapping(Settings(config=override).rules)
    assert policy.due("match_review", WEDNESDAY_NOON).hour == 17
    assert [s.notify for s in policy.ladder("match_review", WEDNESDAY_NOON)] == [("Crewe CIN/CP 2",)]
    slip = deep_merge(Settings().rules, {"timescales": {"match_review_ladder": [
        {"after": "PT0S", "notify": ["dls"], "action": "escalation"}]}})
    with pytest.raises(ValueError, match=r"timescales\.match_review_ladder: a step notifies a role .* not 'dls'"):
        Policy.from_mapping(slip)


def test_a_bad_timescale_names_its_key() -> None:
    rules = deep_merge(Settings().rules, {"timescales": {"self_harm_acknowledgement": "tomorrow"}})
    with pytest.raises(ValueError, match="timescales.self_harm_acknowledgement"):
        Policy.from_mapping(rules)


def test_deep_merge_replaces_lists_and_merges_mappings() -> None:
    merged = deep_merge({"a": {"b": 1, "c": [1, 2]}, "d": 1}, {"a": {"c": [3]}, "e": 2})
    assert merged == {"a": {"b": 1, "c": [3]}, "d": 1, "e": 2}


def test_unquoted_yaml_clock_times_are_hours_and_minutes(tmp_path: Path) -> None:
    # PyYAML reads an unquoted 12:00 as the sexagesimal integer 720 (minutes), and 9:30 as 570.
    override = tmp_path / "council.yaml"
    override.write_text("timescales:\n  self_harm_acknowledgement: {school_days: 1, at: 12:00}\n"
                        "  trigger_meeting: {working_days: 3, at: 9:30}\n"
                        "calendar:\n  school_day_end: 15:30\n  working_hours: {start: 9:00, end: 17:00}\n")
    rules = Settings(config=override).rules
    assert rules["timescales"]["self_harm_acknowledgement"]["at"] == 720  # what YAML hands over
    policy = Policy.from_mapping(rules)
    assert policy.timescales["self_harm_acknowledgement"] == SchoolDays(1, time(12, 0))
    assert policy.timescales["trigger_meeting"] == WorkingDays(3, time(9, 30))
    config = policy.calendar.config
    assert (config.school_day_end, config.working_day_start, config.working_day_end) == (
        time(15, 30), time(9, 0), time(17, 0))
    # Due 12:00 on the next school day, as with the quoted default.
    assert policy.due("self_harm_acknowledgement", WEDNESDAY_NOON) == DEFAULTS.due(
        "self_harm_acknowledgement", WEDNESDAY_NOON)


def test_a_ladder_of_bare_timescales_takes_notify_and_action_from_the_default_ladder(tmp_path: Path) -> None:
    override = tmp_path / "council.yaml"
    override.write_text("timescales:\n  self_harm_acknowledgement_ladder: [PT10S, PT20S, {working_hours: 1}]\n"
                        "  return_interview_ladder:\n    - PT1H\n"
                        "    - {after: PT2H, notify: [DIRECTOR], action: escalation}\n")
    policy = Policy.from_mapping(Settings(config=override).rules)
    steps = policy.ladder("self_harm_acknowledgement", WEDNESDAY_NOON, "100001")
    assert [(s.at, s.notify, s.action) for s in steps] == [
        (WEDNESDAY_NOON + timedelta(seconds=10), ("dsl", "deputy_dsl"), "reminder"),
        (WEDNESDAY_NOON + timedelta(seconds=20), ("SCIES",), "escalation"),
        (WEDNESDAY_NOON + timedelta(hours=1), ("EDUCATION_SAFEGUARDING_LEAD",), "escalation"),
    ]
    # The default's first return-interview step is a reminder to the assignee (a `before` step there).
    assert [(s.at, s.notify, s.action) for s in policy.ladder("return_interview", WEDNESDAY_NOON)] == [
        (WEDNESDAY_NOON + timedelta(hours=1), ("assignee",), "reminder"),
        (WEDNESDAY_NOON + timedelta(hours=2), ("DIRECTOR",), "escalation"),
    ]


def test_a_bare_timescale_beyond_the_default_ladder_is_a_configuration_error_naming_the_key() -> None:
    rules = deep_merge(Settings().rules, {"timescales": {"match_review_ladder": ["PT0S", "PT1H", "PT2H"]}})
    with pytest.raises(ValueError, match=r"timescales\.match_review_ladder: step 3 .*default ladder has 2 step"):
        Policy.from_mapping(rules)
    with pytest.raises(ValueError, match=r"timescales\.my_own_ladder: step 1"):
        Policy.from_mapping(deep_merge(Settings().rules, {"timescales": {"my_own_ladder": ["PT1H"]}}))


def _general_ladder(policy: Policy, name: str, base: datetime, school_urn: str | None = None) -> tuple[object, ...]:
    """The ladder as the calendar resolves each rung, sorted: what ``ladder`` gave before it kept anything."""
    steps = [(base - rule.before if rule.before is not None else policy.calendar.resolve(rule.after, base, school_urn),
              rule.notify, rule.action) for rule in policy.ladders[f"{name}_ladder"]]
    return tuple(sorted(steps, key=lambda step: step[0]))


@pytest.mark.parametrize("name", sorted(name.removesuffix("_ladder") for name in DEFAULTS.ladders))
def test_a_ladder_of_durations_is_the_same_instants_as_the_calendar_resolves(name: str) -> None:
    for base in (WEDNESDAY_NOON, datetime(2026, 3, 28, 23, 30, tzinfo=UTC),  # the night the clocks go forward
                 datetime(2026, 11, 27, 16, 0, tzinfo=UTC), datetime(2026, 11, 25, 13, 0, tzinfo=timezone(
                     timedelta(hours=1)))):
        steps = DEFAULTS.ladder(name, base)
        assert [(s.at, s.notify, s.action) for s in steps] == list(_general_ladder(DEFAULTS, name, base))
        assert [s.at.utcoffset() for s in steps] == [at.utcoffset() for at, _, _ in _general_ladder(DEFAULTS, name,
                                                                                                     base)]


def test_a_before_rung_is_placed_ahead_of_the_base_in_firing_order() -> None:
    rules = deep_merge(Settings().rules, {"timescales": {"return_interview_ladder": [
        {"after": "PT1H", "notify": ["assignee"], "action": "escalation"},
        {"before": "PT24H", "notify": ["assignee"], "action": "reminder"}]}})
    steps = Policy.from_mapping(rules).ladder("return_interview", WEDNESDAY_NOON)
    assert [(s.at, s.action) for s in steps] == [(WEDNESDAY_NOON - timedelta(hours=24), "reminder"),
                                                 (WEDNESDAY_NOON + timedelta(hours=1), "escalation")]


@pytest.mark.parametrize("action", ["escalate", "review", ""])
def test_a_rung_whose_action_the_sweep_cannot_do_is_refused_with_its_ladder_named(action: str) -> None:
    rules = deep_merge(Settings().rules, {"timescales": {"return_interview_ladder": [
        {"after": "PT1H", "notify": ["assignee"], "action": action}]}})
    with pytest.raises(ValueError, match=r"timescales\.return_interview_ladder: a step's action is one of "
                                         r"reminder, escalation, check_trigger_meeting"):
        Policy.from_mapping(rules)


def test_a_naive_base_is_still_rejected() -> None:
    with pytest.raises(ValueError, match="naive"):
        DEFAULTS.ladder("return_interview", datetime(2026, 11, 25, 12, 0))


def test_settings_kept_per_policy_and_a_new_configuration_is_seen() -> None:
    assert DEFAULTS.setting("missing", "return_interview_assignee") == "RHI_PROVIDER"
    assert DEFAULTS.setting("missing", "return_interview_assignee") == "RHI_PROVIDER"  # kept: the same answer
    assert DEFAULTS.setting("missing", "no_such_setting", default=7) == 7
    assert DEFAULTS.setting("missing", "no_such_setting", default=8) == 8  # a missing path keeps no default
    assert DEFAULTS.setting("missing", "no_such_setting") is None
    changed = Policy.from_mapping(deep_merge(Settings().rules, {"missing": {"return_interview_assignee": "worker"}}))
    assert changed.setting("missing", "return_interview_assignee") == "worker"
    assert DEFAULTS.setting("missing", "return_interview_assignee") == "RHI_PROVIDER"


def test_a_changed_ladder_is_seen_by_a_new_policy() -> None:
    assert DEFAULTS.ladder("return_interview", WEDNESDAY_NOON)[0].at == WEDNESDAY_NOON + timedelta(days=-1)
    rules = deep_merge(Settings().rules, {"timescales": {"return_interview_ladder": [
        {"after": "PT2H", "notify": ["assignee"], "action": "escalation"}]}})
    assert [s.at for s in Policy.from_mapping(rules).ladder("return_interview", WEDNESDAY_NOON)] == [
        WEDNESDAY_NOON + timedelta(hours=2)]


def test_a_ladder_in_working_time_kept_by_base_is_the_same_as_counted_afresh() -> None:
    policy = Policy.from_mapping(Settings().rules)
    friday = datetime(2026, 11, 27, 16, 0, tzinfo=UTC)
    for base, urn in ((WEDNESDAY_NOON, "100001"), (friday, None), (friday, "100001"), (WEDNESDAY_NOON, None)):
        first = policy.ladder("self_harm_acknowledgement", base, urn)
        assert policy.ladder("self_harm_acknowledgement", base, urn) == first  # kept
        assert first == Policy.from_mapping(Settings().rules).ladder("self_harm_acknowledgement", base, urn)
        assert [(s.at, s.notify, s.action) for s in first] == list(_general_ladder(policy, "self_harm_acknowledgement",
                                                                                   base, urn))
    # The same instant in another zone is its own entry: a rung's instants keep the zone they were counted in.
    plus_one = WEDNESDAY_NOON.astimezone(timezone(timedelta(hours=1)))
    assert [s.at.utcoffset() for s in policy.ladder("trigger_meeting", plus_one)] == [
        at.utcoffset() for at, _, _ in _general_ladder(policy, "trigger_meeting", plus_one)]
    # A council whose school day ends earlier: a new Policy, its own ladders.
    earlier = Policy.from_mapping(deep_merge(Settings().rules, {"calendar": {"school_day_end": "15:05"}}))
    assert earlier.ladder("self_harm_acknowledgement", WEDNESDAY_NOON, "100001")[-1].at.minute == 5
    assert policy.ladder("self_harm_acknowledgement", WEDNESDAY_NOON, "100001")[-1].at.minute == 30
