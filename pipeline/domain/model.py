"""Plain values the rules work on: identities, reference facts, contacts and the plans the rules return.

Nothing here does I/O. The store turns rows into these, the rules turn these into plans, and the
handlers persist the plans.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from pipeline.domain.frozen import quick_init


class Role(StrEnum):
    PRODUCER = "producer"
    DSL = "dsl"
    WORKER = "worker"
    TEAM = "team"
    MANAGER = "manager"
    ADMIN = "admin"


class EventStatus(StrEnum):
    ACCEPTED = "accepted"
    PROCESSED = "processed"
    REVIEW = "review"
    WITHHELD = "withheld"
    DEAD_LETTERED = "dead_lettered"


class NotificationStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    VIEWED = "viewed"
    ACKNOWLEDGED = "acknowledged"
    WITHHELD = "withheld"
    FAILED = "failed"


class NotificationKind(StrEnum):
    ALERT = "alert"
    REMINDER = "reminder"
    ESCALATION = "escalation"
    REVIEW = "review"
    DECISION = "decision"


LADDER_KINDS = (NotificationKind.REMINDER, NotificationKind.ESCALATION)  # what the sweep sends


class DeadlineKind(StrEnum):
    """What a deadline waits for (the stored ``deadline.kind``; each has a ladder of the same name in config)."""

    SELF_HARM_ACKNOWLEDGEMENT = "self_harm_acknowledgement"
    SELF_HARM_HOLIDAY_SCIES = "self_harm_holiday_scies"
    MATCH_REVIEW = "match_review"
    CONSENT_DECISION = "consent_decision"
    STILL_MISSING = "still_missing"
    EPISODE_LENGTH_CHECK = "episode_length_check"
    RETURN_INTERVIEW = "return_interview"
    STRATEGY_DISCUSSION = "strategy_discussion"
    TRIGGER_MEETING = "trigger_meeting"
    DELIVERY_FAILURE = "delivery_failure"


class DeadlineState(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class MatchOutcome(StrEnum):
    LINKED = "linked"
    REVIEW = "review"
    NO_MATCH = "no_match"


# Team codes the rules route to (rows of the teams CSV).
FRONT_DOOR = "FRONT_DOOR"
FRONT_DOOR_MANAGER = "FRONT_DOOR_MANAGER"
SCIES = "SCIES"
EHE_MANAGER = "EHE_MANAGER"
CME = "CME"
EDUCATION_SAFEGUARDING_LEAD = "EDUCATION_SAFEGUARDING_LEAD"
HEAD_OF_SERVICE = "HEAD_OF_SERVICE"
DIRECTOR = "DIRECTOR"
MISSING_COORDINATOR = "MISSING_COORDINATOR"
RHI_PROVIDER = "RHI_PROVIDER"
# The teams the routing code names itself (the ladders in config name more: see Policy.routed_teams).
TEAMS_IN_CODE = (FRONT_DOOR, FRONT_DOOR_MANAGER, SCIES, EHE_MANAGER, CME, HEAD_OF_SERVICE, MISSING_COORDINATOR)

# Recipient roles that are people rather than teams.
DSL_ROLE = "dsl"
DEPUTY_DSL_ROLE = "deputy_dsl"
WORKER_ROLE = "worker"
TEAM_MANAGER_ROLE = "team_manager"
IRO_ROLE = "iro"
# Who a school's notification is addressed to, and who a worker's caseload ones are: the scopes of the contract
# (a DSL sees their school's, a worker those addressed to them) and who may acknowledge are written with these.
SCHOOL_ROLES = (DSL_ROLE, DEPUTY_DSL_ROLE)
CASELOAD_ROLES = (WORKER_ROLE, TEAM_MANAGER_ROLE, IRO_ROLE)
# A ladder step's `notify` entries that are resolved to people when the step fires, not team codes.
PERSON_ROLES = frozenset({DSL_ROLE, DEPUTY_DSL_ROLE, WORKER_ROLE, TEAM_MANAGER_ROLE, IRO_ROLE, "assignee"})


@dataclass(frozen=True, slots=True)  # slots: the match index holds one per reference record
class Identity:
    """A child as one system knows them. An event's child may lack any field (the sender did not know it);
    reference records always carry the names and date of birth."""

    given_name: str | None = None
    family_name: str | None = None
    date_of_birth: date | None = None
    sex: str | None = None
    nhs_number: str | None = None
    postcode: str | None = None
    school_name: str | None = None


def iso_date(value: date | None) -> str | None:
    """A date as YYYY-MM-DD, or None when it is not known."""
    return value.isoformat() if value is not None else None


# The text of UTC instants formatted lately, by value: a batch's records repeat a few (its ``now``, the steps of the
# deadlines worked out from it, an episode's times) and ``isoformat`` formats through C's printf, about 10,000
# instructions each. UTC ones only: an instant of another zone equals (and hashes as) the same instant in UTC, whose
# text differs, and two of one zone that differ only in ``fold`` compare equal though they are different instants.
# Plain datetimes only: a subclass equals (and hashes as) the plain one with its value, and may format itself.
utc_iso_text = functools.lru_cache(maxsize=4096)(datetime.isoformat)


def iso_instant(value: datetime) -> str:
    """``value.isoformat()``: the same text, kept by value for instants in UTC."""
    return utc_iso_text(value) if value.tzinfo is UTC and type(value) is datetime else value.isoformat()


@dataclass(frozen=True, slots=True)
class Candidate:
    """A reference record that might be the event's child."""

    source: str  # pupil | ehe | involvement
    record_key: str  # the source's own key (UPN, row key)
    identity: Identity
    upn: str | None = None
    school_urn: str | None = None
    school_name: str | None = None
    prepared: Any = field(default=None, compare=False, repr=False)  # the matcher's normalised form, if made


