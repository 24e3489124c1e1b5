"""What match training (``safeguard match train``, pipeline/service/match_training.py) reads from the SQL store and
writes to it: the children the most recent events name, and the parameters it estimated.

The repository answers the store port's ``MatchTraining`` questions with these (its mixin in
pipeline/adapters/reference_store.py); the newest stored parameters are read back by
``pipeline.adapters.repository.load_parameters``.
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import Table
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Connection

from pipeline import codec
from pipeline.adapters import tables as t
from pipeline.domain.events import identity_from_record
from pipeline.domain.fellegi_sunter import Parameters
from pipeline.domain.model import Identity

EVENT: Table = t.Event.__table__  # type: ignore[attr-defined]
MODEL: Table = t.MatchModel.__table__  # type: ignore[attr-defined]
EVENTS_NAMING_A_CHILD = ("self-harm-attendance", "missing-reported")  # the events whose children training reads


def child_of_stored_event(event_type: str, record_json: str) -> Identity:
    """The child an event of ``EVENTS_NAMING_A_CHILD`` names (``record_json``: the event as stored)."""
    return identity_from_record(codec.from_json(event_type, json.loads(record_json))["child"])


def recent_event_children(connection: Connection, limit: int) -> list[Identity]:
    """The children of the most recent events that carry one (for estimating m without labels), newest first."""
    rows = connection.execute(sa_select(EVENT.c.event_type, EVENT.c.record_json)
                              .where(EVENT.c.event_type.in_(EVENTS_NAMING_A_CHILD))
                              .order_by(EVENT.c.seq.desc()).limit(limit)).all()
    return [child_of_stored_event(row.event_type, row.record_json) for row in rows]


def save_parameters(connection: Connection, parameters: Parameters, now: datetime) -> str:
    """Store the parameters stamped ``now`` (the same version again: stamped ``now`` again); their version."""
    version = parameters.version
    if connection.execute(sa_select(MODEL.c.version).where(MODEL.c.version == version)).first() is None:
        connection.execute(MODEL.insert().values(version=version, created_at=now,
                                                 parameters_json=parameters.to_json()))
    else:
        connection.execute(MODEL.update().where(MODEL.c.version == version).values(created_at=now))
    return version
