"""The in-memory blocking index the matcher fetches candidates from (match training's rows are in
match_training_rows.py; the stored parameters are read by repository.py).

The index holds every reference record that is evidence of who a child is (pupils, including those who left
the roll; current home-education and involvement records), normalised once, under several blocking keys:
NHS number; date of birth (and its day/month swap) with either name's initial; phonetic family name with
birth year and the given name's initial; phonetic given name with birth year and the family name's initial;
postcode sector with the given name's initial or the family name's code; the full postcode; the date of
birth with the postcode sector; both phonetic names; each nickname group of the given name with the family
name's code; each name's code with the birthday (day and month); a hyphenated name's parts as well as the
whole; the date of birth alone (looked up only when a name is missing) and the family name's code with an
initial (only when the date of birth is missing). It is built at start-up (or on first use) and kept
current like a GlobalKTable: before each batch a version check reads the reference change log
(``ReferenceChange``, written by ``safeguard load``) and applies only the rows changed since, so a running
process sees a reload without a restart or a rebuild.

Storage, so a roll of a million children stays well under 2 GB: one slotted ``Candidate`` (with its
``Prepared`` form) per record, their repeated values (names, dates, postcodes and their parts) held once; the
blocks as one sorted array of key hashes beside an array of record ids (12 bytes a posting, no object per
key), built in one pass; rows changed since the build go to a small dict of added postings, removed records
are dropped from what is returned, and the arrays are rebuilt from memory once the changes grow large. Each
record's comparable fields are also kept as integer codes in columns (``RecordColumns``), and ``candidates``
returns a ``CandidateBlock`` the matcher scores from them.
"""

from __future__ import annotations

import functools
import threading
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from types import MappingProxyType
from typing import Any

import numpy as np
from sqlalchemy import Table, exists, or_
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Connection

from pipeline.adapters import tables as t
from pipeline.adapters.reference_cache import reference_version
from pipeline.adapters.repository import EHE, INVOLVEMENT, PUPIL, SCHOOL
from pipeline.domain.fellegi_sunter import Prepared, nickname_groups, phonetic, prepare, prepared_event
from pipeline.domain.match_columns import CandidateBlock, RecordColumns
from pipeline.domain.matching import ReferenceStats, swapped_dates
from pipeline.domain.model import Candidate, Identity

CHANGE: Table = t.ReferenceChange.__table__  # type: ignore[attr-defined]

MAX_BLOCK = 2000  # a key shared by more records than this is too unselective to fetch on
# The postcode sector with the given name's initial ("pi") is the one key that grows with a district's size
# (hundreds a block on a roll of a million in few sectors, a third of all candidates, twice an event with
# transposed names). A true pair it finds is also found by a more selective key unless the given name changed
# but kept its initial AND the family name changed AND the date of birth is wrong, all at once: so it is looked
# up only while its block is this small (tests/unit/test_match_blocking.py: every corruption, alone and in
# pairs, still reaches scoring without it; the benchmark measures the share of true pairs that do).
WEAK_KEY, WEAK_BLOCK = "pi|", 48
# Identities whose candidates the index keeps (``ReferenceIndex.candidates``) before it starts again with none.
CANDIDATES_KEPT = 4096
STREAM_ROWS = 5000  # rows fetched at a time when the index is built from the store


@dataclass(frozen=True)
class ReferenceRow:
    """One reference record as the index needs it (the adapters' view of a pupil, EHE or involvement row)."""

    kind: str  # pupils | ehe | involvements
    key: str
    identity: Identity
    upn: str | None = None
    school_urn: str | None = None
    # An involvement recorded without a UPN: its normalised family name (the table's ``family_key``), by which a
    # linked pupil's facts find it (``ReferenceIndex.may_hold_unnumbered``).
    family_key: str | None = None


def _identity(row: Any) -> Identity:
    return Identity(given_name=row.given_name, family_name=row.family_name, date_of_birth=row.date_of_birth,
                    sex=getattr(row, "sex", None), nhs_number=row.nhs_number, postcode=getattr(row, "postcode", None))


SOURCE = {"pupils": "pupil", "ehe": "ehe", "involvements": "involvement"}


def _family_variants(p: Prepared) -> set[str]:
    """The family name's Metaphone and, for a hyphenated or double-barrelled name, each part's."""
    return {c for c in (p.family_phonetic, *(phonetic(part) for part in p.family_parts)) if c}


def _family_initials(p: Prepared) -> set[str]:
    return {i for i in (p.family[:1], *(part[:1] for part in p.family_parts)) if i}


