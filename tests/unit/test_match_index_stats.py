"""The statistics a worker takes from the match index stay as they were when it took them: later changes to
the index (another worker applying reference changes, or a reload) never change the name counts it scores with."""

from __future__ import annotations

from datetime import date

import pytest

from pipeline.adapters.match_index import ReferenceIndex, ReferenceRow
from pipeline.domain.model import Identity

JACOB = Identity("Jacob", "Hartley", date(2012, 5, 3), "M", None, "NS1 4AB")
AVA = Identity("Ava", "Stone", date(2011, 1, 9), "F", None, "NS2 1CD")
ROWS = [ReferenceRow("pupils", "P1", JACOB, upn="P1"), ReferenceRow("pupils", "P2", AVA, upn="P2")]


def _counts(index: ReferenceIndex) -> tuple[dict[str, int], dict[str, int]]:
    return dict(index.stats.given_counts), dict(index.stats.family_counts)


def test_changes_applied_after_the_stats_were_taken_leave_them_as_they_were() -> None:
    index = ReferenceIndex()
    index.load(ROWS)
    taken = index.stats
    before = _counts(index)
    index.add(ReferenceRow("pupils", "P3", Identity("Jacob", "Hartley", date(2013, 2, 1), "M", None, "NS1 4AB"),
                           upn="P3"))
    index.remove("pupils", "P2")
    assert (dict(taken.given_counts), dict(taken.family_counts)) == before
    assert taken.population == taken.records == 2


def test_a_reload_gives_new_stats_and_leaves_the_earlier_ones_as_they_were() -> None:
    index = ReferenceIndex()
    index.load(ROWS)
    taken = index.stats
    before = _counts(index)
    index.load([*ROWS, ReferenceRow("pupils", "P3", JACOB, upn="P3")])
    assert (dict(taken.given_counts), dict(taken.family_counts)) == before
    given_after, _ = _counts(index)
    assert sum(given_after.values()) == sum(before[0].values()) + 1
    assert index.stats.records == 3


def test_the_stats_cannot_be_changed_through_their_counts() -> None:
    index = ReferenceIndex()
    index.load(ROWS)
    counts = index.stats.given_counts
    name = next(iter(counts))
    with pytest.raises(TypeError):
        counts[name] = 99  # type: ignore[index]
    assert index.stats.given_counts[name] == 1
