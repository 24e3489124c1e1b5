"""The reference data's writers' part of the store port: loading the contract's CSVs and storing the matcher's
parameters estimated from what was loaded.

``safeguard load`` (pipeline/service/reference.py) gives the ``ReferenceLoads`` commands, ``safeguard match
train`` (pipeline/service/match_training.py) asks and gives the ``MatchTraining`` ones. The SQL adapter
(pipeline/adapters/reference_store.py) and the in-memory fake (pipeline/adapters/memory_store_reference.py)
answer them; the contract suite (tests/integration/test_store_contract_reference.py) holds them to the same
answers.

A kind's rows are dicts of its table's columns (``ended_at`` aside), keyed as ``pipeline.service.reference``
keys them: schools by ``urn``, teams by ``team``, pupils, ehe and involvements by ``row_key`` (a pupil's is one
enrolment: ``pupil_row_key``).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Protocol

from pipeline.domain.model import Identity

if TYPE_CHECKING:
    from pipeline.domain.fellegi_sunter import Parameters


class ReferenceLoads(Protocol):
    """What loading one kind's file (the full current list of that kind) asks and does."""

    def school_ever_loaded(self, urn: str) -> bool:
        """Whether a school with this URN was ever loaded, ended or not (a pupil's school must be)."""
        ...

    def current_keys(self, kind: str) -> set[str]:
        """The keys of the current (not ended) rows of ``kind``."""
        ...

    def pupils_on_roll(self, urns: Collection[str], day: date) -> dict[str, int]:
        """How many current pupils (UPNs: two rows of one child at a school count once) each of these schools has on
        roll on ``day`` (schools with none left out)."""
        ...

    def involvement_routes(self) -> tuple[set[str], set[str]]:
        """What the current involvements route to: the teams they name, and the placing councils' codes."""
        ...

    def take_turn_to_load(self) -> None:
        """Wait for any other load to commit and hold the turn until this unit of work ends, so the change log's
        entries are in commit order (a running process trusts its newest as the version it has seen)."""
        ...

    def upsert_current_rows(self, kind: str, items: Sequence[dict[str, Any]]) -> list[str]:
        """Store each row as current: new ones added, the others updated in place (an ended one un-ended). The keys
        of the rows that are new or changed (un-ending counts as a change), in the order of ``items``."""
        ...

    def end_vanished_rows(self, kind: str, keys: Collection[Any], now: datetime) -> list[str]:
        """End (``ended_at = now``, never delete) every current row of ``kind`` whose key is not in ``keys``;
        the keys of the rows ended (in no particular order). Rows already ended stay as they are."""
        ...

    def log_reference_changes(self, kind: str, keys: Sequence[str], now: datetime) -> None:
        """Record that these rows of ``kind`` changed (keys only), in this unit of work: what makes the change
        reach every process's match index (``sync_match_index``) and reference snapshot. A change not logged
        may go unseen by an index already synced."""
        ...


class MatchTraining(Protocol):
    """What estimating the matcher's parameters from the stored data reads and writes (the match index itself
    comes from ``sync_match_index``)."""

    def recent_event_children(self, limit: int) -> list[Identity]:
        """The children named by the most recent events that name one (self-harm attendances and missing
        reports, processed or not), newest first, at most ``limit``."""
        ...

    def save_match_parameters(self, parameters: Parameters, now: datetime) -> str:
        """Store the parameters stamped ``now`` (``newest_match_parameters`` gives the latest stamped); parameters
        already stored (the same version) are stamped ``now`` again. Returns their version."""
        ...
