"""Writes and reads of the reference tables (schools, pupils, ehe, involvements, teams) for the loader
(``pipeline.service.reference``) and the demo set-up.

A loaded file is the full current list for its kind: its rows are inserted or updated in place, rows that
vanished since the last load are ended (``ended_at`` set), never deleted, and every key that changed is
written to the reference change log, which running processes' match indexes and reference snapshots apply
before their next batch.

``ReferenceDataQueries``, a mixin of ``pipeline.adapters.repository.Repository``, answers the store port's
reference-data part (pipeline/ports/reference_data.py) with these functions, and with those of
pipeline/adapters/match_training_rows.py for match training, over the repository's session.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, insert, or_, text, update
from sqlalchemy import select as core_select
from sqlmodel import Session, col, select

from pipeline.adapters import tables as t
from pipeline.adapters.match_training_rows import recent_event_children, save_parameters
from pipeline.domain.model import Identity

if TYPE_CHECKING:
    from pipeline.domain.fellegi_sunter import Parameters

# kind -> (table, key column)
TABLES: dict[str, tuple[type[Any], str]] = {
    "schools": (t.School, "urn"),
    "pupils": (t.Pupil, "row_key"),
    "ehe": (t.EheRecord, "row_key"),
    "involvements": (t.Involvement, "row_key"),
    "teams": (t.TeamContact, "team"),
}


# The rows a load may change are read, and ended, this many keys a statement (SQLite binds at most 32,766
# parameters).
_KEYS_PER_STATEMENT = 900


def _chunks(keys: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(keys), _KEYS_PER_STATEMENT):
        yield keys[start:start + _KEYS_PER_STATEMENT]


def upsert_current_rows(session: Session, kind: str, items: Sequence[dict[str, Any]]) -> list[str]:
    """Insert new rows and update the others in place (un-ending any that had ended); the keys that changed.
    The stored rows are read a chunk of keys a statement and held here (the session's identity map holds them only
    weakly), nothing is flushed until the end and the new rows go in as one multi-row insert: a row a time cost a
    query and a flush each (minutes for a large council's pupils)."""
    model, key = TABLES[kind]
    column = col(getattr(model, key))
    stored: dict[Any, Any] = {}
    changed: list[str] = []
    with session.no_autoflush:
        for chunk in _chunks([item[key] for item in items]):
            stored.update((getattr(row, key), row) for row in session.exec(select(model).where(column.in_(chunk))))
        new: list[dict[str, Any]] = []
        for item in items:
            existing = stored.get(item[key])
            if existing is None:
                new.append(item)
                changed.append(item[key])
            elif existing.ended_at is not None or any(getattr(existing, n) != v for n, v in item.items()):
                for name, value in item.items():
                    setattr(existing, name, value)
                existing.ended_at = None
                changed.append(item[key])
    if new:  # one multi-row insert, no ORM object made for each
        session.execute(insert(model.__table__), [{**item, "ended_at": None} for item in new])
    return changed


def current_keys(session: Session, kind: str) -> list[Any]:
    """The keys of the current (not ended) rows of ``kind``, read alone."""
    model, key = TABLES[kind]
    return list(session.exec(select(col(getattr(model, key))).where(col(model.ended_at).is_(None))).all())


def end_vanished_rows(session: Session, kind: str, keys: Collection[Any], now: datetime) -> list[str]:
    """End (``ended_at = now``) every current row of ``kind`` whose key is not in ``keys``; their keys. The current
    keys are read alone and the vanished rows ended by key, a chunk a statement, with no row loaded."""
    model, key = TABLES[kind]
    column = col(getattr(model, key))
    session.flush()  # rows this unit of work added or un-ended are current
    ended = [value for value in current_keys(session, kind) if value not in keys]
    for chunk in _chunks(ended):
        session.execute(update(model).where(column.in_(chunk)).values(ended_at=now))
    return ended


# The PostgreSQL advisory lock loads take turns on (any fixed number: only loads take it).
LOAD_LOCK = 0x5AFE_4EF0


def take_turn_to_load(session: Session) -> None:
    """Wait for any other load to commit, and hold the turn until this transaction ends. Without it, two loads at
    once on PostgreSQL could commit their change-log rows out of sequence order, and a process that had read the
    higher number would never see the lower one's changes. (SQLite writers already take turns.)"""
    if session.get_bind().dialect.name == "postgresql":
        session.connection().execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOAD_LOCK})


def log_reference_changes(session: Session, kind: str, keys: Sequence[str], now: datetime) -> None:
    """One change-log row per changed key (keys only), for the match indexes and reference snapshots of running
    processes (pipeline/adapters/match_index.py, reference_cache.py), in the transaction of the change."""
    session.add_all([t.ReferenceChange(kind=kind, row_key=key, at=now) for key in keys])


