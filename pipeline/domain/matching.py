"""Matching a child in an event to the reference data (school roll, home-education register, involvements).

Pure: an index in the adapters supplies the candidate records (blocked on several keys) and this module
decides. The model is Fellegi-Sunter (see ``pipeline.domain.fellegi_sunter``); this module holds the
normalisation helpers, the grouping of records into people and the ``Matcher`` interface.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

from pipeline.domain.match_columns import CandidateBlock
from pipeline.domain.model import Candidate, Identity, MatchDecision


def nhs_number_valid(value: str | None) -> bool:
    """The NHS number's modulus-11 check digit (10 digits; a remainder giving 10 is never valid)."""
    if value is None:
        return False
    digits = value.replace(" ", "")
    if len(digits) != 10 or not digits.isdigit():
        return False
    total = sum(int(digit) * weight for digit, weight in zip(digits[:9], range(10, 1, -1), strict=True))
    check = 11 - total % 11
    if check == 11:
        check = 0
    return check != 10 and check == int(digits[9])


@functools.lru_cache(maxsize=65536)  # pure, and called for every candidate of every event
def normalise_name(value: str | None) -> str:
    """Lower case, accents folded, only letters kept (O'Brien -> obrien, Zoë -> zoe)."""
    if not value:
        return ""
    folded = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode("ascii")
    return "".join(ch for ch in folded.lower() if ch.isalpha())


def normalise_postcode(value: str | None) -> str:
    return "".join((value or "").upper().split())


def postcode_parts(value: str | None) -> tuple[str, str, str]:
    """(full, sector, district) of a UK postcode, e.g. NS12AB -> (NS12AB, NS1 2, NS1)."""
    full = normalise_postcode(value)
    if len(full) < 5:
        return full, "", ""
    outward, inward = full[:-3], full[-3:]
    return full, f"{outward} {inward[0]}", outward


def swapped_dates(value: date) -> set[date]:
    """The date itself and, where valid, its day/month swap."""
    dates = {value}
    if value.day <= 12:
        dates.add(value.replace(month=value.day, day=value.month))  # day <= 12 and month <= 12: always valid
    return dates


class Matcher(Protocol):
    """Decides which reference person, if any, an event's child is."""

    def decide(self, event: Identity, candidates: Sequence[Candidate], *, urgent: bool,
               stats: ReferenceStats | None = None) -> MatchDecision: ...


@dataclass(frozen=True)
class ReferenceStats:
    """What the model needs to know about the whole reference population: its size (for the prior) and how
    common each normalised name is (term-frequency adjustment of exact name agreements)."""

    population: int = 0
    given_counts: Mapping[str, int] = field(default_factory=dict)
    family_counts: Mapping[str, int] = field(default_factory=dict)
    records: int = 0


def person_key(candidate: Candidate) -> str:
    """The key that joins records of one person across sources: UPN, else NHS number, else the record."""
    if candidate.upn:
        return f"upn:{candidate.upn}"
    if candidate.identity.nhs_number:
        return f"nhs:{candidate.identity.nhs_number}"
    return f"{candidate.source}:{candidate.record_key}"


def exact_identity(identity: Identity) -> tuple[str, str, date | None]:
    return normalise_name(identity.given_name), normalise_name(identity.family_name), identity.date_of_birth


def _merge_exact_identities(groups: dict[str, list[Candidate]]) -> None:
    """A social-care or home-education record with no UPN joins the one roll record whose names and date of
    birth are exactly its own (social care often records no UPN). Never on a near match, never when two roll
    records would qualify, and never across different NHS numbers: twins stay apart."""
    with_upn = {root: members for root, members in groups.items() if any(m.upn for m in members)}
    for root, members in list(groups.items()):
        if root in with_upn:
            continue
        identities = {exact_identity(m.identity) for m in members}
        numbers = {m.identity.nhs_number for m in members if m.identity.nhs_number}
        if len(identities) != 1:
            continue
        matches = [other for other, pupils in with_upn.items()
                   if {exact_identity(p.identity) for p in pupils} & identities
                   and not (numbers and {p.identity.nhs_number for p in pupils if p.identity.nhs_number} - numbers)]
        if len(matches) == 1:
            groups[matches[0]].extend(groups.pop(root))


def group_people(candidates: Iterable[Candidate]) -> dict[str, list[Candidate]]:
    """Group records of the same person (shared UPN or NHS number) under one person key (a ``CandidateBlock``'s
    grouping is worked out once and kept with it: callers read it, never change it)."""
    if isinstance(candidates, CandidateBlock):
        if candidates.people is None or len(candidates) != sum(map(len, candidates.people.values())):
            candidates.people = _group_people(candidates)
        return candidates.people
    return _group_people(candidates)


def _group_people(candidates: Iterable[Candidate]) -> dict[str, list[Candidate]]:
    if isinstance(candidates, CandidateBlock) and candidates.roll_records_only():
        return {f"upn:{candidate.upn}": [candidate] for candidate in candidates}  # each its own person
    parent: dict[str, str] = {}

    def find(key: str) -> str:
        while parent.setdefault(key, key) != key:
            key = parent[key]
        return key

    items = list(candidates)
    keys = [person_key(candidate) for candidate in items]  # once each: a block can hold hundreds
    joined = [(candidate, key) for candidate, key in zip(items, keys, strict=True)
              if candidate.upn and candidate.identity.nhs_number]
    for candidate, key in joined:  # a UPN and an NHS number join the records that carry either
        parent[find(f"nhs:{candidate.identity.nhs_number}")] = find(key)
    groups: dict[str, list[Candidate]] = {}
    for candidate, key in zip(items, keys, strict=True):
        groups.setdefault(find(key) if parent else key, []).append(candidate)
    if not all(candidate.upn for candidate in items):  # else every group has a UPN: nothing to join
        _merge_exact_identities(groups)
    # Name each group by its most stable key: a UPN where there is one.
    named: dict[str, list[Candidate]] = {}
    for root, members in groups.items():
        if len(members) == 1:
            named[root if not parent else person_key(members[0])] = members
            continue
        ordered = sorted({person_key(m) for m in members}, key=lambda k: (not k.startswith("upn:"), k))
        named[ordered[0]] = members
    return named
