"""The overdue board's queries: every open deadline that has fallen due, oldest first, with who it is about,
who owns it, how late it is, how far it has escalated and who has been told.

Read by managers only (the route checks). The child's name comes from the reference records the child was
matched to (or, for an event still waiting for a match review, the identity as the event gave it).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, text
from sqlmodel import Session, select

from pipeline.adapters import tables as t
from pipeline.adapters.scorecard import INTERNAL_KINDS, NO_SCHOOL, NO_TEAM, ROLL_DAY, on_roll_first, roll_day
from pipeline.adapters.tables import UTCDateTime
from pipeline.domain.calendar import LONDON
from pipeline.domain.model import latest_enrolment_first

KIND_IN_WORDS = {
    "self_harm_acknowledgement": "School acknowledgement of a self-harm alert",
    "self_harm_holiday_scies": "SCiES acknowledgement of a self-harm alert in the holidays",
    "consent_decision": "Front door decision on a withheld alert",
    "match_review": "Match review (which child is this?)",
    "still_missing": "Child still missing",
    "return_interview": "Return home interview",
    "trigger_meeting": "Missing trigger meeting",
    "strategy_discussion": "Strategy discussion (high risk or exploitation)",
}
SELF_HARM_KINDS = ("self_harm_acknowledgement", "self_harm_holiday_scies", "consent_decision")
# Who owns a deadline when no assignment notification says so.
DEFAULT_OWNER = {"consent_decision": "FRONT_DOOR", "match_review": "FRONT_DOOR",
                 "still_missing": "MISSING_COORDINATOR", "self_harm_holiday_scies": "SCIES"}


@dataclass(frozen=True)
class BoardFilters:
    pathway: str | None = None
    kind: str | None = None
    level: int | None = None
    school: str | None = None
    team: str | None = None
    deadline_id: str | None = None  # one deadline's row (its case page)


@dataclass
class BoardRow:
    deadline_id: str
    kind: str
    kind_in_words: str
    pathway: str
    child_id: str | None
    child_name: str | None
    event_id: str | None
    school_urn: str
    school_name: str | None
    team: str
    owner: str
    due_at: datetime
    minutes_late: int
    escalation_level: int
    told: list[str] = field(default_factory=list)


def _child_lookup(column: str, table: str, reference_key: str, prefix: str, extra: str = "") -> str:
    """A scalar subquery: the smallest ``column`` of the child's current ``table`` records matched through its
    person key (``prefix:value``), probing the reference table's index on ``reference_key``; of a pupil's roll
    records, one the child is on the roll of today first (``scorecard.on_roll_first``)."""
    smallest = f"substr(MIN({on_roll_first('r')} || r.{column}), 2)" if table == "pupil" else f"MIN(r.{column})"
    return (f"(SELECT {smallest} FROM child c JOIN {table} r ON r.{reference_key} = "
            f"substr(c.person_key, {len(prefix) + 2}) WHERE c.child_id = d.child_id AND c.person_key LIKE "
            f"'{prefix}%' AND r.ended_at IS NULL{extra})")


# The school and team of a case, as the scorecard groups them (pipeline.adapters.scorecard._child_group_rows).
SCHOOL_SQL = (f"COALESCE(d.school_urn, {_child_lookup('school_urn', 'pupil', 'upn', 'upn')}, "
              f"{_child_lookup('school_urn', 'pupil', 'nhs_number', 'nhs')}, '{NO_SCHOOL}')")
TEAM_SQL = ("COALESCE(" + ", ".join(_child_lookup("team", "involvement", key, prefix, " AND r.team IS NOT NULL")
                                    for key, prefix in (("upn", "upn"), ("nhs_number", "nhs"),
                                                        ("row_key", "involvement"))) + f", '{NO_TEAM}')")

_SELECT = f"""WITH board AS (
  SELECT d.id AS id, d.kind AS kind, d.child_id AS child_id, d.event_id AS event_id, d.subject_id AS subject_id,
         d.due_at AS due_at, d.escalation_level AS escalation_level,
         CASE WHEN d.kind IN ({", ".join(f"'{k}'" for k in SELF_HARM_KINDS)}) THEN 'self-harm'
              WHEN d.kind = 'match_review' AND ev.event_type = 'self-harm-attendance' THEN 'self-harm'
              ELSE 'missing' END AS pathway,
         {SCHOOL_SQL} AS school,
         {TEAM_SQL} AS team
    FROM deadline d
    LEFT JOIN event ev ON ev.event_id = d.event_id
   WHERE d.state = 'open' AND d.due_at <= :now AND d.kind NOT IN ({", ".join(f"'{k}'" for k in INTERNAL_KINDS)})
)"""


def _where(filters: BoardFilters) -> tuple[str, dict[str, Any]]:
    clauses, params = [], {}
    for name in ("pathway", "kind", "school", "team"):
        value = getattr(filters, name)
        if value:
            clauses.append(f"{name} = :f_{name}")
            params[f"f_{name}"] = value
    if filters.level is not None:
        clauses.append("escalation_level = :f_level")
        params["f_level"] = filters.level
    if filters.deadline_id is not None:
        clauses.append("id = :f_id")
        params["f_id"] = filters.deadline_id
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def _execute(session: Session, sql: str, params: dict[str, Any], instants: tuple[str, ...]) -> Any:
    """The board's query at ``params["now"]``: a child's school is one whose roll the child is on that London day."""
    statement = text(sql).bindparams(*(bindparam(name, type_=UTCDateTime()) for name in instants), roll_day())
    return session.connection().execute(statement, {**params, ROLL_DAY: params["now"].astimezone(LONDON).date()}).all()


def counts_by_level(session: Session, now: datetime, filters: BoardFilters) -> dict[int, int]:
    where, params = _where(BoardFilters(filters.pathway, filters.kind, None, filters.school, filters.team))
    rows = _execute(session, f"{_SELECT} SELECT escalation_level, COUNT(*) AS n FROM board{where} "
                    "GROUP BY escalation_level", {"now": now, **params}, ("now",))
    return {int(row.escalation_level): int(row.n) for row in rows}


def board_page(session: Session, now: datetime, filters: BoardFilters, limit: int = 100,
               after_id: str | None = None) -> tuple[list[BoardRow], bool]:
    """One page of the board, oldest due first; ``after_id`` is the last row of the previous page.
    Returns the rows and whether more remain."""
    where, params = _where(filters)
    instants: tuple[str, ...] = ("now",)
    if after_id is not None:
        last = session.get(t.Deadline, after_id)
        if last is not None:
            later = "(due_at > :after_due OR (due_at = :after_due AND id > :after_id))"
            where += (" AND " if where else " WHERE ") + later
            params.update(after_due=last.due_at, after_id=after_id)
            instants = ("now", "after_due")
    rows = _execute(session, f"{_SELECT} SELECT * FROM board{where} ORDER BY due_at, id LIMIT :limit",
                    {"now": now, "limit": limit + 1, **params}, instants)
    more = len(rows) > limit
    rows = rows[:limit]
    told = _told(session, [row.id for row in rows])
    names = _names(session, rows)
    schools = _school_names(session, {row.school for row in rows})
    owners = _owners(session, rows)
    board = []
    for row in rows:
        due = _instant(row.due_at)
        owner_role, owner_ref = owners.get(row.id) or (DEFAULT_OWNER.get(row.kind, "FRONT_DOOR"), None)
        owner = owner_role if not owner_ref or owner_ref == owner_role else f"{owner_role}: {owner_ref}"
        board.append(BoardRow(
            deadline_id=row.id, kind=row.kind, kind_in_words=KIND_IN_WORDS.get(row.kind, row.kind.replace("_", " ")),
            pathway=row.pathway, child_id=row.child_id, child_name=names.get(row.id), event_id=row.event_id,
            school_urn=row.school, school_name=schools.get(row.school), team=row.team, owner=owner, due_at=due,
            minutes_late=max(0, int((now - due).total_seconds() // 60)), escalation_level=int(row.escalation_level),
            told=told.get(row.id, []),
        ))
    return board, more


def _instant(value: Any) -> datetime:
    """A stored instant read through raw SQL (text on SQLite, naive on PostgreSQL): aware UTC."""
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return parsed.replace(tzinfo=UTC)


def _owners(session: Session, rows: Any) -> dict[str, tuple[str, str]]:
    """Who owns each deadline that waits on a notification: its recipient (a school alert's DSL, the front
    door's review or decision). Deadlines assigned to a team or worker (return interviews, strategy
    discussions, trigger meetings) get their owner from ``pipeline.service.missing.deadline_owner``, applied
    by the caller (``pipeline.entrypoints.reports.with_owners``)."""
    subjects = {row.subject_id: row.id for row in rows}
    if not rows:
        return {}
    found = session.connection().execute(
        text("SELECT id, recipient_role, recipient_ref FROM notification WHERE id IN :subjects").bindparams(
            bindparam("subjects", expanding=True)), {"subjects": sorted(subjects)}).all()
    return {subjects[n.id]: (n.recipient_role, n.recipient_ref) for n in found}


def _told(session: Session, deadline_ids: list[str]) -> dict[str, list[str]]:
    """Who each deadline's ladder has told so far (reminders and escalations), in the order told (steps fired
    by one sweep in ladder order: a step's plan key is `kind:level:role`)."""
    if not deadline_ids:
        return {}
    rows = session.connection().execute(
        text("SELECT deadline_id, recipient_role, MIN(created_at) AS first, MIN(plan_key) AS step FROM notification "
             "WHERE deadline_id IN :ids AND kind IN ('reminder', 'escalation') "
             "GROUP BY deadline_id, recipient_role ORDER BY first, step")
        .bindparams(bindparam("ids", expanding=True)),
        {"ids": deadline_ids}).all()
    told: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        told[row.deadline_id].append(row.recipient_role)
    return dict(told)


