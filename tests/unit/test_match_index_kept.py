"""The candidates the match index keeps per identity: found once while its contents stay as they are, found
afresh after any change (a record added or removed, a rebuild), so a kept block never hides a change."""

from __future__ import annotations

import gc
import weakref
from datetime import date

from pipeline.adapters.match_index import ReferenceIndex, ReferenceRow
from pipeline.domain.model import Identity

ISLA = Identity("Isla", "Fairbairn", date(2012, 7, 21), "F", None, "NS3 4EF")


def _keys(index: ReferenceIndex) -> list[str]:
    return [candidate.record_key for candidate in index.candidates(ISLA)]


def test_the_same_identity_gets_the_same_candidates_until_the_index_changes() -> None:
    index = ReferenceIndex()
    index.load([ReferenceRow("pupils", "C1", ISLA, upn="C1")])
    first = index.candidates(ISLA)
    assert index.candidates(ISLA) is first and [c.record_key for c in first] == ["C1"]
    index.add(ReferenceRow("pupils", "C2", ISLA, upn="C2"))
    assert _keys(index) == ["C1", "C2"]
    index.remove("pupils", "C1")
    assert _keys(index) == ["C2"]
    index.load([ReferenceRow("ehe", "E1", ISLA)])
    assert _keys(index) == ["E1"]
    assert [c.record_key for c in first] == ["C1"]  # a block handed out is never changed


def test_a_reload_drops_the_blocks_found_before_it() -> None:
    """The kept blocks hold the old contents' records and columns: a reload lets them go."""
    index = ReferenceIndex()
    index.load([ReferenceRow("pupils", "C1", ISLA, upn="C1")])
    block = weakref.ref(index.candidates(ISLA))
    columns = weakref.ref(index.columns)
    index.load([ReferenceRow("pupils", "C2", ISLA, upn="C2")])
    gc.collect()
    assert block() is None and columns() is None
    assert _keys(index) == ["C2"]