@quick_init
@dataclass(frozen=True)
class MatchDecision:
    outcome: MatchOutcome
    person_key: str | None
    score: float
    breakdown: dict[str, Any]
    reason: str
    urgent_review: bool = False
    # Person keys of breakdown["candidates"], in the same order (kept out of the breakdown itself: a UPN or NHS
    # number is never shown); the handler turns them into opaque child ids.
    candidate_keys: tuple[str, ...] = ()


@quick_init
@dataclass(frozen=True)
class Contact:
    email: str | None
    phone: str | None = None

    @property
    def reachable(self) -> bool:
        return bool(self.email or self.phone)


@dataclass(frozen=True)
class School:
    urn: str
    name: str
    la_code: str
    in_area: bool
    school_type: str  # STATE | INDEPENDENT
    dsl: Contact
    deputy: Contact


def on_roll(on_roll_from: date | None, on_roll_to: date | None, day: date) -> bool:
    """Whether a pupil-roll record (its first and last day, either open) covers ``day``."""
    return (on_roll_from is None or on_roll_from <= day) and (on_roll_to is None or day <= on_roll_to)


def latest_enrolment_first(rows: Iterable[Any]) -> list[Any]:
    """A child's pupil-roll rows (one per enrolment, with ``ended_at``, ``on_roll_from`` and ``row_key``), those
    still in the latest file first, then the latest start first (an unknown start after the known ones): the first
    is the record a child's identity is taken from."""
    return sorted(rows, key=lambda row: (row.ended_at is not None, row.on_roll_from is None,
                                         -row.on_roll_from.toordinal() if row.on_roll_from else 0, row.row_key))


@quick_init
@dataclass(frozen=True)
class Enrolment:
    """A pupil-roll record current on the day that matters."""

    upn: str
    school: School
    identity: Identity


def roll_on(rows: Sequence[Any], school_of: Callable[[str], School | None], identity_of: Callable[[Any], Identity],
            day: date) -> tuple[tuple[Enrolment, ...], Identity | None]:
    """A child's current pupil-roll rows (``ended_at`` unset) as the enrolments of ``day``, by UPN, and the identity of
    the latest enrolment (``latest_enrolment_first``; None without a row). One enrolment a school, its latest: two
    rows at one school (a re-admission, an old enrolment the school's system never closed) are one school's roll,
    and its DSL is told once. A school not loaded (or ended) has no enrolment."""
    ordered = rows if len(rows) < 2 else latest_enrolment_first(rows)
    enrolments: dict[str, Enrolment] = {}
    for row in ordered:
        if row.school_urn not in enrolments and on_roll(row.on_roll_from, row.on_roll_to, day):
            school = school_of(row.school_urn)
            if school is not None:
                enrolments[row.school_urn] = Enrolment(row.upn, school, identity_of(row))
    found = tuple(enrolments.values())
    if len(found) > 1:
        found = tuple(sorted(found, key=lambda enrolment: enrolment.upn))
    return found, identity_of(ordered[0]) if ordered else None


