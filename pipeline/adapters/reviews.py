"""Queries behind the front door's work: the open match-review queue (API), the records behind a child id,
open reviews and withheld attendances with their deadlines (web pages), and the decisions already made.

The match store's per-candidate detail (``candidates`` [{child_id, probability, comparisons}]) is used when
the matcher recorded it; a decision recorded with only ``candidate_child_ids`` still shows every candidate.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import Table, and_, func, or_
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from pipeline.adapters import tables as t
from pipeline.adapters.repository import EHE, INVOLVEMENT, PUPIL, SYSTEM, Repository
from pipeline.domain.model import ChildFacts
from pipeline.ports.records import EventRecord

EVENT: Table = t.Event.__table__  # type: ignore[attr-defined]
DEADLINE: Table = t.Deadline.__table__  # type: ignore[attr-defined]
PATHWAYS = {"self-harm-attendance": "self-harm", "missing-reported": "missing"}


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def open_reviews(session: Session) -> list[dict[str, Any]]:
    """Open match reviews, oldest due first: the event, its deadline, the candidates and the identity as sent."""
    rows = session.connection().execute(
        sa_select(EVENT.c.event_id, EVENT.c.event_type, EVENT.c.received_at, EVENT.c.record_json,
                  EVENT.c.match_json, DEADLINE.c.due_at)
        .join(DEADLINE, DEADLINE.c.event_id == EVENT.c.event_id)
        .where(DEADLINE.c.kind == "match_review", DEADLINE.c.state == "open", EVENT.c.status == "review")
        .order_by(DEADLINE.c.due_at, EVENT.c.event_id)).all()
    reviews: list[dict[str, Any]] = []
    seen: set[str] = set()
    for row in rows:
        if row.event_id in seen:
            continue
        seen.add(row.event_id)
        match = json.loads(row.match_json or "{}")
        child = json.loads(row.record_json).get("child") or {}
        reviews.append({
            "event_id": row.event_id, "pathway": PATHWAYS.get(row.event_type, row.event_type),
            "received_at": _iso(row.received_at), "due_at": _iso(row.due_at),
            "model_version": match.get("model_version"), "reason": match.get("reason"),
            "candidates": [{"child_id": c.get("child_id"), "probability": c.get("probability"),
                            "source": c.get("source"), "comparisons": c.get("comparisons", [])}
                           for c in match.get("candidates", []) if c.get("child_id")],
            "identity": {name: child.get(name) for name in (
                "nhs_number", "given_name", "family_name", "date_of_birth", "sex", "postcode", "school_name")},
        })
    return reviews


def _record(source: str, row: Any) -> dict[str, Any]:
    return {
        "source": source, "upn": getattr(row, "upn", None), "school_urn": getattr(row, "school_urn", None),
        "on_roll_from": _iso(getattr(row, "on_roll_from", None)), "on_roll_to": _iso(getattr(row, "on_roll_to", None)),
        "status": getattr(row, "status", None), "ended": row.ended_at is not None,
        "nhs_number": row.nhs_number, "given_name": row.given_name, "family_name": row.family_name,
        "date_of_birth": _iso(row.date_of_birth), "sex": getattr(row, "sex", None),
        "postcode": getattr(row, "postcode", None),
    }


def child_records(session: Session, child_id: str) -> list[dict[str, Any]] | None:
    """Every reference record the child is known by (ended ones too, marked), or None for an unknown id."""
    child = session.get(t.Child, child_id)
    if child is None:
        return None
    kind, _, value = child.person_key.partition(":")
    connection = session.connection()
    records: list[dict[str, Any]] = []
    if kind == "upn":
        pupils = connection.execute(sa_select(PUPIL).where(PUPIL.c.upn == value)).all()
        records += [_record("pupil", row) for row in pupils]
        identities = {(row.family_key, row.date_of_birth, row.given_name.lower()) for row in pupils}
        clauses = [INVOLVEMENT.c.upn == value]
        births: set[date] = {row.date_of_birth for row in pupils}
        if births:
            clauses.append(INVOLVEMENT.c.upn.is_(None) & INVOLVEMENT.c.date_of_birth.in_(births))
        for row in connection.execute(sa_select(INVOLVEMENT).where(or_(*clauses))).all():
            if row.upn == value or (row.family_key, row.date_of_birth, row.given_name.lower()) in identities:
                records.append(_record("involvement", row))
    elif kind == "nhs":
        records += [_record("pupil", r) for r in connection.execute(
            sa_select(PUPIL).where(PUPIL.c.nhs_number == value))]
        records += [_record("ehe", r) for r in connection.execute(sa_select(EHE).where(EHE.c.nhs_number == value))]
        records += [_record("involvement", r) for r in connection.execute(
            sa_select(INVOLVEMENT).where(INVOLVEMENT.c.nhs_number == value))]
    elif kind == "ehe":
        records += [_record("ehe", r) for r in connection.execute(sa_select(EHE).where(EHE.c.row_key == value))]
    elif kind == "involvement":
        records += [_record("involvement", r) for r in connection.execute(
            sa_select(INVOLVEMENT).where(INVOLVEMENT.c.row_key == value))]
    return records



def open_event_count(session: Session, status: str) -> int:
    """How many events wait for the front door with this status (``review`` or ``withheld``)."""
    return int(session.exec(select(func.count()).select_from(t.Event).where(t.Event.status == status)).one())


def open_events(session: Session, status: str, deadline_kind: str, *, offset: int = 0,
                limit: int = 50) -> list[tuple[t.Event, t.Deadline | None]]:
    """A page of the events waiting for the front door with this status, with their deadline, the soonest due
    first: every one of them is on some page, however many there are."""
    due = func.coalesce(col(t.Deadline.due_at), col(t.Event.received_at))
    pairs = session.exec(select(t.Event, t.Deadline)
                         .outerjoin(t.Deadline, and_(col(t.Deadline.event_id) == col(t.Event.event_id),
                                                     col(t.Deadline.kind) == deadline_kind))
                         .where(t.Event.status == status)
                         .order_by(due, col(t.Event.event_id)).offset(offset).limit(limit)).all()
    return [(event, deadline) for event, deadline in pairs]


def event_by_id(session: Session, event_id: str) -> t.Event | None:
    return session.exec(select(t.Event).where(t.Event.event_id == event_id.lower())).first()


def deadline_for(session: Session, event_id: str, kind: str) -> t.Deadline | None:
    return session.exec(select(t.Deadline).where(t.Deadline.event_id == event_id, t.Deadline.kind == kind)).first()


def candidates_of(event: EventRecord) -> list[dict[str, Any]]:
    """[{child_id, probability or None, comparisons [{field, level, weight}] or []}], as the matcher stored."""
    match = json.loads(event.match_json or "{}")
    detailed = match.get("candidates")
    if isinstance(detailed, list) and all(isinstance(c, dict) and "child_id" in c for c in detailed):
        return [{"child_id": c["child_id"], "probability": c.get("probability"),
                 "comparisons": c.get("comparisons") or []} for c in detailed]
    return [{"child_id": child_id, "probability": None, "comparisons": []}
            for child_id in match.get("candidate_child_ids", [])]


def child_facts(session: Session, child_id: str, day: date) -> ChildFacts | None:
    return Repository(session).facts_for_child(child_id, day)


def school_name(session: Session, urn: str) -> str | None:
    school = session.get(t.School, urn)
    return school.name if school is not None else None


def decisions_on(session: Session, event_id: str) -> Sequence[t.AuditEntry]:
    """What people (not the pipeline) decided about this event, oldest first."""
    return session.exec(select(t.AuditEntry).where(t.AuditEntry.subject_id == event_id,
                                                   t.AuditEntry.actor != SYSTEM,
                                                   col(t.AuditEntry.action).in_(("matched", "released", "withheld")))
                        .order_by(col(t.AuditEntry.id))).all()