class ReferenceDataQueries:
    """Loading reference files and storing the matcher's parameters (pipeline/ports/reference_data.py), in the
    repository's transaction. The rows a command writes are flushed before it returns, and the repository forgets
    what it had read of the reference data and the parameters: its reads (the match index's sync, the reference
    version, the snapshot) go to the connection past the ORM session, and its later questions must see them."""

    _schools_ever_loaded: set[str] | None = None  # every URN ever loaded, read once a unit of work

    if TYPE_CHECKING:
        @property
        def session(self) -> Session: ...

        def _forget_reference_reads(self) -> None: ...

    def school_ever_loaded(self, urn: str) -> bool:
        # Asked once for each pupil of a file: every URN read in one statement, once a unit of work (again after a
        # schools load in it).
        ever = self._schools_ever_loaded
        if ever is None:
            ever = self._schools_ever_loaded = set(self.session.exec(select(t.School.urn)).all())
        return urn in ever

    def current_keys(self, kind: str) -> set[str]:
        return set(current_keys(self.session, kind))

    def pupils_on_roll(self, urns: Collection[str], day: date) -> dict[str, int]:
        if not urns:
            return {}
        pupil = t.Pupil
        rows = self.session.exec(
            select(pupil.school_urn, func.count(func.distinct(pupil.upn))).where(
                col(pupil.school_urn).in_(list(urns)), col(pupil.ended_at).is_(None),
                or_(col(pupil.on_roll_from).is_(None), col(pupil.on_roll_from) <= day),
                or_(col(pupil.on_roll_to).is_(None), col(pupil.on_roll_to) >= day))
            .group_by(pupil.school_urn)).all()
        return {urn: int(count) for urn, count in rows}

    def involvement_routes(self) -> tuple[set[str], set[str]]:
        involvement = t.Involvement
        rows = self.session.exec(select(involvement.team, involvement.placing_la).where(
            col(involvement.ended_at).is_(None)).distinct()).all()
        return {team for team, _ in rows if team}, {placing for _, placing in rows if placing}

    def take_turn_to_load(self) -> None:
        take_turn_to_load(self.session)

    def upsert_current_rows(self, kind: str, items: Sequence[dict[str, Any]]) -> list[str]:
        if kind == "schools":
            self._schools_ever_loaded = None
        changed = upsert_current_rows(self.session, kind, items)
        self.session.flush()
        return changed

    def end_vanished_rows(self, kind: str, keys: Collection[Any], now: datetime) -> list[str]:
        ended = end_vanished_rows(self.session, kind, keys, now)
        self.session.flush()
        return ended

    def log_reference_changes(self, kind: str, keys: Sequence[str], now: datetime) -> None:
        log_reference_changes(self.session, kind, keys, now)
        self.session.flush()
        self._forget_reference_reads()

    def recent_event_children(self, limit: int) -> list[Identity]:
        return recent_event_children(self.session.connection(), limit)

    def save_match_parameters(self, parameters: Parameters, now: datetime) -> str:
        version = save_parameters(self.session.connection(), parameters, now)
        self._forget_reference_reads()
        return version


def any_school_loaded(session: Session) -> bool:
    return session.exec(select(t.School)).first() is not None


def first_state_school_in_area(session: Session) -> t.School | None:
    """The in-area state school with the lowest URN (the demo's DSL school)."""
    return session.exec(select(t.School).where(t.School.in_area, t.School.school_type == "STATE")
                        .order_by(t.School.urn)).first()


def first_allocated_worker(session: Session) -> str | None:
    """The alphabetically first worker email named on an involvement (the demo's worker)."""
    return session.exec(select(t.Involvement.worker_email)
                        .where(t.Involvement.worker_email.is_not(None))  # type: ignore[union-attr]
                        .order_by(t.Involvement.worker_email)).first()


def demo_pupils(session: Session, limit: int = 200) -> list[Any]:
    """Pupils on the roll of the first three in-area schools (the demo hospital's patients), as plain rows
    with the identity fields an attendance carries."""
    urns = list(session.exec(select(t.School.urn).where(t.School.in_area)).all())[:3]
    pupil = t.Pupil.__table__  # type: ignore[attr-defined]
    return list(session.connection().execute(
        core_select(pupil.c.nhs_number, pupil.c.given_name, pupil.c.family_name, pupil.c.date_of_birth,
                    pupil.c.sex, pupil.c.postcode)
        .where(pupil.c.school_urn.in_(urns), pupil.c.on_roll_to.is_(None)).limit(limit)).all())
