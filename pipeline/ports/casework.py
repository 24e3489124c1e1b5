"""The casework part of the store port: what people's actions on notifications and the front door's decisions
need beyond the shared effects (pipeline/service/casework.py asks; the SQL adapter and the fake answer)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from pipeline.ports.records import DeadlineRecord, NotificationRecord


class CaseworkStore(Protocol):
    def school_copies(self, notification: NotificationRecord) -> Sequence[NotificationRecord]:
        """Every copy of a school's alert or reminder (DSL and deputy, on the same deadline), ``notification``
        included: one case for the school. Any other notification is its own only copy."""
        ...

    def open_deadline_of_event(self, event_id: str, kind: str) -> DeadlineRecord | None:
        """The event's open deadline of this kind (a consent decision, a match review), if any."""
        ...

    def notifications_of_event(self, event_id: str) -> Sequence[NotificationRecord]:
        """Every notification stored for the event (withheld ones included)."""
        ...

    def person_key_of(self, child_id: str) -> str | None:
        """The person key behind an opaque child id, or None if the pipeline never issued it."""
        ...