@functools.lru_cache(maxsize=65536)
def _canonicals(given: str) -> list[str]:
    return sorted(nickname_groups().get(given, ()))[:4]


@functools.lru_cache(maxsize=65536)
def _date_parts(born: date) -> tuple[str, int, str]:
    return born.isoformat(), born.year, born.strftime("%m%d")


def _keys(given: str, given_code: str, families: set[str], family_initials: set[str], born: date | None,
          sector: str, *, dated: bool = True) -> Iterator[str]:
    g0 = given[:1]
    canonicals = _canonicals(given)
    if born is not None:
        day, year, birthday = _date_parts(born)
        if g0:
            yield f"dg|{day}|{g0}"
        for initial in family_initials:
            yield f"df|{day}|{initial}"
        if sector:
            yield f"dp|{day}|{sector}"
        for code in families:
            if g0:
                yield f"fy|{code}|{year}|{g0}"
            yield f"fb|{code}|{birthday}"
        if given_code:
            yield f"gb|{given_code}|{birthday}"
            for initial in family_initials:
                yield f"gy|{given_code}|{year}|{initial}"
    if sector:
        if g0:
            yield f"pi|{sector}|{g0}"
        for code in families:
            yield f"sf|{sector}|{code}"
    # Both names (or a nickname group and the family name): with the birth year when there is one (a wrong
    # year is found through the birthday keys above); without it only for an event with no date of birth.
    year_part = f"|{born.year}" if born is not None else ""
    for code in families:
        if given_code:
            yield f"gf|{given_code}|{code}{year_part}"
            if born is not None and not dated:
                yield f"gf|{given_code}|{code}"
        for canonical in canonicals:
            yield f"kn|{canonical}|{code}{year_part}"
            if born is not None and not dated:
                yield f"kn|{canonical}|{code}"
        if g0 and not dated:
            yield f"fg|{code}|{g0}"  # the family name and an initial: looked up only without a date of birth


def record_keys(p: Prepared) -> Iterator[str]:
    """The blocking keys a reference record is filed under."""
    if p.nhs_number:
        yield f"n|{p.nhs_number}"
    if p.date_of_birth:
        yield f"d|{p.date_of_birth.isoformat()}"
    if p.postcode[0]:
        yield f"pc|{p.postcode[0]}"  # the household: a handful of children share a full postcode
    yield from _keys(p.given, p.given_phonetic, _family_variants(p), _family_initials(p), p.date_of_birth,
                     p.postcode[1], dated=False)


def event_keys(p: Prepared) -> Iterator[str]:
    """The keys an event's child is looked up under: each record key, with the day/month swap and the names
    either way round (a transposed name still finds the record)."""
    if p.nhs_number:
        yield f"n|{p.nhs_number}"
    if p.postcode[0]:
        yield f"pc|{p.postcode[0]}"
    dates: list[date | None] = [None]
    if p.date_of_birth:
        dates = [*sorted(swapped_dates(p.date_of_birth))]
        if not (p.given and p.family):
            yield from (f"d|{day.isoformat()}" for day in swapped_dates(p.date_of_birth))  # a name unknown
    families, initials = _family_variants(p), _family_initials(p)
    for born in dates:
        yield from _keys(p.given, p.given_phonetic, families, initials, born, p.postcode[1],
                         dated=p.date_of_birth is not None)
        if p.given and p.family:  # the names transposed
            yield from _keys(p.family, p.family_phonetic, {p.given_phonetic} - {""}, {p.given[:1]}, born,
                             p.postcode[1], dated=p.date_of_birth is not None)


# Up to this many ids found, a dict drops the repeats (a few microseconds) faster than numpy's sort-based unique
# (whose fixed cost is most of its time on the usual few dozen); from about a hundred the sort wins.
_FEW = 64


