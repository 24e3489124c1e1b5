"""The intake's part of the store port: which of a batch's event ids are stored already, and storing a batch of new
events in one transaction (one commit, one fsync for a whole group of HTTP requests or a batch of ``safeguard
produce``), with the storage port for the dead letters kept beside them.

``pipeline.service.intake.Intake`` asks; the SQL store (``Store.intake_transaction``, over
pipeline/adapters/intake_rows.py: two statements on the DBAPI cursor on SQLite's hot path) and the in-memory fake
(pipeline/adapters/memory_store_intake.py) answer. The database's refusals come back as ``EventIdTaken`` (another
writer stored one of the batch's ids between the check and the insert) or ``StoreWriteFailed``, never as a driver's
exception.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from pipeline.ports import StorePort


@dataclass(frozen=True)
class IntakeRow:
    """An event as the intake stores it, or as it finds it stored (then ``status`` is the current one)."""

    event_id: str
    event_type: str
    producer_id: int | None
    content_hash: str
    record_json: str = ""
    status: str = "accepted"

    @classmethod
    def found(cls, stored: Any) -> IntakeRow:
        """As found stored (``stored``: a row or record with the event's columns), without its record."""
        return cls(stored.event_id, stored.event_type, stored.producer_id, stored.content_hash, status=stored.status)


NO_PORT = "a transaction with dead letters is opened with store.intake_transaction(dead_letters=True)"


class EventIdTaken(Exception):
    """The intake transaction broke a unique constraint: another writer stored one of its event ids between the
    check and the insert. Nothing of the transaction was stored."""


class StoreWriteFailed(Exception):
    """The intake transaction could not be stored (the database refused or was unreachable); nothing of it was
    stored. The message names the kind of error, never a value."""


class IntakeUnit(Protocol):
    """One intake transaction (or read)."""

    def stored_events(self, event_ids: Iterable[str]) -> dict[str, IntakeRow]:
        """The stored events among ``event_ids``, by id, with their current status (not their record)."""
        ...

    def insert_events(self, rows: Sequence[IntakeRow]) -> None:
        """Store new events as ``accepted``, received now (``EventIdTaken`` from the transaction if one is stored
        already)."""
        ...

    @property
    def port(self) -> StorePort:
        """The storage port over this transaction, for the dead letters and their outbox rows (only in a
        transaction opened with ``dead_letters=True``) and the reads the intake's checks make."""
        ...


class IntakeStore(Protocol):
    """Where the intake's transactions come from (``Store``, ``MemoryStore``)."""

    def intake_transaction(self, dead_letters: bool = True) -> AbstractContextManager[IntakeUnit]:
        """One writing transaction, committed (on disk) when the block ends, rolled back if it raises; a unique
        clash comes out as ``EventIdTaken``, any other database error as ``StoreWriteFailed``. Without
        ``dead_letters`` the store may take a faster path whose unit has no port (SQLite's group commit: asking for it
        raises ``TypeError``)."""
        ...

    def intake_reads(self) -> AbstractContextManager[IntakeUnit]:
        """A read-only look at the store: stored events, and the port's reference reads."""
        ...
