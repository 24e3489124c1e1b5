"""Queries behind the front door's work queues: open match reviews and withheld attendances, each with its
deadline, and the decisions already made on an event (from the audit).

The match store's per-candidate detail (``candidates`` [{child_id, probability, comparisons}]) is used when
the matcher recorded it; a decision recorded with only ``candidate_child_ids`` still shows every candidate.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlmodel import Session, col, select

from pipeline.adapters import tables as t
from pipeline.adapters.repository import SYSTEM, Repository
from pipeline.domain.model import ChildFacts


def open_events(session: Session, status: str, deadline_kind: str) -> list[tuple[t.Event, t.Deadline | None]]:
    """Events waiting for the front door (status ``review`` or ``withheld``), the soonest due first."""
    events = session.exec(select(t.Event).where(t.Event.status == status).limit(500)).all()
    deadlines = {d.event_id: d for d in session.exec(select(t.Deadline).where(
        t.Deadline.kind == deadline_kind, col(t.Deadline.event_id).in_([e.event_id for e in events]))).all()}
    pairs = [(event, deadlines.get(event.event_id)) for event in events]
    return sorted(pairs, key=lambda p: (p[1].due_at if p[1] is not None else p[0].received_at))


def event_by_id(session: Session, event_id: str) -> t.Event | None:
    return session.exec(select(t.Event).where(t.Event.event_id == event_id.lower())).first()


def deadline_for(session: Session, event_id: str, kind: str) -> t.Deadline | None:
    return session.exec(select(t.Deadline).where(t.Deadline.event_id == event_id, t.Deadline.kind == kind)).first()


def candidates_of(event: t.Event) -> list[dict[str, Any]]:
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