class _Postings:
    """Blocking key hashes -> record ids: ``keys`` sorted, ``ids`` beside them (built in one pass), and the
    postings added since in ``added``. Ids within one key come out in the order the records were added."""

    BUCKETS = 4096  # the build sorts one bucket of hashes (by their top 12 bits) at a time

    def __init__(self) -> None:
        self.keys = array("q")
        self.ids = array("I")
        self.added: dict[int, list[int]] = {}
        self.added_count = 0
        self._id_view: np.ndarray[Any, np.dtype[np.uint32]] | None = None
        self._key_view: np.ndarray[Any, np.dtype[np.int64]] | None = None

    def id_view(self) -> np.ndarray[Any, np.dtype[np.uint32]]:
        """``ids`` as a numpy array sharing its memory (made once the build is done: ``ids`` never grows after)."""
        if self._id_view is None or len(self._id_view) != len(self.ids):
            self._id_view = np.frombuffer(self.ids, dtype=np.uint32) if len(self.ids) else np.zeros(0, np.uint32)
        return self._id_view

    def key_view(self) -> np.ndarray[Any, np.dtype[np.int64]]:
        """``keys`` as a numpy array sharing its memory (as ``id_view``): many keys' runs found in one call."""
        if self._key_view is None or len(self._key_view) != len(self.keys):
            self._key_view = np.frombuffer(self.keys, dtype=np.int64) if len(self.keys) else np.zeros(0, np.int64)
        return self._key_view

    @classmethod
    def build(cls, records: Iterable[tuple[int, Iterable[int]]]) -> _Postings:
        """From (record id, its key hashes), ids ascending."""
        bucket_keys = [array("q") for _ in range(cls.BUCKETS)]
        bucket_ids = [array("I") for _ in range(cls.BUCKETS)]
        half = cls.BUCKETS // 2
        for record_id, hashes in records:
            for h in hashes:
                bucket = (h >> 52) + half
                bucket_keys[bucket].append(h)
                bucket_ids[bucket].append(record_id)
        postings = cls()
        for keys, ids in zip(bucket_keys, bucket_ids, strict=True):
            order = sorted(range(len(keys)), key=keys.__getitem__)  # stable: ids stay ascending within a key
            postings.keys.extend([keys[i] for i in order])
            postings.ids.extend([ids[i] for i in order])
        return postings

    def add(self, h: int, record_id: int) -> None:
        self.added.setdefault(h, []).append(record_id)
        self.added_count += 1

    def discard(self, h: int, record_id: int) -> None:
        members = self.added.get(h)
        if members is not None and record_id in members:
            members.remove(record_id)
            self.added_count -= 1
            if not members:
                del self.added[h]


def record_hashes(p: Prepared) -> set[int]:
    """The record's blocking keys as this process's hashes (an int costs far less memory than the string, and a
    collision could only add a candidate, never lose one)."""
    return {hash(key) for key in record_keys(p)}


