"""The in-memory fake's answers to the intake part of the store port (pipeline/ports/intake.py): a mixin of
``pipeline.adapters.memory_store.MemoryStore``. An intake transaction is one of the fake's units of work, so a
batch that fails stores nothing; an event id stored twice is ``EventIdTaken``, as the SQL schema's unique index
makes it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from pipeline.adapters.store_records import UniquenessViolation
from pipeline.ports.intake import NO_PORT, EventIdTaken, IntakeRow

if TYPE_CHECKING:
    from pipeline.adapters.memory_store import MemoryStore, _State
    from pipeline.ports import StorePort


class MemoryIntakeUnit:
    """One intake transaction (or read) over the fake. Opened without dead letters it has no port, as SQLite's
    group commit has none (pipeline/adapters/intake_rows.py), so a service asking for one fails here too."""

    def __init__(self, store: MemoryStore, with_port: bool = True) -> None:
        self._store = store
        self._with_port = with_port

    def stored_events(self, event_ids: Iterable[str]) -> dict[str, IntakeRow]:
        events = self._store._state.events  # noqa: SLF001 - the fake's own state
        return {event_id: IntakeRow.found(event)
                for event_id in dict.fromkeys(event_ids) if (event := events.get(event_id)) is not None}

    def insert_events(self, rows: Sequence[IntakeRow]) -> None:
        now = datetime.now(UTC)
        for row in rows:
            self._store.store_event(row.event_type, row.event_id, row.record_json, row.content_hash, now,
                                    producer_id=row.producer_id)

    @property
    def port(self) -> StorePort:
        if not self._with_port:
            raise TypeError(NO_PORT)
        return self._store


class MemoryIntake:
    """The intake's transactions over the fake's units of work."""

    if TYPE_CHECKING:
        _state: _State

        def unit_of_work(self) -> AbstractContextManager[Any]: ...

    @contextmanager
    def intake_transaction(self, dead_letters: bool = True) -> Iterator[MemoryIntakeUnit]:
        """One of the fake's units of work: a batch that raises stores nothing; an id stored twice is
        ``EventIdTaken``."""
        try:
            with self.unit_of_work():
                yield MemoryIntakeUnit(cast("MemoryStore", self), with_port=dead_letters)
        except UniquenessViolation as error:
            raise EventIdTaken("an event_id of this transaction was stored by another writer") from error

    @contextmanager
    def intake_reads(self) -> Iterator[MemoryIntakeUnit]:
        """A look at the fake's state as it is (single-threaded: there is no other writer to wait for)."""
        yield MemoryIntakeUnit(cast("MemoryStore", self))
