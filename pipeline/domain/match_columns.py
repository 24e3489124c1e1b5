"""The reference records' comparable fields as columns of small integer codes, for scoring a block at once.

A million records held as Python objects make every candidate's fields a chain of cache misses (the record,
its normalised form, each name, date and postcode). The index also keeps, per record id, one code per field
in a numpy array (a name, a date, a postcode and its sector and district, a school), so the matcher reads a
block's fields with a few array gathers and works out each field's level once per distinct code
(``EventScorer.block_weights``). Code 0 always stands for an absent value.

Pure: no I/O. The index (``pipeline.adapters.match_index``) fills it as it stores and removes records, and
hands the matcher a ``CandidateBlock``: the candidate records as a list, with their ids and these columns.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Generic, TypeVar

import numpy as np
import numpy.typing as npt

from pipeline.domain.model import Candidate

Value = TypeVar("Value")

# bits of ``RecordColumns.flags``
ALIVE = 1  # the record is current (a removed record's id is never reused)
UPN_UNSHARED = 2  # a roll record whose UPN no other current roll record has (a child on one school's roll)
RAW_NHS = 4  # the record carries an NHS number, valid or not (it may join records into one person)
VALID_NHS = 8  # the record carries a valid NHS number (compared with the event's)

IntArray = npt.NDArray[np.int32]


class Codes(Generic[Value]):
    """Distinct values of one field and their codes (0: the absent value given at creation)."""

    def __init__(self, absent: Value) -> None:
        self.values: list[Value] = [absent]
        self._codes: dict[Value, int] = {absent: 0}

    def add(self, value: Value) -> int:
        code = self._codes.get(value)
        if code is None:
            code = self._codes[value] = len(self.values)
            self.values.append(value)
        return code

    def code(self, value: Value) -> int:
        """The value's code, -1 when no record has it."""
        return self._codes.get(value, -1)

    def __len__(self) -> int:
        return len(self.values)


COLUMNS = ("given", "family", "born", "postcode", "sector", "district", "school")


class RecordColumns:
    """Per record id: the codes of its normalised given name, family name (with its parts), date of birth,
    postcode (full, sector, district) and school; its sex (0 absent, 1 M, 2 F); and ``flags``."""

    def __init__(self, capacity: int = 1024) -> None:
        self.given: Codes[str] = Codes("")
        self.family: Codes[tuple[str, tuple[str, ...]]] = Codes(("", ()))
        self.born: Codes[date | None] = Codes(None)
        self.postcode: Codes[tuple[str, str, str]] = Codes(("", "", ""))
        self.sector: Codes[str] = Codes("")
        self.district: Codes[str] = Codes("")
        self.school: Codes[str] = Codes("")
        self._born_numbers: list[tuple[int, int]] = [(0, 0)]  # per date code: its ordinal and YYYYMMDD
        self._born_arrays: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]] | None = None
        self.arrays: dict[str, IntArray] = {name: np.zeros(capacity, np.int32) for name in COLUMNS}
        self.sex = np.zeros(capacity, np.int8)
        self.flags = np.zeros(capacity, np.uint8)

    def _grow(self, size: int) -> None:
        capacity = len(self.flags)
        if size <= capacity:
            return
        while capacity < size:
            capacity *= 2
        for name, values in self.arrays.items():
            grown = np.zeros(capacity, np.int32)
            grown[: len(values)] = values
            self.arrays[name] = grown
        self.sex = np.concatenate([self.sex, np.zeros(capacity - len(self.sex), np.int8)])
        self.flags = np.concatenate([self.flags, np.zeros(capacity - len(self.flags), np.uint8)])

    def put(self, record_id: int, prepared: Any, *, upn_unshared: bool, raw_nhs: bool) -> None:
        """File the record's codes under its id (``prepared``: its ``fellegi_sunter.Prepared`` form)."""
        self._grow(record_id + 1)
        postcode = prepared.postcode
        codes = {"given": self.given.add(prepared.given),
                 "family": self.family.add((prepared.family, prepared.family_parts)),
                 "born": self.born.add(prepared.date_of_birth),
                 "postcode": self.postcode.add(postcode), "sector": self.sector.add(postcode[1]),
                 "district": self.district.add(postcode[2]), "school": self.school.add(prepared.school)}
        for name, code in codes.items():
            self.arrays[name][record_id] = code
        born = prepared.date_of_birth
        if codes["born"] == len(self._born_numbers):  # a date no record had before
            self._born_numbers.append((born.toordinal(), born.year * 10_000 + born.month * 100 + born.day))
            self._born_arrays = None
        self.sex[record_id] = {"M": 1, "F": 2}.get(prepared.sex or "", 0)
        self.flags[record_id] = ALIVE | (UPN_UNSHARED if upn_unshared else 0) | (RAW_NHS if raw_nhs else 0) \
            | (VALID_NHS if prepared.nhs_number else 0)

    def born_numbers(self, codes: npt.NDArray[np.int32]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """The ordinals and YYYYMMDD numbers of the dates with these codes (0 and 0 for the absent date)."""
        arrays = self._born_arrays  # one read: a change applied meanwhile may reset it
        if arrays is None or len(arrays[0]) < len(self._born_numbers):
            numbers = np.array(self._born_numbers, np.int64)
            arrays = self._born_arrays = numbers[:, 0].copy(), numbers[:, 1].copy()
        return arrays[0][codes], arrays[1][codes]

    def drop(self, record_id: int) -> None:
        self.flags[record_id] = 0

    def share_upn(self, record_id: int, shared: bool) -> None:
        """Another current roll record has (``shared``), or no longer has, this roll record's UPN."""
        if shared:
            self.flags[record_id] &= ~np.uint8(UPN_UNSHARED)
        else:
            self.flags[record_id] |= np.uint8(UPN_UNSHARED)

    def alive(self, ids: npt.NDArray[np.uint32]) -> npt.NDArray[np.uint32]:
        """The ids of current records among ``ids``, in their order."""
        return ids[(self.flags[ids] & ALIVE) != 0]


class CandidateBlock(list[Candidate]):
    """The candidates the index fetched for one event (a plain list to every caller), with their record ids
    and the index's columns, so the matcher can score them from the columns."""

    def __init__(self, candidates: list[Candidate], ids: npt.NDArray[np.uint32], columns: RecordColumns) -> None:
        super().__init__(candidates)
        self.ids = ids
        self.columns = columns
        # ``group_people`` of this block, kept by it: the matcher and the caller resolving the linked person's
        # records both ask (a block is not changed once the index has made it).
        self.people: dict[str, list[Candidate]] | None = None

    def roll_records_only(self) -> bool:
        """Every candidate a roll record whose UPN no other has, none with an NHS number: each is a person of its own
        (nothing to join), and the block is as the index made it."""
        flags = self.columns.flags[self.ids]
        return len(self) == len(self.ids) and bool(np.all(flags & UPN_UNSHARED)) and not np.any(flags & RAW_NHS)
