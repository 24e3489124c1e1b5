"""Closing a deadline: the one way, used by the sweep, the missing pathway and casework alike.

Kept apart from the sweep so the pathways can close deadlines without importing the sweep (which calls into the
missing pathway for its checks): no import cycle between them.
"""

from __future__ import annotations

from datetime import datetime

from pipeline.domain.model import DeadlineState
from pipeline.ports import SYSTEM, DeadlineRecord, StorePort


def close_deadline(port: StorePort, deadline: DeadlineRecord, now: datetime, reason: str,
                   actor: str = SYSTEM) -> None:
    """A closed deadline never escalates again. Audited: who closed it (``actor``) or, in ``reason``, which
    event or decision did."""
    if deadline.state == DeadlineState.CLOSED:
        return
    deadline.state = DeadlineState.CLOSED
    deadline.closed_at = now
    deadline.closed_reason = reason
    deadline.next_step_at = None
    port.audit(now, actor, "closed", deadline.id, f"{deadline.kind} closed: {reason}")