def _school_names(session: Session, urns: set[str]) -> dict[str, str]:
    if not urns:
        return {}
    rows = session.connection().execute(
        text("SELECT urn, name FROM school WHERE urn IN :urns").bindparams(bindparam("urns", expanding=True)),
        {"urns": sorted(urns)}).all()
    return {row.urn: row.name for row in rows}


def child_name(session: Session, child_id: str) -> str | None:
    """The child's name as the reference records the child was matched to give it."""
    child = session.get(t.Child, child_id)
    if child is None:
        return None
    kind, _, value = child.person_key.partition(":")
    record: Any = None
    if kind == "upn":  # the latest enrolment's row (a child on two schools' rolls has one at each)
        rows = session.exec(select(t.Pupil).where(t.Pupil.upn == value)).all()
        record = latest_enrolment_first(rows)[0] if rows else None
    elif kind == "ehe":
        record = session.get(t.EheRecord, value)
    elif kind == "involvement":
        record = session.get(t.Involvement, value)
    elif kind == "nhs":
        conn = session.connection()
        for table in ("pupil", "involvement", "eherecord"):
            record = conn.execute(text(f"SELECT given_name, family_name FROM {table} WHERE nhs_number = :n LIMIT 1"),
                                  {"n": value}).first()
            if record is not None:
                break
    return f"{record.given_name} {record.family_name}" if record is not None else None


def _names(session: Session, rows: Any) -> dict[str, str]:
    names: dict[str, str] = {}
    for row in rows:
        name = child_name(session, row.child_id) if row.child_id else None
        if name is None and row.event_id:
            event = session.connection().execute(text("SELECT record_json FROM event WHERE event_id = :e"),
                                                 {"e": row.event_id}).first()
            child = json.loads(event.record_json).get("child") if event is not None else None
            if child and (child.get("given_name") or child.get("family_name")):
                name = " ".join(part for part in (child.get("given_name"), child.get("family_name")) if part)
                name += " (as sent, not matched)"
        if name:
            names[row.id] = name
    return names