@dataclass(frozen=True)
class Involvement:
    status: str  # EARLY_HELP | CHILD_IN_NEED | CHILD_PROTECTION_PLAN | CHILD_LOOKED_AFTER
    worker_email: str | None
    team: str | None
    manager_email: str | None
    placing_la: str | None
    iro_email: str | None = None

    @property
    def protected(self) -> bool:
        """On a child protection plan or looked after."""
        return self.status in ("CHILD_PROTECTION_PLAN", "CHILD_LOOKED_AFTER")


@quick_init
@dataclass(frozen=True)
class ChildFacts:
    """What the reference data says about a linked child."""

    child_id: str
    identity: Identity
    enrolments: tuple[Enrolment, ...] = ()  # one a school (``roll_on``): a school is alerted once
    home_educated: bool = False
    involvements: tuple[Involvement, ...] = ()


@dataclass(frozen=True)
class Directory:
    """Team contacts by code (SCIES, FRONT_DOOR, LA_888, ...)."""

    teams: dict[str, Contact] = field(default_factory=dict)

    def team(self, code: str) -> Contact | None:
        contact = self.teams.get(code)
        return contact if contact is not None and contact.reachable else None


@quick_init
@dataclass(frozen=True)
class PlannedNotification:
    """One notification the rules decided to send (or withhold)."""

    key: str  # unique within one plan, so deadlines can refer to it
    recipient_role: str
    recipient_ref: str  # school URN, team code or worker email: who may see it
    contact: Contact
    reason: str
    urgency: str  # ROUTINE | URGENT
    content: dict[str, Any]
    school_urn: str | None = None
    withheld: bool = False
    kind: str = "alert"  # alert | reminder | escalation | review | decision


@quick_init
@dataclass(frozen=True)
class LadderStep:
    at: datetime
    notify: tuple[str, ...]
    action: str  # reminder | escalation


@quick_init
@dataclass(frozen=True)
class PlannedDeadline:
    kind: str
    subject_key: str  # a PlannedNotification.key, or "event"
    due_at: datetime
    steps: tuple[LadderStep, ...]
    school_urn: str | None = None


def _ladder_text(steps: tuple[LadderStep, ...]) -> str:
    return json.dumps([{"at": iso_instant(step.at), "notify": list(step.notify), "action": step.action}
                       for step in steps])


# The text of ladders stored lately, by their steps: a batch's deadlines of one kind, worked out from one ``now``,
# share theirs.
kept_ladder_text = functools.lru_cache(maxsize=1024)(_ladder_text)


def ladder_json(steps: tuple[LadderStep, ...]) -> str:
    """A deadline's ladder as it is stored (``steps_json``): each rung's instant in ISO form, whom it tells and
    its action."""
    # Kept only when every instant is in UTC: an instant of another zone equals (and hashes as) the same instant
    # in UTC, whose text differs, and two of one zone that differ only in ``fold`` compare equal though they are an
    # hour apart; a subclass of datetime equals the plain one. And only for a tuple of steps with tuples to tell:
    # they are hashable.
    if type(steps) is tuple and all(step.at.tzinfo is UTC and type(step.at) is datetime
                                    and type(step.notify) is tuple for step in steps):
        return kept_ladder_text(steps)
    return _ladder_text(steps)


@quick_init
@dataclass(frozen=True)
class Plan:
    """Everything an event causes: the status, who is told, and what is now due."""

    status: EventStatus
    notifications: tuple[PlannedNotification, ...] = ()
    deadlines: tuple[PlannedDeadline, ...] = ()
    audit: tuple[tuple[str, str], ...] = ()  # (action, reason) entries about the event itself
