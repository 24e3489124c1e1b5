"""The ports the services are written against; adapters in pipeline/adapters/ implement them.

``StorePort`` is the whole storage port: one object per unit of work (transaction). Its parts live in their own
modules so each pathway adds its part without editing the others':

- pipeline/ports/store.py: reference reads, effect writes, deadlines, events, savepoints (the core);
- pipeline/ports/episodes.py (the missing pathway): missing episodes and trigger meetings;
- casework commands (acknowledge, view) in their own module.

Add a part by listing it among ``StorePort``'s bases below. ``UnitsOfWork`` hands out ``StorePort``s.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol

from pipeline.ports.records import SYSTEM, DeadLetterRecord, DeadlineRecord, EventRecord, NotificationRecord
from pipeline.ports.store import DeadlineStore, EffectWrites, EventStore, ReferenceReads, Transaction


class StorePort(ReferenceReads, EffectWrites, DeadlineStore, EventStore, Transaction, Protocol):
    """The whole storage port (one unit of work). Parts of other pathways are added to the bases here."""


class UnitsOfWork(Protocol):
    """Where units of work come from: ``Store`` (SQL) and ``MemoryStore`` (the fake)."""

    def unit_of_work(self) -> AbstractContextManager[StorePort]:
        """A new unit of work: committed when the block ends normally, rolled back if it raises."""
        ...


__all__ = [
    "DeadLetterRecord", "DeadlineRecord", "DeadlineStore", "EffectWrites", "EventRecord", "EventStore",
    "NotificationRecord", "ReferenceReads", "SYSTEM", "StorePort", "Transaction", "UnitsOfWork",
]
