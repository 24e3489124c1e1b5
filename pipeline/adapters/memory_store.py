"""The storage port in memory: the fake the unit tests run the handlers, the sweep and the retries against.

``MemoryStore`` implements ``pipeline.ports.StorePort`` (and ``UnitsOfWork``: ``unit_of_work()`` hands out the
store itself) with plain dataclasses in dicts, and keeps the guarantees the SQL adapter gets from its schema:
one child id per person key, one notification per dedupe key, one delivery per (notification, channel), one
deadline per (kind, subject) and one open trigger meeting per child, audit entries only ever appended. A unit of
work or a savepoint that raises is undone: every record goes back to its state at the start and records added
since are gone. The contract suite (tests/integration/test_store_contract*.py) holds it to the SQL adapter's
answers. Single-threaded: one unit of work at a time.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from pipeline import codec
from pipeline.adapters.match_index import ReferenceIndex, ReferenceRow
from pipeline.adapters.memory_store_accounts import (
    MemoryAccounts,
    MemoryApiToken,
    MemoryLoginAttempt,
    MemoryUser,
    MemoryWebSession,
)
from pipeline.adapters.memory_store_deliveries import MemoryDeliveries, MemoryDelivery
from pipeline.adapters.memory_store_intake import MemoryIntake
from pipeline.adapters.memory_store_missing import MemoryEpisodes, MemoryTriggerMeeting
from pipeline.adapters.memory_store_reference import MemoryReferenceData
from pipeline.adapters.record_ids import new_child_id, new_id
from pipeline.adapters.store_records import Deadline, Episode, Event, Notification, UniquenessViolation
from pipeline.domain.fellegi_sunter import Parameters
from pipeline.domain.matching import exact_identity
from pipeline.domain.model import (
    Candidate,
    ChildFacts,
    Contact,
    DeadlineKind,
    DeadlineState,
    Directory,
    EventStatus,
    Identity,
    Involvement,
    PlannedDeadline,
    PlannedNotification,
    School,
    ladder_json,
    latest_enrolment_first,
    roll_on,
)
from pipeline.service.reference import load

if TYPE_CHECKING:
    from pipeline.ports import StorePort


MemoryEvent = Event  # the fake keeps the records both adapters share (pipeline/adapters/store_records.py)


@dataclass
class MemoryDeadLetter:
    id: str
    received_at: datetime
    source: str
    event_type: str | None
    reason: str
    payload: bytes
    producer_id: int | None = None
    event_id: str | None = None


@dataclass(frozen=True)
class AuditLine:
    at: datetime
    actor: str
    action: str
    subject_id: str
    reason: str


@dataclass(frozen=True)
class OutboxLine:
    id: int  # its place in the outbox, from 1 (``outbox_relayed`` holds when it was relayed)
    at: datetime
    topic: str
    key: str
    body: dict[str, Any]
    notification_id: str | None


# The keyed collections of the store (reference rows are SimpleNamespaces with the tables' column names).
_TABLES = ("schools", "teams", "pupils", "ehe", "involvements", "children", "events", "notifications",
           "deliveries", "deadlines", "dead_letters", "models", "episodes", "trigger_meetings", "users", "api_tokens",
           "web_sessions", "login_attempts", "outbox_relayed")


@dataclass
class _State:
    schools: dict[str, Any] = field(default_factory=dict)
    teams: dict[str, Any] = field(default_factory=dict)
    pupils: dict[str, Any] = field(default_factory=dict)
    ehe: dict[str, Any] = field(default_factory=dict)
    involvements: dict[str, Any] = field(default_factory=dict)
    children: dict[str, str] = field(default_factory=dict)  # child_id -> person_key
    events: dict[str, MemoryEvent] = field(default_factory=dict)
    notifications: dict[str, Notification] = field(default_factory=dict)
    deliveries: dict[tuple[str, str], MemoryDelivery] = field(default_factory=dict)
    deadlines: dict[str, Deadline] = field(default_factory=dict)
    dead_letters: dict[str, MemoryDeadLetter] = field(default_factory=dict)
    models: dict[str, tuple[datetime, Parameters]] = field(default_factory=dict)
    episodes: dict[str, Episode] = field(default_factory=dict)
    trigger_meetings: dict[str, MemoryTriggerMeeting] = field(default_factory=dict)  # by event_id
    users: dict[int, MemoryUser] = field(default_factory=dict)
    api_tokens: dict[str, MemoryApiToken] = field(default_factory=dict)  # by token hash
    web_sessions: dict[str, MemoryWebSession] = field(default_factory=dict)  # by token hash
    login_attempts: dict[int, MemoryLoginAttempt] = field(default_factory=dict)  # in the order made
    audit: list[AuditLine] = field(default_factory=list)
    outbox: list[OutboxLine] = field(default_factory=list)
    outbox_relayed: dict[int, datetime] = field(default_factory=dict)  # by outbox line id
    reference_version: int = 0
    next_seq: int = 1


def _identity(row: Any) -> Identity:
    return Identity(given_name=row.given_name, family_name=row.family_name, date_of_birth=row.date_of_birth,
                    sex=getattr(row, "sex", None), nhs_number=row.nhs_number, postcode=getattr(row, "postcode", None))


class _Snapshot:
    """The store's state at the start of a unit of work or savepoint, to go back to if it raises."""

    def __init__(self, state: _State) -> None:
        self.tables = {name: dict(getattr(state, name)) for name in _TABLES}
        self.values = {id(obj): copy.copy(obj) for name in _TABLES for obj in getattr(state, name).values()
                       if hasattr(obj, "__dict__") and not isinstance(obj, tuple)}
        self.audit, self.outbox = len(state.audit), len(state.outbox)
        self.reference_version, self.next_seq = state.reference_version, state.next_seq

    def restore(self, state: _State) -> None:
        for name, table in self.tables.items():
            for obj in table.values():
                saved = self.values.get(id(obj))
                if saved is not None:
                    obj.__dict__.update(saved.__dict__)  # the same objects, so records read before stay usable
            setattr(state, name, table)
        del state.audit[self.audit:]
        del state.outbox[self.outbox:]
        state.reference_version, state.next_seq = self.reference_version, self.next_seq


