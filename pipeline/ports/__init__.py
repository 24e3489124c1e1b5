"""The ports the services are written against; adapters in pipeline/adapters/ implement them.

``StorePort`` is the whole storage port: one object per unit of work (transaction). Its parts live in their own
modules so each pathway adds its part without editing the others':

- pipeline/ports/store.py: reference reads, effect writes, deadlines, events, savepoints (the core);
- pipeline/ports/episodes.py (the missing pathway): missing episodes and trigger meetings;
- pipeline/ports/casework.py: what acknowledging, viewing and the front door's decisions look up;
- pipeline/ports/reference_data.py: loading reference files and storing the matcher's trained parameters;
- pipeline/ports/accounts.py: users, API tokens, web sessions, login attempts, a notification in a user's scope;
- pipeline/ports/deliveries.py: what the relay reads and changes to relay the outbox and deliver notifications.

Add a part by listing it among ``StorePort``'s bases below. ``UnitsOfWork`` hands out ``StorePort``s. The intake's
transactions (pipeline/ports/intake.py) and API tokens (``accounts.TokenHolders``) are asked of the store itself,
not of a unit of work: a group commit has its own transaction, and a token is read outside any.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol

from pipeline.ports.accounts import AccountStore
from pipeline.ports.casework import CaseworkStore
from pipeline.ports.deliveries import DeliveryStore
from pipeline.ports.episodes import EpisodeRecord, EpisodeStore
from pipeline.ports.records import SYSTEM, DeadLetterRecord, DeadlineRecord, EventRecord, NotificationRecord
from pipeline.ports.reference_data import MatchTraining, ReferenceLoads
from pipeline.ports.store import DeadlineStore, EffectWrites, EventStore, ReferenceReads, Transaction


class StorePort(ReferenceReads, EffectWrites, DeadlineStore, EventStore, Transaction, EpisodeStore, CaseworkStore,
                ReferenceLoads, MatchTraining, AccountStore, DeliveryStore, Protocol):
    """The whole storage port (one unit of work). Parts of other pathways are added to the bases here."""


class UnitsOfWork(Protocol):
    """Where units of work come from: ``Store`` (SQL) and ``MemoryStore`` (the fake)."""

    def unit_of_work(self) -> AbstractContextManager[StorePort]:
        """A new unit of work: committed when the block ends normally, rolled back if it raises."""
        ...


__all__ = [
    "AccountStore", "CaseworkStore", "DeadLetterRecord", "DeadlineRecord", "DeadlineStore", "DeliveryStore",
    "EffectWrites", "EpisodeRecord", "EpisodeStore", "EventRecord", "EventStore", "MatchTraining",
    "NotificationRecord", "ReferenceLoads", "ReferenceReads", "SYSTEM", "StorePort", "Transaction", "UnitsOfWork",
]
