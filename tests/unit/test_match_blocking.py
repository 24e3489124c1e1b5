"""The match index's pruning of over-large weak blocks: a true pair still reaches scoring without them.

The postcode sector with the given name's initial is looked up only while its block is small. These tests
take it away entirely (``weak_block=0``) and check that the event's true record is still fetched under each
corruption the evaluation set applies, alone and in every pair, through the other, more selective keys."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import replace
from datetime import date

import pytest

from pipeline.adapters.match_index import ReferenceIndex, ReferenceRow
from pipeline.domain.model import Identity

pytestmark = pytest.mark.unit

TRUE = Identity("William", "Hartley", date(2013, 5, 14), "M", None, "NS1 2AB")
# Others in the same postcode sector with the same initials, so the weak block is the largest one.
CROWD = [Identity(given, family, date(2010 + i % 6, 1 + i % 12, 1 + i % 28), "M", None, f"NS1 2{letter}Z")
         for i, (given, family, letter) in enumerate(itertools.product(
             ("Wayne", "Walter", "Wesley", "Wilfred"), ("Hodge", "Hughes", "Hall", "Hunt", "Hayes"), "DEFGH"))]

Corruption = Callable[[Identity], Identity]
CORRUPTIONS: dict[str, Corruption] = {
    "nickname": lambda c: replace(c, given_name="Will"),
    "given typo": lambda c: replace(c, given_name="Wiliam"),
    "family typo": lambda c: replace(c, family_name="Hartlee"),
    "transposed": lambda c: replace(c, given_name=c.family_name, family_name=c.given_name),
    "surname changed": lambda c: replace(c, family_name="Okafor"),
    "hyphenated": lambda c: replace(c, family_name=f"{c.family_name}-Okafor"),
    "day/month swap": lambda c: replace(c, date_of_birth=c.date_of_birth.replace(day=5, month=1)
                                        if c.date_of_birth and c.date_of_birth.day == 14 else c.date_of_birth),
    "one digit (day)": lambda c: replace(c, date_of_birth=c.date_of_birth.replace(day=24)
                                         if c.date_of_birth else None),
    "one digit (year)": lambda c: replace(c, date_of_birth=c.date_of_birth.replace(year=2018)
                                          if c.date_of_birth else None),
    "previous postcode": lambda c: replace(c, postcode="NS9 7QQ"),
    "no postcode": lambda c: replace(c, postcode=None),
    "no date of birth": lambda c: replace(c, date_of_birth=None),
    "no given name": lambda c: replace(c, given_name=None),
}


def _index(weak_block: int) -> ReferenceIndex:
    index = ReferenceIndex(weak_block=weak_block)
    rows = [ReferenceRow("pupils", "TRUE", TRUE, upn="TRUE")]
    rows += [ReferenceRow("pupils", f"C{i}", identity, upn=f"C{i}") for i, identity in enumerate(CROWD)]
    index.load(rows)
    return index


@pytest.fixture(scope="module")
def without_weak_block() -> ReferenceIndex:
    return _index(weak_block=0)


def _reaches(index: ReferenceIndex, event: Identity) -> bool:
    return "TRUE" in {c.record_key for c in index.candidates(event)}


def test_the_weak_block_is_skipped_once_it_is_large() -> None:
    event = Identity("Wxyz", "Qrst", date(2001, 1, 1), None, None, "NS1 2ZZ")  # only the weak key is shared
    assert _reaches(_index(weak_block=1000), event)
    assert not _reaches(_index(weak_block=10), event)


@pytest.mark.parametrize("names", [(n,) for n in CORRUPTIONS] + list(itertools.combinations(CORRUPTIONS, 2)),
                         ids=" + ".join)
def test_a_true_pair_with_each_corruption_still_reaches_scoring_without_the_weak_block(
        names: tuple[str, ...], without_weak_block: ReferenceIndex) -> None:
    event = TRUE
    for name in names:
        event = CORRUPTIONS[name](event)
    assert _reaches(without_weak_block, event), names


def test_changes_are_found_before_and_after_the_arrays_are_rebuilt() -> None:
    index = _index(weak_block=0)
    index.COMPACT_AFTER = 5  # type: ignore[misc]  # rebuild after a handful of changed postings
    newcomer = Identity("Kit", "Marlowe", date(2014, 2, 26), "M", None, "NS2 9XY")
    index.add(ReferenceRow("pupils", "NEW", newcomer, upn="NEW"))
    index.remove("pupils", "C1")
    for i in range(40):  # enough changed postings to pass a quarter of the arrays
        index.add(ReferenceRow("pupils", f"N{i}", replace(newcomer, given_name=f"Kit{'x' * i}"), upn=f"N{i}"))
    assert "NEW" in {c.record_key for c in index.candidates(newcomer)}
    assert "C1" not in {c.record_key for c in index.candidates(CROWD[1])}
    assert index._postings.added_count > len(index._postings.keys) // 4
    index._restat()  # after a batch of changes: the arrays are rebuilt from memory
    assert index._postings.added_count == 0 and index._removed == 0
    assert "NEW" in {c.record_key for c in index.candidates(newcomer)}
    assert "C1" not in {c.record_key for c in index.candidates(CROWD[1])}
    assert "C2" in {c.record_key for c in index.candidates(CROWD[2])}
    assert _reaches(index, TRUE) and index.live == len(CROWD) + 41
