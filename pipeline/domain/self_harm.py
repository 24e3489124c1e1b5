"""Pathway 1 rules: who is told about an emergency-department self-harm attendance, and what is due.

``route_self_harm`` is a pure function of the event, the match decision, the linked child's reference
facts, the team directory, the policy and ``now``. It applies every row of the routing table in
domain.md, the age and residence rules, consent (``withheld``), the holiday rule, data minimisation per
recipient. A recipient without a contact on file stays in the plan as it is: the one notify function
(pipeline/service/notify.py) sends it to the front door, audited.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from typing import Any

from pipeline.domain.events import SelfHarmAttendance
from pipeline.domain.matching import postcode_parts
from pipeline.domain.model import (
    CME,
    DEPUTY_DSL_ROLE,
    DSL_ROLE,
    EHE_MANAGER,
    FRONT_DOOR,
    SCIES,
    TEAM_MANAGER_ROLE,
    WORKER_ROLE,
    ChildFacts,
    Contact,
    Directory,
    Enrolment,
    EventStatus,
    MatchDecision,
    MatchOutcome,
    Plan,
    PlannedDeadline,
    PlannedNotification,
    iso_date,
)
from pipeline.domain.policy import Policy

PATHWAY = "self-harm"


def age_on(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def compulsory_school_age(birth: date, day: date) -> bool:
    """From the prescribed day (31 March, 31 August or 31 December) on or after the fifth birthday until the
    last Friday of June of the school year in which the child turns 16 (Education Act 1996, s.8)."""
    fifth = birth.replace(year=birth.year + 5) if not (birth.month == 2 and birth.day == 29) \
        else date(birth.year + 5, 3, 1)
    starts = min(d for d in (date(fifth.year, 3, 31), date(fifth.year, 8, 31), date(fifth.year, 12, 31))
                 if d >= fifth)
    if day < starts:
        return False
    sixteenth = birth.replace(year=birth.year + 16) if not (birth.month == 2 and birth.day == 29) \
        else date(birth.year + 16, 3, 1)
    school_year_end = sixteenth.year + (1 if sixteenth.month >= 9 else 0)
    last_friday = date(school_year_end, 6, 30)
    while last_friday.weekday() != 4:
        last_friday = last_friday.replace(day=last_friday.day - 1)
    return day <= last_friday


def _attendance(event: SelfHarmAttendance, policy: Policy) -> dict[str, Any]:
    return {
        "attendance_id": event.attendance_id,
        "attendance_date": policy.calendar.local(event.arrived_at).date().isoformat(),
        "hospital_ods_code": event.hospital_ods_code,
        "risk_summary": event.risk_summary,
        "clinician_contact": event.clinician_contact,
    }


def content_for_school(event: SelfHarmAttendance, enrolment: Enrolment, policy: Policy) -> dict[str, Any]:
    """A school sees the pupil as on its own roll, the attendance date, hospital, risk summary, clinician."""
    pupil = enrolment.identity
    return {
        "pupil": {"given_name": pupil.given_name, "family_name": pupil.family_name,
                  "date_of_birth": iso_date(pupil.date_of_birth), "upn": enrolment.upn},
        "school_urn": enrolment.school.urn,
        **_attendance(event, policy),
    }


def content_for_council(event: SelfHarmAttendance, policy: Policy, reasons: list[str]) -> dict[str, Any]:
    """Council teams and workers see the child as the hospital knows them, and the screening and consent."""
    child = event.child
    return {
        "child": {"given_name": child.given_name, "family_name": child.family_name,
                  "date_of_birth": iso_date(child.date_of_birth), "postcode": child.postcode,
                  "nhs_number": child.nhs_number, "school_name": child.school_name},
        "admitted": event.admitted,
        "exploitation_screening": event.exploitation_screening,
        "consent": event.consent,
        "shared_without_consent_reason": event.shared_without_consent_reason,
        "reasons": reasons,
        **_attendance(event, policy),
    }


class _Recipients:
    """Collects planned notifications, merging repeat routes to the same team into one."""

    def __init__(self, event: SelfHarmAttendance, directory: Directory, policy: Policy, urgency: str) -> None:
        self.event, self.directory, self.policy, self.urgency = event, directory, policy, urgency
        self.items: dict[str, PlannedNotification] = {}

    def team(self, code: str, reason: str) -> str:
        key = f"team:{code}"
        existing = self.items.get(key)
        if existing is not None:
            reasons = [*existing.content["reasons"], reason]
            self.items[key] = replace(existing, reason="; ".join(reasons),
                                      content={**existing.content, "reasons": reasons})
        else:
            self.items[key] = PlannedNotification(
                key=key, recipient_role=code, recipient_ref=code,
                contact=self.directory.teams.get(code) or Contact(None), reason=reason,
                urgency=self.urgency, content=content_for_council(self.event, self.policy, [reason]),
            )
        return key

    def person(self, key: str, role: str, ref: str, contact: Contact, reason: str,
               content: dict[str, Any], school_urn: str | None = None) -> str:
        self.items.setdefault(key, PlannedNotification(
            key=key, recipient_role=role, recipient_ref=ref, contact=contact, reason=reason,
            urgency=self.urgency, content=content, school_urn=school_urn,
        ))
        return key


def _lives_elsewhere(event: SelfHarmAttendance, facts: ChildFacts, policy: Policy) -> bool:
    postcode = event.child.postcode or facts.identity.postcode
    district = postcode_parts(postcode)[2]
    return bool(district and policy.postcode_districts and district not in policy.postcode_districts)


def route_self_harm(event: SelfHarmAttendance, match: MatchDecision, facts: ChildFacts | None,
                    directory: Directory, policy: Policy, now: datetime,
                    released_at: datetime | None = None) -> Plan:
    """Decide every notification and deadline for one attendance.

    ``now`` is when it is processed. ``released_at`` is set when the front door has decided to release an
    attendance that was withheld for want of consent: it is then routed as if shared, and the school's
    clock runs from the release.
    """
    urgent = event.exploitation_concern or bool(facts and any(i.protected for i in facts.involvements))
    urgency = "URGENT" if urgent else "ROUTINE"
    recipients = _Recipients(event, directory, policy, urgency)
    deadlines: list[PlannedDeadline] = []
    audit: list[tuple[str, str]] = []

    if match.outcome is MatchOutcome.REVIEW:
        key = recipients.team(FRONT_DOOR, f"match review: {match.reason}")
        recipients.items[key] = replace(recipients.items[key], kind="review",
                                        urgency="URGENT" if event.exploitation_concern else urgency)
        name = "match_review_urgent" if event.exploitation_concern else "match_review"
        due = policy.due(name, now)
        deadlines.append(PlannedDeadline("match_review", key, due, policy.ladder("match_review", due)))
        return Plan(EventStatus.REVIEW, tuple(recipients.items.values()), tuple(deadlines),
                    tuple(audit))

    if match.outcome is MatchOutcome.NO_MATCH or facts is None:
        recipients.team(FRONT_DOOR, "no matching child in the reference data")
        if event.exploitation_concern:
            recipients.team(FRONT_DOOR, "exploitation concern")
        return Plan(EventStatus.PROCESSED, tuple(recipients.items.values()), (), tuple(audit))

    arrival_day = policy.calendar.local(event.arrived_at).date()
    school_alerts: list[tuple[str, Enrolment]] = []
    for enrolment in facts.enrolments:
        school = enrolment.school
        if school.in_area and school.school_type == "STATE":
            content = content_for_school(event, enrolment, policy)
            key = recipients.person(f"dsl:{school.urn}", DSL_ROLE, school.urn, school.dsl,
                                    "pupil on the school's roll", content, school.urn)
            if school.deputy.reachable:
                recipients.person(f"deputy:{school.urn}", DEPUTY_DSL_ROLE, school.urn, school.deputy,
                                  "pupil on the school's roll", content, school.urn)
            school_alerts.append((key, enrolment))
        else:
            kind = "independent" if school.school_type == "INDEPENDENT" else "out-of-area"
            recipients.team(SCIES, f"pupil on the roll of an {kind} school ({school.urn})")
    if facts.home_educated:
        recipients.team(EHE_MANAGER, "on the elective home education register")
    birth = facts.identity.date_of_birth
    if not facts.enrolments:
        if birth is None:
            recipients.team(FRONT_DOOR, "on no roll, date of birth unknown")
        elif not facts.home_educated and compulsory_school_age(birth, arrival_day):
            recipients.team(CME, "compulsory school age, on no roll and not home educated")
            recipients.team(FRONT_DOOR, "compulsory school age, on no roll and not home educated")
        elif age_on(birth, arrival_day) >= 16:
            recipients.team(FRONT_DOOR, "aged 16 or 17 and on no roll")
    if _lives_elsewhere(event, facts, policy):
        recipients.team(FRONT_DOOR, "lives in another council's area: pass to the home council")
    told_worker: set[str] = set()
    for involvement in facts.involvements:
        if involvement.placing_la:
            recipients.team(f"LA_{involvement.placing_la}", "placed here by another council")
        content = content_for_council(event, policy, [f"open to social care ({involvement.status})"])
        if involvement.worker_email:
            told_worker.add(recipients.person(
                f"worker:{involvement.worker_email}", WORKER_ROLE, involvement.worker_email,
                Contact(involvement.worker_email), f"allocated worker ({involvement.status})", content))
        else:
            recipients.team(involvement.team or FRONT_DOOR, "open to social care, no allocated worker")
        if involvement.protected:
            # With no manager on file the notification is not dropped: _with_fallbacks sends it to the front door.
            manager = involvement.manager_email or f"no manager on file ({involvement.team or 'no team'})"
            recipients.person(f"manager:{manager}", TEAM_MANAGER_ROLE, involvement.manager_email or FRONT_DOOR,
                              Contact(involvement.manager_email),
                              f"child {involvement.status.lower().replace('_', ' ')}", content)
    if event.exploitation_concern:
        recipients.team(FRONT_DOOR, "exploitation concern: same day")

    status = EventStatus.PROCESSED
    if not (event.may_share or released_at):
        # Nothing to the school; only the worker of a child looked after or on a plan is told now.
        protected_workers = {f"worker:{i.worker_email}" for i in facts.involvements
                             if i.protected and i.worker_email}
        for key, item in list(recipients.items.items()):
            if key not in protected_workers:
                recipients.items[key] = replace(item, withheld=True)
        status = EventStatus.WITHHELD
        audit.append(("withheld", f"consent {event.consent} and no reason to share without it"))
        decision = PlannedNotification(
            key="decision:front_door", recipient_role=FRONT_DOOR, recipient_ref=FRONT_DOOR,
            contact=directory.teams.get(FRONT_DOOR) or Contact(None),
            reason="consent not given and no reason recorded: decide whether to release", urgency=urgency,
            content=content_for_council(event, policy, ["consent decision needed"]), kind="decision",
        )
        recipients.items[decision.key] = decision
        due = policy.due("consent_decision", now)
        deadlines.append(PlannedDeadline("consent_decision", decision.key, due,
                                         policy.ladder("consent_decision", due)))
        return Plan(status, tuple(recipients.items.values()), tuple(deadlines), tuple(audit))

    start = released_at or event.arrived_at
    deadlines.extend(acknowledgement_deadlines(school_alerts, recipients, policy, start))
    return Plan(status, tuple(recipients.items.values()), tuple(deadlines), tuple(audit))


def acknowledgement_deadlines(school_alerts: list[tuple[str, Enrolment]], recipients: _Recipients,
                              policy: Policy, start: datetime) -> list[PlannedDeadline]:
    """The DSL's 12:00-next-school-day deadline, and the holiday rule's SCiES deadline."""
    deadlines: list[PlannedDeadline] = []
    calendar = policy.calendar
    for key, enrolment in school_alerts:
        urn = enrolment.school.urn
        due = policy.due("self_harm_acknowledgement", start, urn)
        deadlines.append(PlannedDeadline("self_harm_acknowledgement", key, due,
                                         policy.ladder("self_harm_acknowledgement", due, urn), urn))
        next_school_day = calendar.local(calendar.next_school_day_start(start, urn)).date()
        if calendar.working_days_between(calendar.local(start).date(), next_school_day) >= 1:
            scies = recipients.team(SCIES, f"next school day at {urn} is more than a working day away")
            if any(d.kind == "self_harm_holiday_scies" for d in deadlines):
                continue
            scies_due = policy.due("self_harm_holiday_scies", start)
            deadlines.append(PlannedDeadline("self_harm_holiday_scies", scies, scies_due,
                                             policy.ladder("self_harm_holiday_scies", scies_due)))
    return deadlines
