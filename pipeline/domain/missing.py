"""Pathway 2 rules: missing episodes, return home interviews, trigger meetings and the still-missing ladder.

Pure. An episode is a fold of its events that comes out the same whatever order they arrive in: the
effective risk grade is the latest by its own timestamp, flags are only ever added, and the found time is
the found event's. Whether the episode was ever graded high or flagged (and from when) is kept too, so the
head of service, the strategy discussion and the trigger meeting follow from facts, not from arrival order.
From the folded episode the rules derive who is told and which deadlines should be
open; the service makes the store match, idempotently.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

from pipeline.domain.calendar import Duration, Timescale, parse_timescale
from pipeline.domain.frozen import quick_init
from pipeline.domain.model import (
    DSL_ROLE,
    FRONT_DOOR,
    HEAD_OF_SERVICE,
    IRO_ROLE,
    MISSING_COORDINATOR,
    SCIES,
    WORKER_ROLE,
    ChildFacts,
    Contact,
    Directory,
    PlannedDeadline,
    PlannedNotification,
    iso_date,
    iso_instant,
)
from pipeline.domain.policy import Policy
from pipeline.domain.self_harm import age_on

PATHWAY = "missing"
HIGH = "HIGH"


@quick_init
@dataclass(frozen=True)
class Episode:
    episode_id: str
    child_id: str | None = None
    reported_at: datetime | None = None
    last_seen_at: datetime | None = None
    missing_from: str | None = None
    risk_grade: str | None = None
    risk_graded_at: datetime | None = None
    flags: frozenset[str] = field(default_factory=frozenset)
    found_at: datetime | None = None
    returned_to: str | None = None
    return_interview_outcome: str | None = None
    # The earliest event time at which the episode was graded HIGH, and at which it was first flagged.
    graded_high_at: datetime | None = None
    flagged_at: datetime | None = None

    @property
    def reported(self) -> bool:
        return self.reported_at is not None

    @property
    def found(self) -> bool:
        return self.found_at is not None

    @property
    def raised_at(self) -> datetime | None:
        """When the episode first became high-risk or flagged (by its events' own times), if it ever did."""
        times = [t for t in (self.graded_high_at, self.flagged_at) if t is not None]
        return min(times) if times else None


def _earliest(current: datetime | None, at: datetime) -> datetime:
    return at if current is None or at < current else current


def _graded(episode: Episode, grade: str | None, flags: frozenset[str], at: datetime,
            changes: dict[str, Any]) -> Episode:
    """The episode with ``changes`` and what an event at ``at`` with this grade and these flags changes, in one
    ``replace``: when it was first graded HIGH or flagged (the earliest such time is kept), and its grade, unless
    a later event graded it already."""
    if grade == HIGH:
        changes["graded_high_at"] = _earliest(episode.graded_high_at, at)
    if flags:
        changes["flagged_at"] = _earliest(episode.flagged_at, at)
    if grade is not None and (episode.risk_graded_at is None or at >= episode.risk_graded_at):
        changes["risk_grade"], changes["risk_graded_at"] = grade, at
    return replace(episode, **changes)


def fold(episode: Episode, event_type: str, record: dict[str, Any]) -> Episode:
    """Merge one event's facts into the episode. Commutative for the episode's own events."""
    if event_type == "missing-reported":
        flags = frozenset(record.get("exploitation_flags") or ())
        return _graded(episode, record["risk_grade"], flags, record["reported_at"], {
            "reported_at": record["reported_at"], "last_seen_at": record["last_seen_at"],
            "missing_from": record["missing_from"], "flags": episode.flags | flags})
    if event_type == "missing-updated":
        flags = frozenset(record.get("exploitation_flags") or ())
        return _graded(episode, record.get("risk_grade"), flags, record["updated_at"],
                       {"flags": episode.flags | flags})
    if event_type == "missing-found":
        return replace(episode, found_at=record["found_at"], returned_to=record["returned_to"])
    if event_type == "return-interview-recorded":
        return replace(episode, return_interview_outcome=record["outcome"])
    return episode


def high_risk(episode: Episode, date_of_birth: date | None, policy: Policy) -> bool:
    """High grade now, or a child of 13 or under (configurable) with any exploitation flag: which
    still-missing ladder runs."""
    if episode.risk_grade == HIGH:
        return True
    if episode.flags and date_of_birth is not None and episode.reported_at is not None:
        limit = int(policy.setting("missing", "exploitation_high_risk_max_age", default=13))
        return age_on(date_of_birth, policy.calendar.local(episode.reported_at).date()) <= limit
    return False


def ever_high_risk(episode: Episode, date_of_birth: date | None, policy: Policy) -> bool:
    """Graded HIGH by any of its events (whatever the grade now), or high-risk by age and flag: a high-risk
    episode for the head of service, the strategy discussion and the trigger meeting, whatever the order
    its events arrived in."""
    return episode.graded_high_at is not None or high_risk(episode, date_of_birth, policy)


@functools.lru_cache(maxsize=64)
def _parsed_text(value: str) -> Timescale:
    """A timescale the configuration writes as text (``PT24H``), parsed once: the rules ask on every event."""
    return parse_timescale(value)


def _duration(policy: Policy, *path: str, default: timedelta) -> timedelta:
    value = policy.setting(*path)
    if value is None:
        return default
    parsed = _parsed_text(value) if isinstance(value, str) else parse_timescale(value)
    if not isinstance(parsed, Duration):
        raise ValueError(f"{'.'.join(path)} must be a plain duration")
    return parsed.delta


_TRIGGER = "trigger:"


def trigger_subject(episode_id: str) -> str:
    """The subject of the trigger meeting raised on an episode (open or closed, the child's or still unbound): the
    deadline's (kind, subject) is unique, so an episode raises one at most."""
    return _TRIGGER + episode_id


def episode_of_subject(subject_id: str) -> str:
    """The episode a deadline's subject is about: its own (the subject is the episode id) or the trigger meeting
    raised on it; any other subject (an event, a notification) is returned as it is."""
    return subject_id.removeprefix(_TRIGGER)


def trigger_reason(episode: Episode, is_high: bool, child_episodes: list[Episode], now: datetime,
                   policy: Policy) -> str | None:
    """Why this episode needs a trigger meeting, or None."""
    criteria = policy.setting("missing", "trigger_meeting_criteria", default={}) or {}
    if not episode.reported:
        return None
    if criteria.get("high_risk", True) and is_high:
        return "high-risk episode"
    if criteria.get("exploitation_flag", True) and episode.flags:
        return "exploitation flag"
    longer = _duration(policy, "missing", "trigger_meeting_criteria", "longer_than", default=timedelta(hours=24))
    assert episode.last_seen_at is not None
    if (episode.found_at or now) - episode.last_seen_at >= longer:
        return "missing for more than 24 hours since last seen"
    needed = int(criteria.get("episodes_in_window", 3))
    window = _duration(policy, "missing", "trigger_meeting_criteria", "window", default=timedelta(days=30))
    assert episode.reported_at is not None
    times = sorted(e.reported_at for e in child_episodes if e.reported_at is not None)
    for start in (t for t in times if episode.reported_at - window <= t <= episode.reported_at):
        if sum(1 for t in times if start <= t <= start + window) >= needed:
            return f"{needed} or more episodes within {window.days} days"
    return None


def _notification(key: str, role: str, ref: str, contact: Contact, reason: str, urgency: str,
                  content: dict[str, Any], school_urn: str | None = None) -> PlannedNotification:
    return PlannedNotification(key=key, recipient_role=role, recipient_ref=ref, contact=contact, reason=reason,
                               urgency=urgency, content=content, school_urn=school_urn)


def _team(directory: Directory, code: str) -> Contact:
    return directory.teams.get(code) or Contact(None)


def report_notifications(episode: Episode, facts: ChildFacts | None, is_high: bool, directory: Directory,
                         policy: Policy) -> list[PlannedNotification]:
    """Who is told when an episode is reported. Keys are stable, so repeats are recognised."""
    assert episode.reported_at is not None
    urgency = "URGENT" if is_high or episode.flags else "ROUTINE"
    base: dict[str, Any] = {"episode_id": episode.episode_id, "reported_at": iso_instant(episode.reported_at),
            "last_seen_at": iso_instant(episode.last_seen_at) if episode.last_seen_at else None,
            "risk_grade": episode.risk_grade, "missing_from": episode.missing_from,
            "exploitation_flags": sorted(episode.flags)}
    if facts is not None:
        base["child"] = {"given_name": facts.identity.given_name, "family_name": facts.identity.family_name,
                         "date_of_birth": iso_date(facts.identity.date_of_birth)}
    key = f"missing:{episode.episode_id}:reported"
    planned = [_notification(f"{key}:coordinator", MISSING_COORDINATOR, MISSING_COORDINATOR,
                             _team(directory, MISSING_COORDINATOR), "child reported missing", urgency, base)]
    workers = [i for i in (facts.involvements if facts else ()) if i.worker_email]
    for involvement in workers:
        planned.append(_notification(f"{key}:worker:{involvement.worker_email}", WORKER_ROLE,
                                     str(involvement.worker_email), Contact(involvement.worker_email),
                                     "allocated worker: child reported missing", urgency, base))
    if not workers:
        planned.append(_notification(f"{key}:front_door", FRONT_DOOR, FRONT_DOOR, _team(directory, FRONT_DOOR),
                                     "child reported missing, no allocated worker", urgency, base))
    for involvement in (facts.involvements if facts else ()):
        if involvement.status != "CHILD_LOOKED_AFTER":
            continue
        if involvement.placing_la:
            code = f"LA_{involvement.placing_la}"
            planned.append(_notification(f"{key}:{code}", code, code, _team(directory, code),
                                         "looked-after child placed here by another council", urgency, base))
        # With no IRO on file the notification still goes out: the handler sends it to the front door.
        iro = involvement.iro_email or "none on file"
        planned.append(_notification(f"{key}:iro:{iro}", IRO_ROLE, involvement.iro_email or FRONT_DOOR,
                                     Contact(involvement.iro_email), "independent reviewing officer",
                                     urgency, base))
    if is_high or episode.flags:
        planned.append(_notification(f"{key}:head_of_service", HEAD_OF_SERVICE, HEAD_OF_SERVICE,
                                     _team(directory, HEAD_OF_SERVICE), "high risk or exploitation: told at once",
                                     "URGENT", base))
    planned.extend(school_notifications(episode, facts, policy, "missing", directory))
    return planned


def school_notifications(episode: Episode, facts: ChildFacts | None, policy: Policy,
                         what: str, directory: Directory) -> list[PlannedNotification]:
    """During term the school is told only that the pupil is missing, and later found, routed as self-harm
    routing does: an in-area state school's DSL directly; an independent or out-of-area school through the
    SCiES team, who contact that school (the same minimal content, with which school it is).

    "Found" follows "missing": both go by the school's term on the day of the report, so a school told that its
    pupil is missing on the last day of term hears in the holiday that the pupil is found, and a school never
    told (the report fell in its holiday) is not told "found" either, whenever that is."""
    if facts is None:
        return []
    assert episode.reported_at is not None
    day = policy.calendar.local(episode.reported_at).date()
    planned = []
    for enrolment in facts.enrolments:
        school = enrolment.school
        if not policy.calendar.in_term(day, school.urn):
            continue
        content: dict[str, Any] = {
            "pupil": {"given_name": enrolment.identity.given_name, "family_name": enrolment.identity.family_name,
                      "date_of_birth": iso_date(enrolment.identity.date_of_birth), "upn": enrolment.upn},
            "status": what}
        if school.in_area and school.school_type == "STATE":
            planned.append(_notification(f"missing:{episode.episode_id}:{what}:dsl:{school.urn}", DSL_ROLE,
                                         school.urn, school.dsl, f"pupil {what}", "ROUTINE", content, school.urn))
            continue
        kind = "independent" if school.school_type == "INDEPENDENT" else "out-of-area"
        content["school"] = {"urn": school.urn, "name": school.name}
        planned.append(_notification(f"missing:{episode.episode_id}:{what}:scies:{school.urn}", SCIES, SCIES,
                                     _team(directory, SCIES),
                                     f"pupil {what}: on the roll of an {kind} school ({school.urn})", "ROUTINE",
                                     content))
    return planned


def found_notifications(episode: Episode, facts: ChildFacts | None, directory: Directory,
                        policy: Policy) -> list[PlannedNotification]:
    assert episode.found_at is not None
    content = {"episode_id": episode.episode_id, "found_at": iso_instant(episode.found_at),
               "returned_to": episode.returned_to}
    planned = [_notification(f"missing:{episode.episode_id}:found:coordinator", MISSING_COORDINATOR,
                             MISSING_COORDINATOR, _team(directory, MISSING_COORDINATOR), "child found", "ROUTINE",
                             content)]
    for involvement in (facts.involvements if facts else ()):
        if involvement.worker_email:
            planned.append(_notification(f"missing:{episode.episode_id}:found:worker:{involvement.worker_email}",
                                         WORKER_ROLE, involvement.worker_email, Contact(involvement.worker_email),
                                         "child found: return home interview due", "ROUTINE", content))
    if episode.reported:
        planned.extend(school_notifications(episode, facts, policy, "found", directory))
    return planned


def match_review(episode: Episode, is_high: bool, reason: str, directory: Directory, policy: Policy,
                 now: datetime) -> tuple[PlannedNotification, PlannedDeadline]:
    """An uncertain match: the front door decides which child this is, at once for a high-risk or flagged
    episode, otherwise within the review window; nothing goes to a school or worker until it does."""
    urgent = is_high or bool(episode.flags)
    item = PlannedNotification(
        key=f"missing:{episode.episode_id}:review", recipient_role=FRONT_DOOR, recipient_ref=FRONT_DOOR,
        contact=_team(directory, FRONT_DOOR), reason=f"match review: {reason}", urgency="URGENT" if urgent else
        "ROUTINE", content={"episode_id": episode.episode_id, "status": "match review"}, kind="review")
    due = policy.due("match_review_urgent" if urgent else "match_review", now)
    return item, PlannedDeadline("match_review", item.key, due, policy.ladder("match_review", due))


def episode_deadlines(episode: Episode, is_high: bool, policy: Policy) -> tuple[list[PlannedDeadline], set[str]]:
    """The deadlines this episode should have, and the kinds that should now be closed. ``is_high`` (high-risk
    now) picks the still-missing ladder; the strategy discussion runs from when the episode first became
    high-risk or flagged."""
    wanted: list[PlannedDeadline] = []
    close: set[str] = set()
    if episode.reported and not episode.found:
        assert episode.reported_at is not None and episode.last_seen_at is not None
        ladder = policy.ladder("still_missing_high_risk" if is_high else "still_missing", episode.reported_at)
        if ladder:
            wanted.append(PlannedDeadline("still_missing", "episode", ladder[0].at, ladder))
        check_due = policy.due("episode_length_check", episode.last_seen_at)
        wanted.append(PlannedDeadline("episode_length_check", "episode", check_due,
                                      policy.ladder("episode_length_check", check_due)))
    if episode.found:
        close |= {"still_missing", "episode_length_check"}
        assert episode.found_at is not None
        due = policy.due("return_interview", episode.found_at)
        wanted.append(PlannedDeadline("return_interview", "episode", due, policy.ladder("return_interview", due)))
    if episode.return_interview_outcome is not None:
        close.add("return_interview")
    if episode.reported and episode.raised_at is not None:
        due = policy.due("strategy_discussion", episode.raised_at)
        wanted.append(PlannedDeadline("strategy_discussion", "episode", due, policy.ladder("strategy_discussion", due)))
    return wanted, close
