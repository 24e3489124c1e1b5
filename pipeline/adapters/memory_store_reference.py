"""The in-memory fake's answers to the store port's reference-data part (pipeline/ports/reference_data.py):
loading reference files and storing the matcher's parameters. A mixin of
``pipeline.adapters.memory_store.MemoryStore``, over its state.

Reference rows are ``SimpleNamespace``s with the tables' column names, kept (ended or not) beside the fake's
other records, so a unit of work or savepoint that raises undoes a load with everything else. The fake's change
log is its reference version: each logged change moves it on, and ``sync_match_index`` rebuilds an index whose
version is behind.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence
from datetime import date, datetime
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from pipeline.adapters.match_training_rows import EVENTS_NAMING_A_CHILD, child_of_stored_event
from pipeline.domain.fellegi_sunter import Parameters
from pipeline.domain.model import Identity, on_roll

if TYPE_CHECKING:
    from pipeline.adapters.memory_store import _State

# kind -> the column its rows are keyed by (as the SQL tables' primary keys)
KEY_COLUMNS = {"schools": "urn", "teams": "team", "pupils": "row_key", "ehe": "row_key", "involvements": "row_key"}


class MemoryReferenceData:
    """Reference loads and match training over the fake's state."""

    if TYPE_CHECKING:
        _state: _State

    def _rows_of(self, kind: str) -> dict[str, Any]:
        return getattr(self._state, kind)

    # ---- reference loads ---------------------------------------------------------------------------
    def school_ever_loaded(self, urn: str) -> bool:
        return urn in self._state.schools

    def current_keys(self, kind: str) -> set[str]:
        return {key for key, row in self._rows_of(kind).items() if row.ended_at is None}

    def pupils_on_roll(self, urns: Collection[str], day: date) -> dict[str, int]:
        wanted = set(urns)
        counted = Counter(urn for urn, _ in {(row.school_urn, row.upn) for row in self._state.pupils.values()
                                             if row.ended_at is None and row.school_urn in wanted
                                             and on_roll(row.on_roll_from, row.on_roll_to, day)})
        return dict(counted)

    def involvement_routes(self) -> tuple[set[str], set[str]]:
        current = [row for row in self._state.involvements.values() if row.ended_at is None]
        return ({row.team for row in current if row.team}, {row.placing_la for row in current if row.placing_la})

    def take_turn_to_load(self) -> None:
        """Nothing to wait for: one unit of work at a time."""

    def upsert_current_rows(self, kind: str, items: Sequence[dict[str, Any]]) -> list[str]:
        rows, key = self._rows_of(kind), KEY_COLUMNS[kind]
        changed: list[str] = []
        for item in items:
            existing = rows.get(item[key])
            if existing is None:
                rows[item[key]] = SimpleNamespace(**item, ended_at=None)
                changed.append(item[key])
                continue
            if existing.ended_at is not None or any(getattr(existing, n) != v for n, v in item.items()):
                changed.append(item[key])
            vars(existing).update(item, ended_at=None)
        return changed

    def end_vanished_rows(self, kind: str, keys: Collection[Any], now: datetime) -> list[str]:
        ended: list[str] = []
        for key, row in self._rows_of(kind).items():
            if row.ended_at is None and key not in keys:
                row.ended_at = now
                ended.append(key)
        return ended

    def log_reference_changes(self, kind: str, keys: Sequence[str], now: datetime) -> None:
        self._state.reference_version += len(keys)  # as the SQL change log's sequence moves on a row a key

    # ---- match training ----------------------------------------------------------------------------
    def recent_event_children(self, limit: int) -> list[Identity]:
        events = sorted((e for e in self._state.events.values() if e.event_type in EVENTS_NAMING_A_CHILD),
                        key=lambda e: e.seq or 0, reverse=True)
        return [child_of_stored_event(e.event_type, e.record_json) for e in events[:limit]]

    def save_match_parameters(self, parameters: Parameters, now: datetime) -> str:
        self._state.models[parameters.version] = (now, parameters)
        return parameters.version
