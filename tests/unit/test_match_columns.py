"""The index's columns of codes, and the matcher scoring a fetched block from them: every decision exactly as
the matcher makes it from the records themselves (grouped into people, each scored on its own)."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import date
from typing import Any
from unittest.mock import patch

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.adapters.match_index import ReferenceIndex, ReferenceRow
from pipeline.domain import fellegi_sunter
from pipeline.domain.fellegi_sunter import FellegiSunterMatcher, Parameters, prepare
from pipeline.domain.match_columns import ALIVE, RAW_NHS, UPN_UNSHARED, VALID_NHS, CandidateBlock, RecordColumns
from pipeline.domain.matching import group_people
from pipeline.domain.model import Identity
from pipeline.service.demo_data import make_nhs_number

pytestmark = pytest.mark.unit

GIVEN = ["Amelia", "Amelie", "Millie", "Emily", "Thomas", "Tom", "Hartley", None]
FAMILY = ["Hartley", "Hartly", "Hartley-Okafor", "Okafor", "Smith", "Amelia", None]
BORN = [date(2013, 5, 4), date(2013, 4, 5), date(2013, 5, 14), date(2013, 6, 4), date(2014, 5, 4), date(2013, 4, 3),
        date(2013, 6, 5), date(2012, 11, 20), date(2009, 1, 1), None]
POSTCODE = ["NS1 2AB", "NS1 2AD", "NS1 3XY", "NS4 1AA", "AB12", None]
# valid NHS numbers (a few shared by two records now and then), one invalid (...17), mostly absent
NUMBERS = [make_nhs_number(random.Random(seed)) for seed in range(200)]
NHS = ["9990000018", "9990000017", *[None] * 6]
SCHOOLS = {"100001": "Oakfield Primary School", "100002": "St Mary's CE Academy"}

identities = st.builds(Identity, st.sampled_from(GIVEN), st.sampled_from(FAMILY), st.sampled_from(BORN),
                       st.sampled_from(["M", "F", None]), st.sampled_from(NHS + NUMBERS[:40]),
                       st.sampled_from(POSTCODE))
events = st.builds(Identity, st.sampled_from(GIVEN), st.sampled_from(FAMILY), st.sampled_from(BORN),
                   st.sampled_from(["M", "F", None]), st.sampled_from(NHS), st.sampled_from(POSTCODE),
                   st.sampled_from([None, "Oakfield Primary", "St Marys Academy", "Riverside"]))


@st.composite
def rolls(draw: st.DrawFn) -> list[ReferenceRow]:
    """Pupils (a row per enrolment: now and then a second enrolment of an earlier pupil's UPN), home-education
    records (no UPN) and involvements (a pupil's UPN, or none)."""
    rows: list[ReferenceRow] = []
    for i, identity in enumerate(draw(st.lists(identities, min_size=1, max_size=30))):
        kind = draw(st.sampled_from(["pupils"] * 8 + ["ehe", "involvements"]))
        if kind == "pupils":
            earlier = [row.upn for row in rows if row.kind == "pupils"]
            upn = draw(st.sampled_from([f"U{i}"] * 4 + earlier))
            rows.append(ReferenceRow("pupils", f"U{i}", identity, upn=upn,
                                     school_urn=draw(st.sampled_from([None, "100001", "100002"]))))
        elif kind == "ehe":
            rows.append(ReferenceRow("ehe", f"E{i}", identity))
        else:
            upn = draw(st.sampled_from([None, *(row.upn for row in rows if row.kind == "pupils")]))
            rows.append(ReferenceRow("involvements", f"I{i}", identity, upn=upn))
    return rows


def test_columns_give_back_each_records_values() -> None:
    columns = RecordColumns(capacity=2)  # grows as records come
    records = [prepare(Identity("Amelia", "Hartley-Okafor", date(2013, 5, 4), "F", "9990000018", "NS1 2AB"),
                       "Oakfield Primary School"),
               prepare(Identity(None, "Smith", None, None, None, None)),
               prepare(Identity("Tom", "Smith", date(2012, 1, 2), "M", "9990000017", "AB12"))]
    for record_id, record in enumerate(records):
        columns.put(record_id, record, upn_unshared=record_id != 1, raw_nhs=bool(record_id != 1))
    for record_id, record in enumerate(records):
        codes = {name: int(values[record_id]) for name, values in columns.arrays.items()}
        assert columns.given.values[codes["given"]] == record.given
        assert columns.family.values[codes["family"]] == (record.family, record.family_parts)
        assert columns.born.values[codes["born"]] == record.date_of_birth
        assert columns.postcode.values[codes["postcode"]] == record.postcode
        assert columns.sector.values[codes["sector"]] == record.postcode[1]
        assert columns.district.values[codes["district"]] == record.postcode[2]
        assert columns.school.values[codes["school"]] == record.school
        assert int(columns.sex[record_id]) == {"M": 1, "F": 2}.get(record.sex or "", 0)
    assert columns.arrays["born"][1] == 0 and columns.arrays["postcode"][1] == 0  # absent: code 0
    assert int(columns.flags[0]) == ALIVE | UPN_UNSHARED | RAW_NHS | VALID_NHS
    assert int(columns.flags[2]) == ALIVE | UPN_UNSHARED | RAW_NHS  # an invalid NHS number is not compared
    columns.drop(1)
    assert columns.alive(np.array([2, 1, 0], np.uint32)).tolist() == [2, 0]
    assert columns.given.code("nobody") == -1


def test_a_roll_record_is_its_own_person_only_while_no_other_roll_record_has_its_upn() -> None:
    oliver = Identity("Oliver", "Brennan", date(2011, 2, 3), "M", None, "NS2 3CD")
    index = ReferenceIndex()
    index.load([ReferenceRow("pupils", "B|100002|", oliver, upn="B", school_urn="100002"),
                ReferenceRow("pupils", "C|100002|", oliver, upn="C", school_urn="100002")])

    def unshared() -> dict[str, bool]:
        return {c.record_key: bool(index.columns.flags[index._id_of["pupils"][c.record_key]] & UPN_UNSHARED)
                for c in index.candidates(oliver)}

    assert unshared() == {"B|100002|": True, "C|100002|": True}
    index.add(ReferenceRow("pupils", "B|100001|", oliver, upn="B", school_urn="100001"))  # a second school's roll
    index.add(ReferenceRow("pupils", "B|100003|", oliver, upn="B", school_urn="100003"))  # and a third
    assert unshared() == {"B|100002|": False, "C|100002|": True, "B|100001|": False, "B|100003|": False}
    index.remove("pupils", "B|100002|")  # the UPN's first record goes: the others still share it
    assert unshared() == {"C|100002|": True, "B|100001|": False, "B|100003|": False}
    index.remove("pupils", "B|100003|")
    assert unshared() == {"C|100002|": True, "B|100001|": True}
    index.remove("pupils", "B|100001|")
    index.add(ReferenceRow("pupils", "B|100004|", oliver, upn="B", school_urn="100004"))
    assert unshared() == {"C|100002|": True, "B|100004|": True}


def test_the_index_hands_over_a_block_of_the_records_it_fetched_and_keeps_it_current() -> None:
    amelia = Identity("Amelia", "Hartley", date(2013, 5, 4), "F", None, "NS1 2AB")
    index = ReferenceIndex()
    index.load([ReferenceRow("pupils", "U1", amelia, upn="U1"),
                ReferenceRow("pupils", "U2", Identity("Tom", "Hartley", date(2013, 5, 4), "M", None, "NS1 2AB"),
                             upn="U2")])
    index.add(ReferenceRow("pupils", "U3", Identity("Millie", "Hartley", date(2013, 5, 4), "F", None, "NS1 2AB"),
                           upn="U3"))
    index.remove("pupils", "U2")
    block = index.candidates(amelia)
    assert isinstance(block, CandidateBlock)
    assert [c.record_key for c in block] == ["U1", "U3"]
    assert [index.records[i] for i in block.ids.tolist()] == list(block)
    given = block.columns.arrays["given"][block.ids]
    assert [block.columns.given.values[code] for code in given.tolist()] == ["amelia", "millie"]
    assert block.roll_records_only()
    assert group_people(block) == group_people(list(block)) == {"upn:U1": [block[0]], "upn:U3": [block[1]]}
    index.COMPACT_AFTER = 0  # the postings rebuilt from memory: the same records, under the same ids
    index._restat()
    assert not index._postings.added
    again = index.candidates(amelia)
    assert list(again) == list(block) and again.ids.tolist() == block.ids.tolist()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rolls(), st.lists(events, min_size=3, max_size=8), st.lists(st.integers(0, 29), max_size=3))
def test_a_block_scored_from_the_columns_is_decided_exactly_as_its_records(
        roll: list[ReferenceRow], checked: list[Identity], removed: list[int]) -> None:
    index = ReferenceIndex()
    index.load(roll[: len(roll) // 2], SCHOOLS)
    for row in roll[len(roll) // 2:]:  # some arrive as changes after the build
        index.add(row)
    for position in removed:
        if position < len(roll):
            index.remove(roll[position].kind, roll[position].key)
    index._restat()
    matcher = FellegiSunterMatcher(Parameters())
    with patch.object(fellegi_sunter, "BLOCK_FROM", 1):  # every block from the columns, however small
        for event in checked:
            block = index.candidates(event)
            assert isinstance(block, CandidateBlock)
            from_columns = matcher.decide(event, block, urgent=False, stats=index.stats)
            from_records = matcher.decide(event, list(block), urgent=False, stats=index.stats)
            assert from_columns == from_records


def test_on_a_seeded_roll_every_block_is_decided_exactly_as_its_records(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same comparison over a larger seeded roll (every field's levels, twins, shared NHS numbers, records
    without a UPN), with the blocks both ways: those the columns score and those grouped first."""
    rng = random.Random(7)

    def identity(i: int) -> Identity:
        # half the records have an NHS number of their own; record 100 shares record 0's, record 5's is invalid
        number = "9990000017" if i == 5 else NUMBERS[0 if i == 100 else i] if rng.random() < 0.5 else None
        return Identity(rng.choice(GIVEN), rng.choice(FAMILY), rng.choice(BORN), rng.choice(["M", "F", None]),
                        number, rng.choice(POSTCODE))

    def elsewhere(given_name: str) -> Identity:  # a child the pupils' keys do not reach
        return Identity(given_name, "Quinn", date(2001, 2, 3), "F", None, rng.choice(["ZZ9 9ZZ", None]))

    rows = [ReferenceRow("pupils", f"U{i}", identity(i), upn=f"U{i}", school_urn=rng.choice([None, *SCHOOLS]))
            for i in range(120)]
    # records with no UPN, or a pupil's UPN: grouped first
    rows += [ReferenceRow("ehe", f"E{i}", elsewhere(name)) for i, name in enumerate(["Zara", "Zoe"])]
    rows += [ReferenceRow("involvements", f"I{i}", elsewhere(name), upn=f"U{i * 7}")
             for i, name in enumerate(["Zara", "Zoe"])]
    index = ReferenceIndex()
    index.load(rows, SCHOOLS)
    matcher = FellegiSunterMatcher(Parameters())
    paths: list[bool] = []  # per block: scored from the columns (True) or grouped first (False)
    block_people = fellegi_sunter._block_people

    def recorded(*args: Any) -> Any:
        people = block_people(*args)
        paths.append(people is not None)
        return people

    monkeypatch.setattr(fellegi_sunter, "_block_people", recorded)
    monkeypatch.setattr(fellegi_sunter, "BLOCK_FROM", 1)  # every block from the columns, however small
    for _ in range(300):
        event = Identity(rng.choice(GIVEN), rng.choice(FAMILY), rng.choice(BORN), rng.choice(["M", "F", None]),
                         rng.choice([*NHS, *rng.sample(NUMBERS, 4)]), rng.choice(POSTCODE),
                         rng.choice([None, "Oakfield Primary", "Riverside"]))
        if rng.random() < 0.15:
            event = replace(elsewhere(rng.choice(["Zara", "Zoe", "Zoey"])), school_name=event.school_name)
        block = index.candidates(event)
        from_columns = matcher.decide(event, block, urgent=False, stats=index.stats)
        assert from_columns == matcher.decide(event, list(block), urgent=False, stats=index.stats)
        assert group_people(block) == group_people(list(block))  # as the services group them after a link
    assert paths.count(True) > 150 and paths.count(False) > 30