class ReferenceIndex:
    """Candidates for an event from memory; current with the store through ``refresh``."""

    COMPACT_AFTER = 100_000  # changed postings before the arrays are rebuilt (or a quarter of them, if more)

    def __init__(self, max_block: int = MAX_BLOCK, weak_block: int = WEAK_BLOCK) -> None:
        self.max_block = max_block
        self.weak_block = weak_block
        # One lock for the index's whole life: every read and change of the contents below holds it. Never
        # replaced (a build empties the contents, not the lock): a worker arriving during another's build must
        # wait for it, not take a fresh lock, see the index unbuilt and empty it under the first one's matching.
        self._lock = threading.RLock()
        # Raised by every change of the contents (a build, a record added or removed): what was read or decided
        # from the index at one generation holds while it stays the same.
        self.generation = 0
        self._empty()

    def _empty(self) -> None:
        """No records: the contents as before the first build."""
        self.generation += 1
        # The candidates found for each identity, with the generation they were found at (``candidates_at``):
        # dropped with the contents, so no block found before keeps the old records and columns alive.
        self._kept: dict[Identity, tuple[int, CandidateBlock]] = {}
        self.records: list[Candidate | None] = []
        self.columns = RecordColumns()
        self._id_of: dict[str, dict[str, int]] = {kind: {} for kind in SOURCE}
        self._postings = _Postings()
        self._removed = 0  # records removed since the arrays were built (their postings are still there)
        self._values: dict[Any, Any] = {}  # one copy of each repeated value (names, dates, postcodes, parts)
        self._given: Counter[str] = Counter()
        self._family: Counter[str] = Counter()
        self.schools: dict[str, str] = {}
        # The UPNs and NHS numbers (as recorded, valid or not) current involvement and home-education records
        # carry: a linked child's facts skip the read of a table none of its numbers is in.
        self._held: dict[str, Counter[str]] = {"involvements": Counter(), "ehe": Counter()}
        # Current involvements recorded without a UPN, counted by (family key, date of birth), and each one's
        # count key by its record key (for its removal).
        self._unnumbered: Counter[tuple[str, date]] = Counter()
        self._unnumbered_of: dict[str, tuple[str, date]] = {}
        # The roll records of each UPN (one per enrolment: a child on two schools' rolls, or who moved school, has
        # two): the first record's id, and the others' for the few UPNs with more than one. A record alone with its
        # UPN is a person of its own (``UPN_UNSHARED``).
        self._roll_id_of_upn: dict[str, int] = {}
        self._more_roll_ids: dict[str, list[int]] = {}
        self.live = 0
        self.seq = -1  # the last reference change applied; -1: not built
        self.stats = ReferenceStats()

    # ---- building and applying changes ---------------------------------------------------------------
    def _shared(self, value: Any) -> Any:
        return None if value is None else self._values.setdefault(value, value)

    def _store(self, row: ReferenceRow) -> tuple[int, set[int]]:
        """Keep one record (its repeated values shared); its id and key hashes."""
        school = self.schools.get(row.school_urn or "") if row.school_urn else None
        given = row.identity
        identity = Identity(self._shared(given.given_name), self._shared(given.family_name),
                            self._shared(given.date_of_birth), self._shared(given.sex), given.nhs_number,
                            self._shared(given.postcode), given.school_name)
        prepared = prepare(identity, school, self._values)
        candidate = Candidate(SOURCE[row.kind], row.key, identity, upn=row.upn,
                              school_urn=self._shared(row.school_urn), school_name=school, prepared=prepared)
        record_id = len(self.records)
        self.generation += 1
        self.records.append(candidate)
        first = self._roll_id_of_upn.setdefault(row.upn, record_id) if row.kind == "pupils" and row.upn else None
        self.columns.put(record_id, prepared, upn_unshared=first == record_id, raw_nhs=bool(given.nhs_number))
        if first is not None and first != record_id:
            more = self._more_roll_ids.setdefault(row.upn or "", [])
            if not more:  # the UPN's first record is no longer alone
                self.columns.share_upn(first, True)
            more.append(record_id)
        self._id_of[row.kind][row.key] = record_id
        if row.kind in self._held:
            self._hold(self._held[row.kind], candidate, 1)
            if row.kind == "involvements" and not row.upn and row.family_key and given.date_of_birth:
                unnumbered = self._unnumbered_of[row.key] = (row.family_key, given.date_of_birth)
                self._unnumbered[unnumbered] += 1
        self._given[prepared.given] += 1
        self._family[prepared.family] += 1
        self.live += 1
        return record_id, record_hashes(prepared)

    def add(self, row: ReferenceRow) -> None:
        with self._lock:
            if row.key in self._id_of[row.kind]:
                self.remove(row.kind, row.key)
            record_id, hashes = self._store(row)
            for h in hashes:
                self._postings.add(h, record_id)

    def remove(self, kind: str, key: str) -> None:
        with self._lock:
            record_id = self._id_of[kind].pop(key, None)
            if record_id is None:
                return
            self.generation += 1
            candidate = self.records[record_id]
            assert candidate is not None and isinstance(candidate.prepared, Prepared)
            for h in record_hashes(candidate.prepared):
                self._postings.discard(h, record_id)
            if kind in self._held:
                self._hold(self._held[kind], candidate, -1)
                if kind == "involvements" and (unnumbered := self._unnumbered_of.pop(key, None)) is not None:
                    self._unnumbered[unnumbered] -= 1
                    if self._unnumbered[unnumbered] <= 0:
                        del self._unnumbered[unnumbered]
            if kind == "pupils" and candidate.upn:
                self._off_the_roll(candidate.upn, record_id)
            self._given[candidate.prepared.given] -= 1
            self._family[candidate.prepared.family] -= 1
            self.records[record_id] = None
            self.columns.drop(record_id)
            self._removed += 1
            self.live -= 1

    def _off_the_roll(self, upn: str, record_id: int) -> None:
        """A roll record of ``upn`` removed: a record left alone with the UPN is a person of its own again."""
        more = self._more_roll_ids.get(upn)
        if not more:
            del self._roll_id_of_upn[upn]
            return
        if self._roll_id_of_upn[upn] == record_id:
            self._roll_id_of_upn[upn] = more.pop(0)
        else:
            more.remove(record_id)
        if not more:
            del self._more_roll_ids[upn]
            self.columns.share_upn(self._roll_id_of_upn[upn], False)

    @staticmethod
    def _hold(held: Counter[str], candidate: Candidate, change: int) -> None:
        for number in (f"upn:{candidate.upn}" if candidate.upn else None,
                       f"nhs:{candidate.identity.nhs_number}" if candidate.identity.nhs_number else None):
            if number is not None:
                held[number] += change
                if held[number] <= 0:
                    del held[number]

    def may_hold(self, kind: str, upns: Iterable[str], nhs_numbers: Iterable[str]) -> bool:
        """Whether a current record of ``kind`` (involvements or ehe) carries one of these UPNs or NHS numbers
        (exactly as recorded), as of the version the index was last brought to: False only when none does."""
        with self._lock:  # not during a build (emptied first) nor a change (a record replaced is taken out first)
            held = self._held[kind]
            return any(f"upn:{upn}" in held for upn in upns) or any(f"nhs:{nhs}" in held for nhs in nhs_numbers)

    def may_hold_unnumbered(self, family_key: str, date_of_birth: date | None) -> bool:
        """Whether a current involvement recorded without a UPN has this family key and date of birth (those a
        linked pupil's facts take as the pupil's), as of the version the index was last brought to: False only
        when none does."""
        if date_of_birth is None:
            return True  # not counted: the caller reads
        with self._lock:
            return (family_key, date_of_birth) in self._unnumbered

    def _restat(self) -> None:
        """After a batch of changes: the statistics, and the arrays rebuilt once the changes since are many."""
        changed = self._postings.added_count + self._removed
        if changed > max(self.COMPACT_AFTER, len(self._postings.keys) // 4):
            self._compact()
        # The stats get snapshots of the name counts, not the counters themselves: a worker scoring against the
        # stats it took must not see the counts change under it while another applies the next changes.
        self.generation += 1
        self.stats = ReferenceStats(population=self.live, given_counts=MappingProxyType(dict(self._given)),
                                    family_counts=MappingProxyType(dict(self._family)), records=self.live)

    def _compact(self) -> None:
        """Rebuild the arrays from the records in memory (ids unchanged): no store read, no new records."""
        self._postings = _Postings.build(
            (record_id, record_hashes(candidate.prepared)) for record_id, candidate in enumerate(self.records)
            if candidate is not None and isinstance(candidate.prepared, Prepared))
        self._removed = 0

    def load(self, rows: Iterable[ReferenceRow], schools: dict[str, str] | None = None) -> None:
        """Replace the whole contents (a build, in one pass over the rows)."""
        with self._lock:
            self._empty()
            self.schools = dict(schools or {})
            self._postings = _Postings.build(self._store(row) for row in rows)
            self._restat()

    # ---- reading --------------------------------------------------------------------------------------
    def candidates(self, identity: Identity) -> list[Candidate]:
        """The records under the event's keys, each once, in the order the keys first find them (a
        ``CandidateBlock``: the matcher scores it from the columns). Found once per identity while the contents
        stay as they are (``generation``): the same block again, which nobody changes."""
        return self.candidates_at(identity)[1]

    def candidates_at(self, identity: Identity) -> tuple[int, list[Candidate]]:
        """``candidates`` with the generation they were found at, both read under the lock: what is kept per
        generation (a match decision) is paired only with candidates of that same generation."""
        with self._lock:  # not during a build or a change: a reader waits for it, then finds what it made
            generation = self.generation
            kept = self._kept.get(identity)
            if kept is not None and kept[0] == generation:
                return generation, kept[1]
            found = self._candidates(identity)
            if len(self._kept) >= CANDIDATES_KEPT:
                self._kept.clear()
            self._kept[identity] = (generation, found)
            return generation, found

    def _candidates(self, identity: Identity) -> CandidateBlock:
        prepared = prepared_event(identity)
        with self._lock:
            postings = self._postings  # read under the lock: a build or a compaction replaces it
            view = postings.id_view()
            runs = []
            keys = list(dict.fromkeys(event_keys(prepared)))  # a key the date's swap repeats is looked up once
            hashes = [hash(key) for key in keys]
            # Each key's run in the sorted hashes (``_Postings.size`` for all of them at once).
            found_keys = postings.key_view()
            wanted = np.array(hashes, np.int64)
            starts = np.searchsorted(found_keys, wanted, "left").tolist()
            ends = np.searchsorted(found_keys, wanted, "right").tolist()
            added_postings = postings.added
            for key, h, lo, hi in zip(keys, hashes, starts, ends, strict=True):
                added = added_postings.get(h, ()) if added_postings else ()
                if hi == lo and not added:
                    continue
                unlimited = key.startswith("n|")
                limit = self.weak_block if key.startswith(WEAK_KEY) else self.max_block
                if not unlimited:
                    hi = min(hi, lo + limit + 1)
                if unlimited or hi - lo + len(added) <= limit:
                    runs.append(view[lo:hi])
                    if added:
                        runs.append(np.array(added, np.uint32))
            if not runs:
                return CandidateBlock([], np.zeros(0, np.uint32), self.columns)
            found = np.concatenate(runs)
            if len(found) <= _FEW:  # each once, where the keys first found it
                ids = self.columns.alive(np.fromiter(dict.fromkeys(found.tolist()), np.uint32))
            else:
                _, first = np.unique(found, return_index=True)
                ids = self.columns.alive(found[np.sort(first)])
            records = self.records
            return CandidateBlock([records[i] for i in ids.tolist()], ids, self.columns)

    # ---- the store --------------------------------------------------------------------------------------
    def refresh(self, connection: Connection, latest: int | None = None) -> bool:
        """The version check: apply reference changes made up to ``latest`` (the change log's newest sequence
        number, read here if not given) since the last one (a full build the first time). Changes of kinds the
        index does not hold (teams) are passed over. True when anything changed."""
        if latest is None:
            latest = reference_version(connection)
        with self._lock:
            if self.seq < 0:
                self.load(_all_rows(connection), _schools(connection))
                self.seq = latest
                return True
            if latest <= self.seq:
                return False
            changes = connection.execute(sa_select(CHANGE.c.kind, CHANGE.c.row_key)
                                         .where(CHANGE.c.seq > self.seq, CHANGE.c.seq <= latest)).all()
            by_kind: dict[str, set[str]] = {}
            for change in changes:
                by_kind.setdefault(change.kind, set()).add(change.row_key)
            if "schools" in by_kind:
                self.schools = _schools(connection)
            for kind, keys in by_kind.items():
                if kind not in SOURCE:  # schools (names re-read above) and teams (not evidence of a child)
                    continue
                current = {row.key: row for row in _rows(connection, kind, keys)}
                for key in keys:
                    if key in current:
                        self.add(current[key])
                    else:
                        self.remove(kind, key)
            self._restat()
            self.seq = latest
            return True


def _schools(connection: Connection) -> dict[str, str]:
    return {row.urn: row.name for row in connection.execute(sa_select(SCHOOL.c.urn, SCHOOL.c.name))}


_IDENTITY = ("given_name", "family_name", "date_of_birth", "nhs_number")


def _table_rows(connection: Connection, kind: str, keys: set[str] | None) -> Iterator[ReferenceRow]:
    """Plain rows through Core, only the columns the index keeps, streamed (a server-side cursor where the
    database has one) so a million rows are never all held at once."""
    if kind == "pupils":
        # A pupil who left the roll is still evidence of who a child is; a row ended beside a current row of its UPN
        # is not (a corrected row's old version: its values may be the mistake the correction took out).
        current = PUPIL.alias("current_row")
        statement = sa_select(*(PUPIL.c[c] for c in (*_IDENTITY, "row_key", "upn", "sex", "postcode", "school_urn"))) \
            .where(or_(PUPIL.c.ended_at.is_(None), ~exists().where(current.c.upn == PUPIL.c.upn,
                                                                   current.c.ended_at.is_(None))))
        if keys is not None:
            statement = statement.where(PUPIL.c.row_key.in_(keys))
        for row in connection.execute(statement.execution_options(yield_per=STREAM_ROWS)):
            yield ReferenceRow("pupils", row.row_key, _identity(row), upn=row.upn, school_urn=row.school_urn)
        return
    table = EHE if kind == "ehe" else INVOLVEMENT
    columns = [*_IDENTITY, "row_key", *(["postcode"] if kind == "ehe" else ["upn", "family_key"])]
    statement = sa_select(*(table.c[c] for c in columns)).where(table.c.ended_at.is_(None))
    if keys is not None:
        statement = statement.where(table.c.row_key.in_(keys))
    for row in connection.execute(statement.execution_options(yield_per=STREAM_ROWS)):
        upn = getattr(row, "upn", None)
        yield ReferenceRow(kind, row.row_key, _identity(row), upn=upn,
                           family_key=None if upn else getattr(row, "family_key", None))


def _rows(connection: Connection, kind: str, keys: set[str]) -> list[ReferenceRow]:
    found: list[ReferenceRow] = []
    ordered = sorted(keys)
    for start in range(0, len(ordered), 500):
        found.extend(_table_rows(connection, kind, set(ordered[start:start + 500])))
    return found


def _all_rows(connection: Connection) -> Iterator[ReferenceRow]:
    for kind in ("pupils", "ehe", "involvements"):
        yield from _table_rows(connection, kind, None)