class MemoryStore(MemoryEpisodes, MemoryAccounts, MemoryReferenceData, MemoryDeliveries, MemoryIntake):
    """The whole storage port over plain objects in memory (see the module docstring)."""

    postgres = False

    def __init__(self) -> None:
        self._state = _State()
        self._in_unit = False

    # ---- setting up (test data) ------------------------------------------------------------------------
    def load_reference(self, kind: str, text: str, now: datetime | None = None) -> None:
        """Replace one kind's reference rows with a CSV of the contract's format, as ``safeguard load`` does (the
        loader itself, through this store's port): rows gone from the file are ended. All or nothing."""
        with self.savepoint():
            load(self, kind, text, now or datetime.now(UTC))

    def add_event(self, event_type: str, body: dict[str, Any], now: datetime, *,
                  producer_id: int | None = None) -> MemoryEvent:
        """Accept an event as intake does (``body``: its JSON form, as posted), not yet processed."""
        record = codec.from_json(event_type, body)
        return self.store_event(event_type, str(record["event_id"]), json.dumps(codec.to_json(event_type, record)),
                                codec.record_hash(event_type, record), now, producer_id=producer_id)

    # ---- what the tests look at ---------------------------------------------------------------------
    @property
    def audit_entries(self) -> tuple[AuditLine, ...]:
        return tuple(self._state.audit)

    @property
    def outbox_lines(self) -> tuple[OutboxLine, ...]:
        return tuple(self._state.outbox)

    @property
    def notifications(self) -> list[Notification]:
        """Every notification, oldest first."""
        return list(self._state.notifications.values())

    @property
    def deadlines(self) -> list[Deadline]:
        return list(self._state.deadlines.values())

    @property
    def deliveries(self) -> list[MemoryDelivery]:
        return list(self._state.deliveries.values())

    @property
    def dead_letters(self) -> list[MemoryDeadLetter]:
        return list(self._state.dead_letters.values())

    def event(self, event_id: str) -> MemoryEvent | None:
        return self._state.events.get(event_id)

    def person_key_of(self, child_id: str) -> str | None:
        return self._state.children.get(child_id)

    # ---- units of work ----------------------------------------------------------------------------------
    @contextmanager
    def unit_of_work(self) -> Iterator[MemoryStore]:
        if self._in_unit:
            raise RuntimeError("one unit of work at a time")
        self._in_unit = True
        try:
            with self.savepoint():
                yield self
        finally:
            self._in_unit = False

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        snapshot = _Snapshot(self._state)
        try:
            yield
        except BaseException:
            snapshot.restore(self._state)
            raise

    # ---- reference reads ----------------------------------------------------------------------------------
    def _current(self, kind: str) -> list[Any]:
        return [row for row in getattr(self._state, kind).values() if row.ended_at is None]

    def school(self, urn: str) -> School | None:
        row = self._state.schools.get(urn)
        if row is None or row.ended_at is not None:
            return None
        return School(row.urn, row.name, row.la_code, row.in_area, row.school_type,
                      Contact(row.dsl_email, row.dsl_phone), Contact(row.deputy_email, row.deputy_phone))

    def directory(self) -> Directory:
        return Directory({row.team: Contact(row.email, row.phone) for row in self._current("teams")})

    def child_facts(self, child_id: str, members: list[Candidate], identity: Identity, day: date) -> ChildFacts:
        upns = {m.upn for m in members if m.upn}
        nhs = {m.identity.nhs_number for m in members if m.identity.nhs_number}
        current = [row for upn in sorted(upns) for row in self._rows_of_upn(upn) if row.ended_at is None]
        enrolments, latest = roll_on(current, self.school, _identity, day)
        involvement_keys = {m.record_key for m in members if m.source == "involvement"}
        involvements = [
            Involvement(row.status, row.worker_email, row.team, row.manager_email, row.placing_la, row.iro_email)
            for row in sorted(self._current("involvements"), key=lambda r: r.row_key)
            if row.row_key in involvement_keys or (row.upn is not None and row.upn in upns)
            or (row.nhs_number is not None and row.nhs_number in nhs)
        ]
        home_educated = any(m.source == "ehe" for m in members) or any(
            row.nhs_number in nhs for row in self._current("ehe") if row.nhs_number)
        best = latest or next((m.identity for m in members if m.source == "pupil"),
                              members[0].identity if members else identity)
        return ChildFacts(child_id, best, enrolments, home_educated, tuple(involvements))

    def facts_for_child(self, child_id: str, day: date) -> ChildFacts | None:
        person_key = self._state.children.get(child_id)
        if person_key is None:
            return None
        kind, _, value = person_key.partition(":")
        members: list[Candidate] = []
        if kind == "upn":
            rows = self._rows_of_upn(value)
            if rows:
                pupil = rows[0]
                members.append(Candidate("pupil", pupil.row_key, _identity(pupil), upn=pupil.upn,
                                         school_urn=pupil.school_urn))
                members += [Candidate("involvement", inv.row_key, _identity(inv), upn=inv.upn)
                            for inv in sorted(self._current("involvements"), key=lambda r: r.row_key)
                            if inv.upn == value or (inv.upn is None and inv.family_key == pupil.family_key
                                                    and inv.date_of_birth == pupil.date_of_birth
                                                    and exact_identity(_identity(inv)) ==
                                                    exact_identity(_identity(pupil)))]
        elif kind == "nhs":
            members += [Candidate("involvement", inv.row_key, _identity(inv))
                        for inv in sorted(self._state.involvements.values(), key=lambda r: r.row_key)
                        if inv.nhs_number == value]
            members += [Candidate("ehe", ehe.row_key, _identity(ehe))
                        for ehe in sorted(self._state.ehe.values(), key=lambda r: r.row_key) if ehe.nhs_number == value]
        elif kind == "ehe":
            ehe = self._state.ehe.get(value)
            if ehe is not None:
                members.append(Candidate("ehe", ehe.row_key, _identity(ehe)))
        elif kind == "involvement":
            inv = self._state.involvements.get(value)
            if inv is not None:
                members.append(Candidate("involvement", inv.row_key, _identity(inv), upn=inv.upn))
        if not members:
            return None
        return self.child_facts(child_id, members, members[0].identity, day)

    def _rows_of_upn(self, upn: str) -> list[Any]:
        """Every roll row of ``upn`` (one per enrolment, ended or not), the latest enrolment first."""
        return latest_enrolment_first(row for row in self._state.pupils.values() if row.upn == upn)

    def child_id(self, person_key: str) -> str:
        for child_id, key in self._state.children.items():
            if key == person_key:
                return child_id
        child_id = new_child_id()
        self._state.children[child_id] = person_key
        return child_id

    def child_ids(self, person_keys: Sequence[str]) -> dict[str, str]:
        return {key: self.child_id(key) for key in dict.fromkeys(person_keys)}

    def read_pupils_ahead(self, upns: Sequence[str]) -> None:
        """Nothing to read ahead: every read here is in memory."""

    def is_known_child(self, child_id: str) -> bool:
        return child_id in self._state.children

    def team_of_person(self, role: str, email: str) -> str | None:
        column = {"worker": "worker_email", "team_manager": "manager_email", "iro": "iro_email"}.get(role)
        if column is None:
            return None
        teams = sorted(row.team for row in self._current("involvements")
                       if getattr(row, column) == email and row.team is not None)
        return teams[0] if teams else None

    def sync_match_index(self, index: ReferenceIndex) -> None:
        if index.seq == self._state.reference_version:
            return
        # A pupil who left the roll is still evidence of who a child is; a row ended beside a current row of its UPN
        # is not (as the SQL store's index reads them).
        current_upns = {row.upn for row in self._state.pupils.values() if row.ended_at is None}
        rows = [ReferenceRow("pupils", row.row_key, _identity(row), upn=row.upn, school_urn=row.school_urn)
                for row in self._state.pupils.values() if row.ended_at is None or row.upn not in current_upns]
        rows += [ReferenceRow("ehe", row.row_key, _identity(row)) for row in self._current("ehe")]
        rows += [ReferenceRow("involvements", row.row_key, _identity(row), upn=row.upn,
                              family_key=None if row.upn else row.family_key)
                 for row in self._current("involvements")]
        index.load(rows, {row.urn: row.name for row in self._state.schools.values()})
        index.seq = self._state.reference_version

    def newest_match_parameters(self, current_version: str | None) -> Parameters | None:
        if not self._state.models:
            return None
        latest = max(self._state.models.items(), key=lambda item: item[1][0])
        return None if latest[0] == current_version else latest[1][1]

    # ---- effects ------------------------------------------------------------------------------------------
    def audit(self, at: datetime, actor: str, action: str, subject_id: str, reason: str = "") -> None:
        self._state.audit.append(AuditLine(at, actor, action, subject_id, reason))

    def outbox(self, at: datetime, topic: str, key: str, body: dict[str, Any],
               notification_id: str | None = None) -> None:
        # Stored as the SQL adapter stores it (JSON), so a body that does not serialise fails here too.
        self._state.outbox.append(OutboxLine(len(self._state.outbox) + 1, at, topic, key,
                                             json.loads(json.dumps(body, default=str)),
                                             notification_id))

    def add_notification(self, event_id: str, pathway: str, item: PlannedNotification, status: str, now: datetime,
                         *, dedupe_key: str | None = None, deadline_id: str | None = None,
                         key_is_new: bool = False) -> Notification | None:
        if dedupe_key is not None and any(n.dedupe_key == dedupe_key for n in self._state.notifications.values()):
            return None
        row = Notification(
            id=new_id(), event_id=event_id, pathway=pathway, kind=item.kind, plan_key=item.key,
            recipient_role=item.recipient_role, recipient_ref=item.recipient_ref, school_urn=item.school_urn,
            contact_email=item.contact.email, contact_phone=item.contact.phone, urgency=item.urgency,
            reason=item.reason, status=status, content_json=json.dumps(item.content, default=str), created_at=now,
            dedupe_key=dedupe_key, deadline_id=deadline_id)
        self._state.notifications[row.id] = row
        return row

    def notification(self, notification_id: str) -> Notification | None:
        return self._state.notifications.get(notification_id)

    def add_delivery(self, notification_id: str, channel: str, now: datetime) -> None:
        if (notification_id, channel) in self._state.deliveries:
            raise UniquenessViolation("delivery notification_id, channel")
        self._state.deliveries[(notification_id, channel)] = MemoryDelivery(
            new_id(), notification_id, channel, now, next_attempt_at=now)

    def add_dead_letter(self, now: datetime, source: str, event_type: str | None, reason: str, payload: bytes, *,
                        producer_id: int | None = None, event_id: str | None = None) -> MemoryDeadLetter:
        letter = MemoryDeadLetter(new_id(), now, source, event_type, reason, payload, producer_id, event_id)
        self._state.dead_letters[letter.id] = letter
        return letter

    # ---- deadlines ----------------------------------------------------------------------------------------
    def _clash(self, kind: str, subject_id: str, child_id: str | None) -> bool:
        for other in self._state.deadlines.values():
            if other.kind == kind and other.subject_id == subject_id:
                return True
            if (kind == DeadlineKind.TRIGGER_MEETING and child_id is not None and other.kind == kind
                    and other.state == DeadlineState.OPEN and other.child_id == child_id):
                return True
        return False

    def add_deadline(self, planned: PlannedDeadline, subject_id: str, now: datetime, *, event_id: str | None,
                     child_id: str | None, once: bool = False) -> Deadline | None:
        if self._clash(planned.kind, subject_id, child_id):
            if once:
                return None
            raise UniquenessViolation("deadline kind, subject_id")
        row = Deadline(
            id=new_id(), kind=planned.kind, subject_id=subject_id, event_id=event_id, child_id=child_id,
            school_urn=planned.school_urn, due_at=planned.due_at, state=DeadlineState.OPEN, escalation_level=0,
            next_step_at=planned.steps[0].at if planned.steps else None, steps_json=ladder_json(planned.steps),
            created_at=now)
        self._state.deadlines[row.id] = row
        return row

    def deadline(self, deadline_id: str) -> Deadline | None:
        return self._state.deadlines.get(deadline_id)

    def deadlines_of_subject(self, subject_id: str) -> list[Deadline]:
        return self.deadlines_of_subjects([subject_id])

    def deadlines_of_subjects(self, subject_ids: Sequence[str]) -> list[Deadline]:
        wanted = set(subject_ids)
        return sorted((d for d in self._state.deadlines.values() if d.subject_id in wanted),
                      key=lambda d: (d.created_at, d.id))

    def open_deadlines_due(self, now: datetime, limit: int) -> list[Deadline]:
        due = [d for d in self._state.deadlines.values()
               if d.state == DeadlineState.OPEN and d.next_step_at is not None and d.next_step_at <= now]
        return sorted(due, key=lambda d: (d.next_step_at or now, d.id))[:limit]

    # ---- events -------------------------------------------------------------------------------------------
    def events_by_id(self, event_ids: Sequence[str], *, lock: bool = True) -> list[MemoryEvent]:
        return [self._state.events[i] for i in dict.fromkeys(event_ids) if i in self._state.events]

    def claim_due_events(self, now: datetime, limit: int, *, retries_only: bool = False) -> list[MemoryEvent]:
        due = [e for e in self._events_in_order() if e.status == EventStatus.ACCEPTED and e.held_at is None
               and (e.next_attempt_at <= now if e.next_attempt_at is not None else not retries_only)]
        return due[:limit]

    def claim_events(self, seqs: Sequence[int]) -> list[MemoryEvent]:
        wanted = set(seqs)
        return [e for e in self._events_in_order() if e.seq in wanted and e.status == EventStatus.ACCEPTED]

    def _events_in_order(self) -> list[MemoryEvent]:
        return sorted(self._state.events.values(), key=lambda e: e.seq or 0)

    def held_event_ids(self) -> list[str]:
        held = [e for e in self._state.events.values() if e.status == EventStatus.ACCEPTED and e.held_at is not None]
        return [e.event_id for e in sorted(held, key=lambda e: e.seq or 0)]

    def store_event(self, event_type: str, event_id: str, record_json: str, content_hash: str, now: datetime, *,
                    producer_id: int | None = None) -> MemoryEvent:
        if event_id in self._state.events:
            raise UniquenessViolation("event_id")
        event = MemoryEvent(event_id=event_id, event_type=event_type, record_json=record_json,
                            content_hash=content_hash, received_at=now, seq=self._state.next_seq,
                            producer_id=producer_id)
        self._state.next_seq += 1
        self._state.events[event_id] = event
        return event

    def lock_child(self, child_id: str) -> None:
        """Nothing to do: one unit of work at a time."""

    def lock_children(self, child_ids: Sequence[str]) -> None:
        """Nothing to do: one unit of work at a time."""


if TYPE_CHECKING:
    def _implements_the_port(store: MemoryStore) -> StorePort:
        return store
