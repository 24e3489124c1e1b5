"""The storage port: the named questions the services ask and the named commands they give.

The services (pipeline/service/) are typed against these Protocols only; they never import the tables, SQLModel
or SQLAlchemy. Two adapters implement them: ``Repository`` (pipeline/adapters/repository.py, SQLite and
PostgreSQL) and ``MemoryStore`` (pipeline/adapters/memory_store.py, the fake the unit tests use). The contract
suite (tests/integration/test_store_contract*.py) holds both to the same answers.

One port object is one unit of work (one transaction): records it returns are live until it ends (see
pipeline/ports/records.py), and nothing it wrote is visible to others until it commits. The port is split in
parts so each pathway adds its own without editing the others; ``pipeline.ports.StorePort`` composes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Protocol

from pipeline.domain.model import (
    Candidate,
    ChildFacts,
    Directory,
    Identity,
    PlannedDeadline,
    PlannedNotification,
    School,
)
from pipeline.ports.records import DeadLetterRecord, DeadlineRecord, EventRecord, NotificationRecord

if TYPE_CHECKING:
    from pipeline.adapters.match_index import ReferenceIndex
    from pipeline.domain.fellegi_sunter import Parameters


class ReferenceReads(Protocol):
    """Reference facts for the rules (schools, teams, pupils, home education, involvements) and child ids."""

    def school(self, urn: str) -> School | None:
        """A current school by URN."""
        ...

    def directory(self) -> Directory:
        """Current team contacts by team code."""
        ...

    def child_facts(self, child_id: str, members: list[Candidate], identity: Identity, day: date) -> ChildFacts:
        """What the routing needs about one linked person, from the reference records matched to them, on ``day``."""
        ...

    def facts_for_child(self, child_id: str, day: date) -> ChildFacts | None:
        """Reference facts for a known child id (from its person key), or None if nothing is on file."""
        ...

    def child_id(self, person_key: str) -> str:
        """The opaque child id for a person key (UPN or NHS number), created once on first sight."""
        ...

    def child_ids(self, person_keys: Sequence[str]) -> dict[str, str]:
        """``child_id`` of several person keys at once (a batch's linked people): each key's opaque child id, those
        never seen created, in one go."""
        ...

    def read_pupils_ahead(self, upns: Sequence[str]) -> None:
        """The current pupil records of these UPNs, read now in one go for the ``child_facts`` this unit of work
        asks next (a batch's linked pupils); the answers are what they would have been without it."""
        ...

    def is_known_child(self, child_id: str) -> bool:
        """Whether the pipeline ever issued this child id."""
        ...

    def team_of_person(self, role: str, email: str) -> str | None:
        """The allocated team of a worker, team manager or IRO (from the open involvements naming them)."""
        ...

    def sync_match_index(self, index: ReferenceIndex) -> None:
        """The version check: bring this process's in-memory match index up to the stored reference data."""
        ...

    def newest_match_parameters(self, current_version: str | None) -> Parameters | None:
        """The newest stored matcher parameters if they are not ``current_version``, else None."""
        ...


class EffectWrites(Protocol):
    """What an event or a sweep causes: audit entries, output records, notifications and their deliveries."""

    def audit(self, at: datetime, actor: str, action: str, subject_id: str, reason: str = "") -> None:
        """Append one audit entry (append-only: never changed or removed)."""
        ...

    def outbox(self, at: datetime, topic: str, key: str, body: dict[str, Any],
               notification_id: str | None = None) -> None:
        """Queue one record for an output topic (published by the relay after commit)."""
        ...

    def add_notification(self, event_id: str, pathway: str, item: PlannedNotification, status: str, now: datetime,
                         *, dedupe_key: str | None = None, deadline_id: str | None = None,
                         key_is_new: bool = False) -> NotificationRecord | None:
        """Store a notification for ``item``. With a ``dedupe_key`` it exists at most once ever: a repeat (even
        from a transaction racing this one) stores nothing and returns None. ``key_is_new``: the caller knows
        no other unit of work has stored or can store this key (its subject is new, held under a lock), so the
        store need not ask; a repeat within this unit of work still returns None."""
        ...

    def add_delivery(self, notification_id: str, channel: str, now: datetime) -> None:
        """One delivery row (state ``new``, due now) for a notification on one channel; once per channel."""
        ...

    def notification(self, notification_id: str) -> NotificationRecord | None:
        ...

    def add_dead_letter(self, now: datetime, source: str, event_type: str | None, reason: str, payload: bytes, *,
                        producer_id: int | None = None, event_id: str | None = None) -> DeadLetterRecord:
        """Keep a refused input (its reason names fields, never values)."""
        ...


class DeadlineStore(Protocol):
    """Deadlines: what is due by when, and the escalation ladder that fires if it is missed."""

    def add_deadline(self, planned: PlannedDeadline, subject_id: str, now: datetime, *, event_id: str | None,
                     child_id: str | None, once: bool = False) -> DeadlineRecord | None:
        """Store an open deadline. At most one per (kind, subject) and one open ``trigger_meeting`` per child:
        with ``once`` an existing one is left as it is (a closed one is never re-opened) and None returned;
        without, a clash raises. After a batch's read-ahead (``episodes_for_update``, ``read_children_ahead``,
        ``deadlines_of_subjects``) ``once`` answers from what was read under the batch's locks; a clashing row
        that a writer taking no such lock (the sweep) stored since then fails the unit of work at its write
        instead, and the consumers take the batch again one event at a time, without the read-ahead."""
        ...

    def deadline(self, deadline_id: str) -> DeadlineRecord | None:
        ...

    def deadlines_of_subject(self, subject_id: str) -> Sequence[DeadlineRecord]:
        """Every deadline (open or closed) about one subject, oldest first."""
        ...

    def deadlines_of_subjects(self, subject_ids: Sequence[str]) -> Sequence[DeadlineRecord]:
        """Every deadline (open or closed) about any of these subjects, oldest first: one read for several."""
        ...

    def open_deadlines_due(self, now: datetime, limit: int) -> Sequence[DeadlineRecord]:
        """Open deadlines whose next ladder step is due by ``now``, earliest step first, at most ``limit``; on
        PostgreSQL claimed (skipping rows another sweeper holds)."""
        ...


class EventStore(Protocol):
    """Accepted events and the per-child lock."""

    def events_by_id(self, event_ids: Sequence[str], *, lock: bool = True) -> Sequence[EventRecord]:
        """The events with these ids (in no particular order); with ``lock``, claimed for this unit of work."""
        ...

    def held_event_ids(self) -> list[str]:
        """Events held after their last automatic try, oldest first."""
        ...

    def claim_due_events(self, now: datetime, limit: int, *, retries_only: bool = False) -> Sequence[EventRecord]:
        """Accepted, not held events to process now, oldest first, at most ``limit``, claimed for this unit of work:
        new ones (unless ``retries_only``) and failed ones whose next try is due by ``now``. On PostgreSQL, events
        another unit of work has claimed are skipped (it is processing them)."""
        ...

    def claim_events(self, seqs: Sequence[int]) -> Sequence[EventRecord]:
        """The events among ``seqs`` still ``accepted`` (held or not), oldest first, claimed for this unit of work
        (PostgreSQL: skipping those another unit of work has claimed)."""
        ...

    def store_event(self, event_type: str, event_id: str, record_json: str, content_hash: str, now: datetime, *,
                    producer_id: int | None = None) -> EventRecord:
        """A new accepted event this unit of work stores (the Kafka worker's record, sent straight to its topic), as
        a live record: what is set on it before the unit of work ends is stored with it (processed, say). Its
        ``seq`` may be None until it is read again (the SQL store numbers it when it writes it, together with the
        unit of work's other new events). An event_id already stored fails the unit of work (the SQL store's
        ``IntegrityError`` at its next write point, the fake's ``UniquenessViolation`` at once)."""
        ...

    def lock_child(self, child_id: str) -> None:
        """Serialise per-child rules across workers until this unit of work ends."""
        ...

    def lock_children(self, child_ids: Sequence[str]) -> None:
        """``lock_child`` of several children at once (a batch's): on PostgreSQL locked together in one order (the
        child ids'), so the batch's own ``lock_child`` of each is then answered without a statement."""
        ...


class Transaction(Protocol):
    """Savepoints within the unit of work."""

    def savepoint(self) -> AbstractContextManager[None]:
        """Everything written inside is kept if the block ends normally and undone if it raises (the exception
        propagates); records read before stay usable, with their state as at the savepoint."""
        ...
