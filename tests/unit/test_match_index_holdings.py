"""What the match index says about the involvement and home-education records it holds, by which a linked child's
facts skip reading a table: never False where a current record could be the child's, as records come and go."""

from __future__ import annotations

from datetime import date

from pipeline.adapters.match_index import ReferenceIndex, ReferenceRow
from pipeline.domain.model import Identity

ISLA = Identity("Isla", "Fairbairn", date(2012, 7, 21), "F", None, None)
BORN = date(2012, 7, 21)


def test_an_involvement_without_a_upn_is_held_by_family_key_and_birth_until_removed() -> None:
    index = ReferenceIndex()
    index.load([ReferenceRow("pupils", "C1", ISLA, upn="C1")])
    assert not index.may_hold_unnumbered("FAIRBAIRN", BORN)
    index.add(ReferenceRow("involvements", "I1", ISLA, family_key="FAIRBAIRN"))
    index.add(ReferenceRow("involvements", "I2", ISLA, family_key="FAIRBAIRN"))
    assert index.may_hold_unnumbered("FAIRBAIRN", BORN)
    assert not index.may_hold_unnumbered("FAIRBAIRN", date(2012, 7, 22))
    assert not index.may_hold_unnumbered("HARTLEY", BORN)
    assert index.may_hold_unnumbered("FAIRBAIRN", None)  # nothing to look up by: the caller reads
    index.remove("involvements", "I1")
    assert index.may_hold_unnumbered("FAIRBAIRN", BORN)  # I2 still holds it
    index.add(ReferenceRow("involvements", "I2", ISLA, upn="C1"))  # replaced: now recorded with a UPN
    assert not index.may_hold_unnumbered("FAIRBAIRN", BORN)
    assert index.may_hold("involvements", ["C1"], [])
    index.remove("involvements", "I2")
    assert not index.may_hold("involvements", ["C1"], [])
    index.load([ReferenceRow("involvements", "I3", ISLA, family_key="FAIRBAIRN")])  # a rebuild
    assert index.may_hold_unnumbered("FAIRBAIRN", BORN)
