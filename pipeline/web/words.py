"""How the web app writes values for people: dates and times in Europe/London as they are read
("Tuesday 1 December 2026 at 9:14pm"), and every enumeration in words, never its raw code.

Each function is registered as a Jinja filter of the same name by ``pipeline.web.render``. To show a new
code, add it to ``WORDS``; an unknown code falls back to its words with the underscores taken out.
"""

from __future__ import annotations

from datetime import date, datetime

from pipeline.adapters.scorecard import NO_SCHOOL
from pipeline.domain.calendar import LONDON

WORDS: dict[str, str] = {
    # pathways
    "self-harm": "Self-harm attendance",
    "missing": "Missing episode",
    # urgency
    "URGENT": "Urgent",
    "ROUTINE": "Routine",
    # notification kinds and statuses
    "alert": "Alert",
    "reminder": "Reminder",
    "escalation": "Escalation",
    "review": "Match review",
    "decision": "Consent decision",
    "pending": "Not yet delivered",
    "delivered": "Delivered",
    "viewed": "Opened",
    "acknowledged": "Acknowledged",
    "withheld": "Withheld until the front door decides",
    "failed": "Not delivered",
    # recipients and teams
    "dsl": "Designated safeguarding lead",
    "deputy_dsl": "Deputy designated safeguarding lead",
    "worker": "Allocated worker",
    "team_manager": "Team manager",
    "iro": "Independent reviewing officer",
    "SCIES": "Schools' safeguarding team (SCiES)",
    "EHE_MANAGER": "Elective home education manager",
    "CME": "Children missing education team",
    "FRONT_DOOR": "Front door",
    "FRONT_DOOR_MANAGER": "Front door manager",
    "MISSING_COORDINATOR": "Missing coordinator",
    "RHI_PROVIDER": "Return home interview provider",
    "EDUCATION_SAFEGUARDING_LEAD": "Education safeguarding lead",
    "HEAD_OF_SERVICE": "Head of service",
    "DIRECTOR": "Director of children's services",
    "UNALLOCATED": "Not allocated",
    # deadlines
    "self_harm_acknowledgement": "School acknowledgement",
    "self_harm_holiday_scies": "Holiday alert to SCiES",
    "match_review": "Match review",
    "consent_decision": "Consent decision",
    "still_missing": "Still missing",
    "strategy_discussion": "Strategy discussion",
    "return_interview": "Return home interview",
    "trigger_meeting": "Trigger meeting",
    "episode_length_check": "Episode length check",
    "open": "Open",
    "closed": "Closed",
    # event fields
    "GIVEN": "Given",
    "REFUSED": "Refused",
    "NOT_SOUGHT": "Not sought",
    "NOT_SCREENED": "Not screened",
    "NO_CONCERN": "No concern",
    "CONCERN": "Exploitation concern",
    "NO_APPARENT_RISK": "No apparent risk",
    "LOW": "Low",
    "MEDIUM": "Medium",
    "HIGH": "High",
    "HOME": "Home",
    "CARE": "Care",
    "PLACEMENT": "Placement",
    "OTHER": "Somewhere else",
    "CSE": "Child sexual exploitation",
    "CCE": "Child criminal exploitation",
    "COUNTY_LINES": "County lines",
    "TRAFFICKING": "Trafficking",
    "COMPLETED": "Completed",
    "DECLINED": "Declined by the child",
    "NOT_POSSIBLE": "Not possible",
    "NOT_HELD_BY_DECISION": "Not held, by a recorded decision",
    "M": "Male",
    "F": "Female",
    "U": "Not known",
    "EARLY_HELP": "Early help",
    "CHILD_IN_NEED": "Child in need",
    "CHILD_PROTECTION_PLAN": "Child protection plan",
    "CHILD_LOOKED_AFTER": "Child looked after",
    # matching
    "linked": "Linked to a child",
    "no_match": "No matching child",
    # user roles
    "producer": "Sending system",
    "team": "Council team",
    "manager": "Manager",
    "admin": "Administrator",
}


def words(value: object) -> str:
    """An enumeration or code in words: 'NOT_SOUGHT' -> 'Not sought'; None -> 'Not known'."""
    if value is None or value == "":
        return "Not known"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    text = str(value)
    if text in WORDS:
        return WORDS[text]
    if text.startswith("LA_"):
        return f"Council {text[3:]}"
    spaced = text.replace("_", " ").replace("-", " ").strip()
    return spaced[:1].upper() + spaced[1:].lower()


def _clock(moment: datetime) -> str:
    if moment.hour == 0 and moment.minute == 0:
        return "midnight"
    if moment.hour == 12 and moment.minute == 0:
        return "midday"
    hour = moment.hour % 12 or 12
    minutes = f":{moment.minute:02d}" if moment.minute else ""
    return f"{hour}{minutes}{'am' if moment.hour < 12 else 'pm'}"


def _local(value: datetime | str) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        raise ValueError("a time without an offset cannot be shown in London time")
    return moment.astimezone(LONDON)


def london(value: datetime | str | None) -> str:
    """An instant as people read it in England: 'Tuesday 1 December 2026 at 9:14pm'."""
    if value is None or value == "":
        return "Not known"
    moment = _local(value)
    return f"{moment:%A} {moment.day} {moment:%B %Y} at {_clock(moment)}"


def london_time(value: datetime | str | None) -> str:
    """Only the clock time when the day is clear from context: '9:14pm'."""
    return "Not known" if value is None or value == "" else _clock(_local(value))


def long_date(value: date | datetime | str | None) -> str:
    """A date: '14 May 2013' (an instant is first put in London time)."""
    if value is None or value == "":
        return "Not known"
    if isinstance(value, str):
        value = datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
    if isinstance(value, datetime):
        value = _local(value)
    return f"{value.day} {value:%B %Y}"


def role_words(role: str) -> str:
    """A recipient role or team in words, and a team's own code (a council's, e.g. CLA_TEAM) as it is."""
    return words(role) if role in WORDS or role.startswith("LA_") else role


def owner_words(owner: str) -> str:
    """The board's owner ('dsl: 100001', 'worker: sam@...' or a team code) in words: 'Designated safeguarding
    lead (100001)'."""
    role, _, ref = owner.partition(": ")
    return f"{role_words(role)} ({ref})" if ref else role_words(role)


def school_words(name: str | None, urn: str | None) -> str:
    """A school as the board shows it: 'Riverside Primary School (100001)', its URN alone, or 'No school'
    (the board's queries group a deadline with no school under 'NONE')."""
    if urn in (None, "", NO_SCHOOL):
        return "No school"
    return f"{name} ({urn})" if name else str(urn)


def minutes_words(minutes: int) -> str:
    """A length of time as people say it: '1 minute', '2 hours 5 minutes', '3 days 4 hours'."""
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = [f"{days} day{'s' * (days != 1)}"] if days else []
    if hours:
        parts.append(f"{hours} hour{'s' * (hours != 1)}")
    if not days and (mins or not hours):
        parts.append(f"{mins} minute{'s' * (mins != 1)}")
    return " ".join(parts)


def full_name(person: dict[str, object] | None) -> str:
    """Given and family name from an identity (either may be missing)."""
    if not person:
        return "Name not known"
    parts = [str(person[key]) for key in ("given_name", "family_name") if person.get(key)]
    return " ".join(parts) if parts else "Name not known"
