"""The probabilistic matcher: a Fellegi-Sunter model with explainable comparison levels, and its estimation.

Each field of a candidate record is compared with the event's child at one of a few ordered levels (exact,
nickname, Jaro-Winkler bands, phonetic code, transposed, different, absent...). Each level has an m
probability (how often a true match shows it) and a u probability (how often two different children show
it); its weight is log2(m/u), an absent value weighs nothing, and an exact name agreement uses how common
that name is (term-frequency adjustment). The sum with the prior odds gives the match probability.

m and u are estimated without labels, as Splink does: u from random pairs of reference records, m by
expectation-maximisation over blocked pairs with u held fixed (and a prior to keep rare levels stable).
The rules of domain.md sit on top of the model: the NHS-number rule, never linking across different valid
NHS numbers, never linking twins or siblings on a fuzzy name, and review when two candidates are close.

Pure: no I/O. The parameters are a plain value the adapters store and reload.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import operator
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import jellyfish
import numpy as np
import numpy.typing as npt
from nicknames import NickNamer
from rapidfuzz import process
from rapidfuzz.distance import JaroWinkler

from pipeline.domain.match_columns import RAW_NHS, UPN_UNSHARED, VALID_NHS, CandidateBlock
from pipeline.domain.matching import (
    ReferenceStats,
    group_people,
    nhs_number_valid,
    normalise_name,
    normalise_postcode,
    postcode_parts,
)
from pipeline.domain.model import Candidate, Identity, MatchDecision, MatchOutcome

ABSENT = "absent"

LEVELS: dict[str, tuple[str, ...]] = {
    "nhs_number": ("exact", "different", ABSENT),
    "given_name": ("exact", "nickname", "jaro_winkler_0.95", "phonetic", "jaro_winkler_0.88", "transposed",
                   "different", ABSENT),
    "family_name": ("exact", "hyphenated", "jaro_winkler_0.95", "phonetic", "jaro_winkler_0.88", "transposed",
                    "different", ABSENT),
    "date_of_birth": ("exact", "day_month_swap", "one_digit", "within_month", "within_year", "different", ABSENT),
    "sex": ("agree", "different", ABSENT),
    "postcode": ("full", "sector", "district", "different", ABSENT),
    "school": ("similar", "different", ABSENT),
}
FIELDS = tuple(LEVELS)
_POSTCODE_LEVELS = LEVELS["postcode"]
TF_FIELDS = {"given_name": "given_counts", "family_name": "family_counts"}

# Starting m and u probabilities (conditional on both values present), from the corruptions events are known to
# carry; estimation replaces them from the loaded data and keeps them as the prior of the m estimate.
DEFAULT_M: dict[str, dict[str, float]] = {
    "nhs_number": {"exact": 0.97, "different": 0.03},
    "given_name": {"exact": 0.68, "nickname": 0.14, "jaro_winkler_0.95": 0.04, "phonetic": 0.02,
                   "jaro_winkler_0.88": 0.04, "transposed": 0.04, "different": 0.04},
    "family_name": {"exact": 0.78, "hyphenated": 0.05, "jaro_winkler_0.95": 0.04, "phonetic": 0.02,
                    "jaro_winkler_0.88": 0.02, "transposed": 0.04, "different": 0.05},
    "date_of_birth": {"exact": 0.86, "day_month_swap": 0.05, "one_digit": 0.05, "within_month": 0.01,
                      "within_year": 0.01, "different": 0.02},
    "sex": {"agree": 0.98, "different": 0.02},
    "postcode": {"full": 0.74, "sector": 0.06, "district": 0.05, "different": 0.15},
    "school": {"similar": 0.92, "different": 0.08},
}
DEFAULT_U: dict[str, dict[str, float]] = {
    "nhs_number": {"exact": 1e-6, "different": 1.0 - 1e-6},
    "given_name": {"exact": 0.01, "nickname": 0.004, "jaro_winkler_0.95": 0.002, "phonetic": 0.004,
                   "jaro_winkler_0.88": 0.02, "transposed": 0.0003, "different": 0.9597},
    "family_name": {"exact": 0.004, "hyphenated": 0.0005, "jaro_winkler_0.95": 0.001, "phonetic": 0.003,
                    "jaro_winkler_0.88": 0.01, "transposed": 0.0002, "different": 0.9813},
    "date_of_birth": {"exact": 0.0003, "day_month_swap": 0.0002, "one_digit": 0.004, "within_month": 0.01,
                      "within_year": 0.08, "different": 0.9055},
    "sex": {"agree": 0.5, "different": 0.5},
    "postcode": {"full": 0.0005, "sector": 0.004, "district": 0.05, "different": 0.9455},
    "school": {"similar": 0.1, "different": 0.9},
}
MIN_PROBABILITY = 1e-7  # no level is ever certain or impossible
# Levels that weigh nothing: an absent value, and a transposition's second half (the given name's
# "transposed" level already is the evidence of both names agreeing crosswise; counting it twice would not be).
UNWEIGHTED = {(f, ABSENT) for f in LEVELS} | {("family_name", "transposed")}


@functools.cache
def nickname_groups() -> dict[str, frozenset[str]]:
    """Each name -> the canonical names it belongs to, from the `nicknames` package's curated list (plus the
    canonical itself): two names are aliases when their sets meet (Bill and Will are both William)."""
    groups: dict[str, set[str]] = {}
    for canonical, nicknames in NickNamer().nickname_lookup.items():
        key = normalise_name(canonical)
        groups.setdefault(key, set()).add(key)
        for nickname in nicknames:
            groups.setdefault(normalise_name(nickname), set()).add(key)
    return {name: frozenset(canonicals) for name, canonicals in groups.items()}


def are_nicknames(a: str, b: str) -> bool:
    groups = nickname_groups()
    return bool(a and b and groups.get(a, frozenset()) & groups.get(b, frozenset()))


@functools.lru_cache(maxsize=262144)
def phonetic(name: str) -> str:
    """The Metaphone code of a normalised name (jellyfish), '' for none."""
    return jellyfish.metaphone(name) if name else ""


@functools.lru_cache(maxsize=65536)  # one shared tuple per name: the index keeps one per record
def _parts(value: str | None) -> tuple[str, ...]:
    """Normalised parts of a possibly hyphenated or double-barrelled name (Smith-Jones -> smith, jones)."""
    if not value:
        return ()
    return tuple(p for p in (normalise_name(x) for x in value.replace("-", " ").split()) if p)


@functools.lru_cache(maxsize=65536)
def _birth_digits(value: date) -> str:
    return value.strftime("%Y%m%d")


@dataclass(frozen=True, slots=True)
class Prepared:
    """An identity normalised once for comparing (the index keeps one per reference record)."""

    given: str
    family: str
    family_parts: tuple[str, ...]
    given_phonetic: str
    family_phonetic: str
    date_of_birth: date | None
    birth_digits: str  # YYYYMMDD, for the one-digit comparison
    sex: str | None
    postcode: tuple[str, str, str]
    nhs_number: str | None  # only a valid one
    school: str


def prepare(identity: Identity, school_name: str | None = None,
            shared: dict[Any, Any] | None = None) -> Prepared:
    """The identity normalised for comparing. ``shared``: a table of values already held (the index's), so a
    million records keep one copy of each postcode's parts, name and date instead of one each."""
    given, family = normalise_name(identity.given_name), normalise_name(identity.family_name)
    born = identity.date_of_birth
    postcode = postcode_parts(identity.postcode) if normalise_postcode(identity.postcode) else ("", "", "")
    school = _school_key(school_name or identity.school_name)
    if shared is not None:
        postcode = shared.setdefault(postcode, postcode)
        school = shared.setdefault(school, school)
        given, family = shared.setdefault(given, given), shared.setdefault(family, family)
    return Prepared(
        given=given, family=family, family_parts=_parts(identity.family_name),
        given_phonetic=phonetic(given), family_phonetic=phonetic(family),
        date_of_birth=born, birth_digits=_birth_digits(born) if born else "",
        sex=identity.sex if identity.sex in ("M", "F") else None,
        postcode=postcode,
        nhs_number=identity.nhs_number if nhs_number_valid(identity.nhs_number) else None,
        school=school,
    )


@functools.lru_cache(maxsize=256)
def prepared_event(identity: Identity) -> Prepared:
    """An event's child prepared once: the index's look-up and the matcher's decision both ask for it (a
    ``Prepared`` is immutable, so sharing it is safe)."""
    return prepare(identity)


def _school_key(name: str | None) -> str:
    """A school name without the words every school name shares."""
    words = [w for w in normalise_words(name) if w not in _SCHOOL_WORDS]
    return " ".join(words)


_SCHOOL_WORDS = frozenset({
    "school", "primary", "secondary", "academy", "the", "of", "and", "c", "e", "ce", "rc", "church", "england",
    "catholic", "infant", "infants", "junior", "juniors", "community", "high", "college", "st", "saint",
})


def normalise_words(value: str | None) -> list[str]:
    return [normalise_name(w) for w in (value or "").replace("-", " ").replace("'", "").split() if normalise_name(w)]


def _similar(a: str, b: str) -> float:
    return JaroWinkler.similarity(a, b) if a and b else 0.0


@functools.lru_cache(maxsize=1 << 17)  # pure; names repeat across events (a roll has a few thousand of them)
def _name_level(a: str, b: str, a_phonetic: str, b_phonetic: str, *, given: bool,
                a_parts: tuple[str, ...] = (), b_parts: tuple[str, ...] = ()) -> str:
    if not a or not b:
        return ABSENT
    if a == b:
        return "exact"
    if given and are_nicknames(a, b):
        return "nickname"
    if not given and a_parts and b_parts and (set(a_parts) & set(b_parts)):
        return "hyphenated"
    similarity = _similar(a, b)
    if similarity >= 0.95:
        return "jaro_winkler_0.95"
    if a_phonetic and a_phonetic == b_phonetic:
        return "phonetic"
    if similarity >= 0.88:
        return "jaro_winkler_0.88"
    return "different"


@functools.lru_cache(maxsize=1 << 16)
def _close(a: str, b: str) -> bool:
    return bool(a and b) and (a == b or _similar(a, b) >= 0.92 or are_nicknames(a, b))


@functools.cache
def _nickname_members() -> dict[str, frozenset[str]]:
    """Each canonical name -> every name in its group."""
    members: dict[str, set[str]] = {}
    for name, canonicals in nickname_groups().items():
        for canonical in canonicals:
            members.setdefault(canonical, set()).add(name)
    return {canonical: frozenset(names) for canonical, names in members.items()}


@functools.lru_cache(maxsize=4096)
def _aliases(name: str) -> frozenset[str]:
    """The names ``are_nicknames`` pairs with ``name``."""
    members = _nickname_members()
    return frozenset().union(*(members[c] for c in nickname_groups().get(name, ()))) if name else frozenset()


_THRESHOLDS = np.array([0.88, 0.92, 0.95])


def _similarities(names: tuple[str, str], values: list[str]) -> tuple[list[float], list[float]]:
    """``_similar(name, value)`` for each value and each of the two names, from one batched rapidfuzz call; a
    value within 1e-6 of a threshold the levels use is worked out again one by one, so no comparison can fall
    the other side."""
    if not values:
        return [], []
    found = process.cdist([name or "" for name in names], values, scorer=JaroWinkler.similarity, dtype=np.float64)
    near = np.abs(found[:, :, None] - _THRESHOLDS).min(axis=2) < 1e-6
    rows: list[list[float]] = found.tolist()
    for row, column in zip(*np.nonzero(near), strict=True):
        rows[row][column] = _similar(names[row], values[column])
    empty = [i for i, value in enumerate(values) if not value]
    for row, name in enumerate(names):
        if not name:
            rows[row] = [0.0] * len(values)
        for i in empty:
            rows[row][i] = 0.0
    return rows[0], rows[1]


def _one_digit(a: date, b: date) -> bool:
    left, right = a.strftime("%Y%m%d"), b.strftime("%Y%m%d")
    return sum(x != y for x, y in zip(left, right, strict=True)) == 1


def date_level(a: date | None, b: date | None, a_digits: str = "", b_digits: str = "") -> str:
    if a is None or b is None:
        return ABSENT
    if a == b:
        return "exact"
    if a.day == b.month and a.month == b.day and a.year == b.year:
        return "day_month_swap"
    if (sum(map(operator.ne, a_digits, b_digits)) == 1) if a_digits and b_digits else _one_digit(a, b):
        return "one_digit"
    apart = abs((a - b).days)
    if apart <= 31:
        return "within_month"
    if apart <= 366:
        return "within_year"
    return "different"


_GIVEN_KEPT = ("exact", "nickname", ABSENT)  # given-name levels a transposition never replaces
_FAMILY_KEPT = ("exact", "hyphenated", ABSENT)


def _given_level(event: Prepared, record: Prepared) -> str:
    return _name_level(event.given, record.given, event.given_phonetic, record.given_phonetic, given=True)


def _family_level(event: Prepared, record: Prepared) -> str:
    return _name_level(event.family, record.family, event.family_phonetic, record.family_phonetic, given=False,
                       a_parts=event.family_parts, b_parts=record.family_parts)


def _name_levels(event: Prepared, record: Prepared) -> tuple[str, str]:
    """(given, family) levels: both "transposed" when neither agrees and each is close to the other's name."""
    given, family = _given_level(event, record), _family_level(event, record)
    if given not in _GIVEN_KEPT and family not in _FAMILY_KEPT \
            and _close(event.given, record.family) and _close(event.family, record.given):
        return "transposed", "transposed"
    return given, family


def _nhs_level(event: Prepared, record: Prepared) -> str:
    if event.nhs_number and record.nhs_number:
        return "exact" if event.nhs_number == record.nhs_number else "different"
    return ABSENT


def _sex_level(event: str | None, record: str | None) -> str:
    return ("agree" if event == record else "different") if event and record else ABSENT


def _postcode_level(event: tuple[str, str, str], record: tuple[str, str, str]) -> str:
    if not (event[0] and record[0]):
        return ABSENT
    if event[0] == record[0]:
        return "full"
    if event[1] and event[1] == record[1]:
        return "sector"
    if event[2] and event[2] == record[2]:
        return "district"
    return "different"


def _school_level(event: str, record: str) -> str:
    if event and record:
        return "similar" if _similar(event, record) >= 0.88 else "different"
    return ABSENT


def _date_level(event: Prepared, record: Prepared) -> str:
    return date_level(event.date_of_birth, record.date_of_birth, event.birth_digits, record.birth_digits)


def compare(event: Prepared, record: Prepared) -> dict[str, str]:
    """The level of each field for one (event, reference record) pair."""
    given, family = _name_levels(event, record)
    return {"nhs_number": _nhs_level(event, record), "given_name": given, "family_name": family,
            "date_of_birth": _date_level(event, record), "sex": _sex_level(event.sex, record.sex),
            "postcode": _postcode_level(event.postcode, record.postcode),
            "school": _school_level(event.school, record.school)}


# ---- parameters -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Parameters:
    """m and u per field and level, and the share of events whose child is in the reference data."""

    m: dict[str, dict[str, float]] = field(default_factory=lambda: {f: dict(v) for f, v in DEFAULT_M.items()})
    u: dict[str, dict[str, float]] = field(default_factory=lambda: {f: dict(v) for f, v in DEFAULT_U.items()})
    share_known: float = 0.9
    trained_on: dict[str, int] = field(default_factory=dict)

    @functools.cached_property
    def version(self) -> str:
        """A content hash: the same parameters are always the same version."""
        return "fs-" + hashlib.sha256(self.to_json().encode()).hexdigest()[:12]

    def to_json(self) -> str:
        return json.dumps({"m": self.m, "u": self.u, "share_known": self.share_known,
                           "trained_on": self.trained_on}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Parameters:
        raw = json.loads(text)
        return cls({f: dict(raw["m"][f]) for f in FIELDS}, {f: dict(raw["u"][f]) for f in FIELDS},
                   float(raw["share_known"]), dict(raw.get("trained_on", {})))

    @functools.cached_property
    def weights(self) -> dict[str, dict[str, float]]:
        """log2(m/u) per level. A partial agreement never weighs more than full agreement (a rare level, such
        as a day/month swap, can have a u so small in the random pairs that it would otherwise outweigh an
        exact date of birth)."""
        found: dict[str, dict[str, float]] = {}
        for name in FIELDS:
            full = LEVELS[name][0]
            top = math.log2(self.m[name][full] / self.u[name][full])
            found[name] = {level: (0.0 if (name, level) in UNWEIGHTED else
                                   min(math.log2(self.m[name][level] / self.u[name][level]), top))
                           for level in LEVELS[name]}
        return found

    @functools.cached_property
    def partial_weights(self) -> dict[str, float]:
        """Per term-frequency field, the weight of its strongest level short of exact agreement."""
        return {name: max(w for lvl, w in self.weights[name].items() if lvl != "exact") for name in TF_FIELDS}

    @functools.cached_property
    def _event_tables(self) -> dict[tuple[float, float], EventTable]:
        return {}

    def event_table(self, given_exact: float, family_exact: float) -> EventTable:
        """The level weights of an event whose exact given and family names weigh these (``EventScorer.table``),
        made once for every event with the same two weights (a name's weight depends only on how common it is)."""
        tables = self._event_tables
        found = tables.get((given_exact, family_exact))
        if found is None:
            if len(tables) >= EVENT_TABLES_KEPT:
                tables.clear()
            table = dict(self.weights)
            table["given_name"] = {**self.weights["given_name"], "exact": given_exact}
            table["family_name"] = {**self.weights["family_name"], "exact": family_exact}
            found = tables[given_exact, family_exact] = EventTable(table)
        return found


EVENT_TABLES_KEPT = 65536  # distinct (given, family) exact-name weights a Parameters keeps tables for


class EventTable:
    """``level_weight`` of every field and level for events whose exact names weigh the same, and what is made
    from it: the comparisons shown for each pattern of levels (a list of read-only dicts shared by every
    decision that shows it; the breakdown is only ever read and serialised)."""

    __slots__ = ("_sexes", "comparisons", "nhs_absent", "postcode_weights", "table")

    def __init__(self, table: dict[str, dict[str, float]]) -> None:
        self.table = table
        self.comparisons: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        self.nhs_absent = table["nhs_number"][ABSENT]
        self.postcode_weights = tuple(table["postcode"][lv] for lv in _POSTCODE_LEVELS)
        self._sexes: dict[str | None, dict[str | None, tuple[str, float]]] = {}

    def sexes(self, event: str | None) -> dict[str | None, tuple[str, float]]:
        """A record's sex -> (level, weight) against an event's (``prepare`` keeps only M, F and None)."""
        found = self._sexes.get(event)
        if found is None:
            found = self._sexes[event] = {sex: (_sex_level(event, sex), self.table["sex"][_sex_level(event, sex)])
                                          for sex in ("M", "F", None)}
        return found


def _tf_weight(params: Parameters, field_name: str, value: str, stats: ReferenceStats | None) -> float | None:
    if stats is None or not stats.records:
        return None
    counts = getattr(stats, TF_FIELDS[field_name])
    count = counts.get(value, 0)
    if count <= 0:
        return None
    u = max(count / stats.records, MIN_PROBABILITY)
    return math.log2(params.m[field_name]["exact"] / u)


def prior_weight(params: Parameters, population: int) -> float:
    """log2 of the prior odds that one event and one reference person are the same child."""
    n = max(population, 1)
    prior = min(max(params.share_known / n, MIN_PROBABILITY), 0.5)
    return math.log2(prior / (1 - prior))


def level_weight(params: Parameters, name: str, level: str, event: Prepared, stats: ReferenceStats | None) -> float:
    """One field's weight at its level; an exact name by how common it is, but never below a partial agreement
    of that field (a common exact name must not lose to a rarer near-miss, e.g. a twin's similar name)."""
    weight = params.weights[name][level]
    if level == "exact" and name in TF_FIELDS:
        tf = _tf_weight(params, name, event.given if name == "given_name" else event.family, stats)
        if tf is not None:
            weight = max(tf, params.partial_weights[name])
    return weight


@functools.lru_cache(maxsize=4096)
def _kept_shown_weight(weight: float) -> float:
    return round(weight, 2)


def shown_weight(weight: float) -> float:
    """``round(weight, 2)``, as a breakdown shows a weight. Kept by value (the levels' weights are the model's few
    values, an exact name's by how common it is, and ``round`` goes through the float's decimal digits, about 3,000
    instructions) for plain floats other than zero only: 1, 1.0 and a numpy float of the same value are equal keys,
    yet round differently or are written differently, and so are 0.0 and -0.0."""
    return _kept_shown_weight(weight) if type(weight) is float and weight else round(weight, 2)


def match_weight(params: Parameters, event: Prepared, levels: dict[str, str],
                 stats: ReferenceStats | None) -> float:
    """The pair's match weight without the prior: each field's level weight, exact names by how common."""
    return sum(level_weight(params, name, levels[name], event, stats) for name in FIELDS)


def comparisons(params: Parameters, event: Prepared, levels: dict[str, str],
                stats: ReferenceStats | None) -> list[dict[str, Any]]:
    """The explanation of a pair: [{field, level, weight}] per field."""
    return [{"field": name, "level": levels[name],
             "weight": shown_weight(level_weight(params, name, levels[name], event, stats))}
            for name in FIELDS]


def score(params: Parameters, event: Prepared, record: Prepared,
          stats: ReferenceStats | None) -> tuple[float, list[dict[str, Any]]]:
    """The pair's match weight (without the prior) and its comparisons [{field, level, weight}]."""
    levels = compare(event, record)
    return match_weight(params, event, levels, stats), comparisons(params, event, levels, stats)


def _name_block(weights: dict[str, float], mine: str, other: str, sound: str, values: list[str],
                own_rung: list[bool], own_level: str, kept: tuple[str, ...]) -> tuple[list[float], list[bool]]:
    """The weight and transposability of each of many distinct names against the event's name ``mine`` (not
    empty), by ``_name_level``'s ladder: ``own_rung[i]`` says whether ``values[i]`` meets the field's own rung
    (a nickname of a given name, a shared part of a family name), which stands as ``own_level`` after "exact".
    ``other`` is the event's other name (a transposition's), ``sound`` the phonetic code of ``mine``."""
    similar, crosswise = _similarities((mine, other), values)
    other_aliases = _aliases(other)
    found, turns = [], []
    for value, on_own_rung, similarity, cross in zip(values, own_rung, similar, crosswise, strict=True):
        if not value:
            level = ABSENT
        elif value == mine:
            level = "exact"
        elif on_own_rung:
            level = own_level
        elif similarity >= 0.95:
            level = "jaro_winkler_0.95"
        elif sound and sound == phonetic(value):
            level = "phonetic"
        elif similarity >= 0.88:
            level = "jaro_winkler_0.88"
        else:
            level = "different"
        found.append(weights[level])
        turns.append(level not in kept and bool(other) and bool(value)
                     and (other == value or cross >= 0.92 or value in other_aliases))
    return found, turns


class EventScorer:
    """One event's comparisons against many records, exactly as ``compare`` and ``match_weight`` make them, but
    each field's level (and its weight) worked out once per distinct value among the records: a block of
    hundreds of candidates shares a few hundred names, dates and postcodes. The weights of the levels are fixed
    per event (an exact name's weight depends only on the event's name), so a record's weight is seven look-ups."""

    def __init__(self, params: Parameters, event: Prepared, stats: ReferenceStats | None) -> None:
        self.params, self.event, self.stats = params, event, stats
        # ``level_weight`` of every level: the parameters' weights (shared, never changed), but an exact name's by
        # how common it is (those two fields' tables are this event's own).
        shared = params.event_table(level_weight(params, "given_name", "exact", event, stats),
                                    level_weight(params, "family_name", "exact", event, stats))
        self.table = shared.table
        self._comparisons = shared.comparisons
        # value -> (level, weight, may be transposed) for names; value -> (level, weight) for the others
        self._given: dict[str, tuple[str, float, bool]] = {}
        self._family: dict[tuple[str, tuple[str, ...]], tuple[str, float, bool]] = {}
        self._dates: dict[date | None, tuple[str, float]] = {}
        self._scored: dict[int, tuple[Prepared, tuple[float, tuple[str, ...]]]] = {}  # by the record's id()
        self._schools: dict[str, tuple[str, float]] = {}
        self._nhs_absent = shared.nhs_absent
        self._postcode_weights = shared.postcode_weights
        self._sex = shared.sexes(event.sex)

    def given_value(self, given: str) -> tuple[str, float, bool]:
        """A record's normalised given name -> (level, weight, may be transposed)."""
        found = self._given.get(given)
        if found is None:
            event = self.event
            level = _name_level(event.given, given, event.given_phonetic, phonetic(given), given=True)
            transposable = level not in _GIVEN_KEPT and _close(event.family, given)
            found = self._given[given] = (level, self.table["given_name"][level], transposable)
        return found

    def family_value(self, family: str, parts: tuple[str, ...]) -> tuple[str, float, bool]:
        """A record's normalised family name and its parts -> (level, weight, may be transposed)."""
        key = (family, parts)
        found = self._family.get(key)
        if found is None:
            event = self.event
            level = _name_level(event.family, family, event.family_phonetic, phonetic(family), given=False,
                                a_parts=event.family_parts, b_parts=parts)
            transposable = level not in _FAMILY_KEPT and _close(event.given, family)
            found = self._family[key] = (level, self.table["family_name"][level], transposable)
        return found

    def date_value(self, born: date | None) -> tuple[str, float]:
        found = self._dates.get(born)
        if found is None:
            event = self.event
            level = date_level(event.date_of_birth, born, event.birth_digits, _birth_digits(born) if born else "")
            found = self._dates[born] = (level, self.table["date_of_birth"][level])
        return found

    def school_value(self, school: str) -> tuple[str, float]:
        found = self._schools.get(school)
        if found is None:
            level = _school_level(self.event.school, school)
            found = self._schools[school] = (level, self.table["school"][level])
        return found

    def given_block(self, values: list[str]) -> tuple[list[float], list[bool]]:
        """``given_value``'s weight and transposability for each of many distinct given names at once."""
        event, weights = self.event, self.table["given_name"]
        if not event.given:
            return [weights[ABSENT]] * len(values), [False] * len(values)
        aliases = _aliases(event.given)
        return _name_block(weights, event.given, event.family, event.given_phonetic, values,
                           [value in aliases for value in values], "nickname", _GIVEN_KEPT)

    def family_block(self, values: list[tuple[str, tuple[str, ...]]]) -> tuple[list[float], list[bool]]:
        """``family_value``'s weight and transposability for each of many distinct family names at once."""
        event, weights = self.event, self.table["family_name"]
        if not event.family:
            return [weights[ABSENT]] * len(values), [False] * len(values)
        parts = set(event.family_parts)
        return _name_block(weights, event.family, event.given, event.family_phonetic, [value[0] for value in values],
                           [bool(parts and value_parts and not parts.isdisjoint(value_parts))
                            for _, value_parts in values], "hyphenated", _FAMILY_KEPT)

    def date_block(self, ordinals: npt.NDArray[np.int64], digits: npt.NDArray[np.int64]) -> Floats:
        """``date_value``'s weight for dates given as their ordinals and YYYYMMDD numbers (0: absent), every
        year from 1000 on (so YYYYMMDD has eight digits, as ``date_level`` compares them)."""
        weights, born = self.table["date_of_birth"], self.event.date_of_birth
        if born is None:
            return np.full(len(ordinals), weights[ABSENT])
        mine = int(_birth_digits(born))
        differing = np.zeros(len(digits), np.int64)
        for scale in (1, 10, 100, 1000, 10_000, 100_000, 1_000_000, 10_000_000):
            differing += (digits // scale % 10) != (mine // scale % 10)
        apart = np.abs(ordinals - born.toordinal())
        year, month, day = digits // 10_000, digits // 100 % 100, digits % 100
        levels = [ordinals == 0, apart == 0, (year == born.year) & (month == born.day) & (day == born.month),
                  differing == 1, apart <= 31, apart <= 366]
        names = [ABSENT, "exact", "day_month_swap", "one_digit", "within_month", "within_year"]
        return np.select(levels, [np.full(len(digits), weights[name]) for name in names], weights["different"])

    def score(self, record: Prepared) -> tuple[float, tuple[str, ...]]:
        """``match_weight(params, event, compare(event, record), stats)``, summed in the same order, and
        ``compare``'s levels in ``FIELDS`` order: worked out once per record (the rules and the breakdown ask again
        for the people they show, which in a small block is most of them)."""
        found = self._scored.get(id(record))
        if found is not None:
            return found[1]
        given = self._given.get(record.given) or self.given_value(record.given)
        family = self._family.get((record.family, record.family_parts)) or \
            self.family_value(record.family, record.family_parts)
        table = self.table
        if record.nhs_number:
            nhs_level = _nhs_level(self.event, record)
            nhs = table["nhs_number"][nhs_level]
        else:
            nhs_level, nhs = ABSENT, self._nhs_absent
        if given[2] and family[2]:
            given_level = family_level = "transposed"
            total = nhs + table["given_name"]["transposed"] + table["family_name"]["transposed"]
        else:
            given_level, family_level = given[0], family[0]
            total = nhs + given[1] + family[1]
        postcode = record.postcode  # the level of ``_postcode_level``, inline: cheaper than a look-up
        full, sector, district = self.event.postcode
        if not (full and postcode[0]):
            rung = 4
        elif postcode[0] == full:
            rung = 0
        elif sector and sector == postcode[1]:
            rung = 1
        elif district and district == postcode[2]:
            rung = 2
        else:
            rung = 3
        born = self._dates.get(record.date_of_birth) or self.date_value(record.date_of_birth)
        sex = self._sex[record.sex]
        school = self._schools.get(record.school) or self.school_value(record.school)
        scored = (total + born[1] + sex[1] + self._postcode_weights[rung] + school[1],
                  (nhs_level, given_level, family_level, born[0], sex[0], _POSTCODE_LEVELS[rung], school[0]))
        # Kept with the record itself: while the scorer holds it, no other record can be given its id() (a record
        # ``prepare`` made for a candidate without one is dropped by the caller as soon as it is weighed).
        self._scored[id(record)] = (record, scored)
        return scored

    def weight(self, record: Prepared) -> float:
        """``match_weight(params, event, compare(event, record), stats)``, summed in the same order."""
        return self.score(record)[0]

    def comparisons(self, levels: tuple[str, ...]) -> list[dict[str, Any]]:
        """``comparisons(params, event, levels, stats)`` of the levels in ``FIELDS`` order, from the weights of the
        levels worked out once: one list for every candidate, of every event, with the same levels and weights
        (the breakdown only reads them)."""
        found = self._comparisons.get(levels)
        if found is None:
            table = self.table
            found = self._comparisons[levels] = [{"field": name, "level": level,
                                                  "weight": shown_weight(table[name][level])}
                                                 for name, level in zip(FIELDS, levels, strict=True)]
        return found

    def levels(self, record: Prepared) -> tuple[str, ...]:
        """``compare(event, record)``'s levels, in ``FIELDS`` order."""
        return self.score(record)[1]


def probability(weight: float) -> float:
    if weight > 60:
        return 1.0
    if weight < -60:
        return 0.0
    odds = 2.0 ** weight
    return odds / (1 + odds)


# ---- estimation (pure: the caller supplies the pairs) ----------------------------------------------------

def estimate_u(level_vectors: Iterable[dict[str, str]], base: Parameters) -> dict[str, dict[str, float]]:
    """u from the levels of random pairs (almost all non-matches), smoothed so no level is impossible."""
    counts = {f: dict.fromkeys(LEVELS[f], 0.0) for f in FIELDS}
    for levels in level_vectors:
        for name in FIELDS:
            counts[name][levels[name]] += 1
    u: dict[str, dict[str, float]] = {}
    for name in FIELDS:
        present = {lv: c for lv, c in counts[name].items() if lv != ABSENT}
        total = sum(present.values())
        if total < 100:  # too few pairs with the field present: keep what there was
            u[name] = dict(base.u[name])
            continue
        # One pseudo-pair per level spread as the previous u: rare levels keep a small, non-zero probability.
        u[name] = {lv: max((c + base.u[name][lv]) / (total + 1), MIN_PROBABILITY) for lv, c in present.items()}
    return u


def expectation_maximisation(level_vectors: Iterable[dict[str, str]], params: Parameters, *,
                             fixed: Iterable[str] = (), iterations: int = 25,
                             prior_strength: float = 50.0) -> tuple[dict[str, dict[str, float]], float]:
    """m by EM over blocked pairs, u held fixed, as Splink does; returns (m, the share of pairs that match).

    As in Splink's training sessions, the fields a session's pairs were blocked on (``fixed``) keep their m
    (their agreement says nothing about matching inside the session) and only the others are estimated. The
    previous m is a Dirichlet prior worth ``prior_strength`` pairs per field, so a level the data rarely shows
    keeps a sensible probability instead of collapsing to zero. Pairs are counted by level pattern first, so a
    session over a million pairs costs what its few thousand distinct patterns cost.
    """
    patterns: dict[tuple[str, ...], int] = {}
    for levels in level_vectors:
        key = tuple(levels[f] for f in FIELDS)
        patterns[key] = patterns.get(key, 0) + 1
    m = {f: dict(v) for f, v in params.m.items()}
    if not patterns:
        return m, 0.0
    frozen = set(fixed)
    free = [f for f in FIELDS if f not in frozen]
    total_pairs = sum(patterns.values())
    share = 0.05
    u = params.u
    for _ in range(iterations):
        weights = {f: {lv: (0.0 if (f, lv) in UNWEIGHTED else math.log2(m[f][lv] / u[f][lv]))
                       for lv in LEVELS[f]} for f in FIELDS}
        prior = math.log2(share / (1 - share))
        expected = {f: dict.fromkeys(LEVELS[f], 0.0) for f in free}
        matched = 0.0
        for key, count in patterns.items():
            p = probability(prior + sum(weights[f][lv] for f, lv in zip(FIELDS, key, strict=True))) * count
            matched += p
            for f, lv in zip(FIELDS, key, strict=True):
                if f in expected:
                    expected[f][lv] += p
        share = min(max(matched / total_pairs, 1e-6), 1 - 1e-6)
        for name in free:
            present = {lv: c for lv, c in expected[name].items() if lv != ABSENT}
            total = sum(present.values())
            m[name] = {lv: max((c + prior_strength * params.m[name][lv]) / (total + prior_strength),
                               MIN_PROBABILITY) for lv, c in present.items()}
    return m, share


def random_pairs(records: Sequence[Prepared], count: int, seed: int = 7) -> list[dict[str, str]]:
    """Levels of ``count`` random pairs of distinct reference records (for u)."""
    if len(records) < 2:
        return []
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        a, b = rng.sample(range(len(records)), 2)
        out.append(compare(records[a], records[b]))
    return out


# ---- decisions -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Thresholds:
    """Match probabilities (0..1): at or above ``link`` link, at or above ``review`` review, else no match.
    ``close_bits``: two people within this many bits of match weight are ambiguous."""

    link: float = 0.98
    review: float = 0.5
    close_bits: float = 4.0

    @classmethod
    def from_mapping(cls, settings: dict[str, Any] | None) -> Thresholds:
        settings = settings or {}
        link = float(settings.get("link_threshold", cls.link))
        review = float(settings.get("review_threshold", cls.review))
        if not (0.0 <= review <= link <= 1.0):
            raise ValueError("matching.review_threshold and matching.link_threshold: 0 <= review <= link <= 1")
        return cls(link, review, float(settings.get("close_bits", cls.close_bits)))


@dataclass(slots=True)
class _Person:
    key: str
    weight: float
    probability: float
    record: Prepared
    source: str
    nhs_equal: bool
    nhs_different: bool
    scorer: EventScorer
    exact_names: bool  # given and family names both agree exactly
    _levels: tuple[str, ...] | None = None

    @property
    def levels(self) -> tuple[str, ...]:
        """Each field's level, in ``FIELDS`` order."""
        if self._levels is None:  # only the people the rules or the breakdown look at
            self._levels = self.scorer.levels(self.record)
        return self._levels

    def level(self, name: str) -> str:
        return self.levels[FIELDS.index(name)]


def _prepared(candidate: Candidate) -> Prepared:
    prepared = candidate.prepared
    if prepared.__class__ is Prepared:
        return prepared
    return prepare(candidate.identity, candidate.school_name)


Floats = npt.NDArray[np.float64]
# Blocks of at least this many candidates are scored from the columns: below it, the arrays' fixed cost per
# event is more than scoring the records one by one (the decision is the same either way).
BLOCK_FROM = 32


@dataclass(slots=True)
class _People:
    """The people an event's candidates make, one row each in the order their records were fetched: what the
    ranking and the rules need of every one of them, as plain lists (a block of a handful costs less so than as
    arrays); a ``_Person`` made only for the few the breakdown and the rules look at in detail."""

    weight: list[float]  # match weight with the prior
    exact_names: list[bool]  # given and family names both agree exactly
    nhs_equal: list[bool]
    nhs_different: list[bool]
    born: list[Any]  # the date of birth of the person's best record, or a code of it (equal: equal dates)
    home: list[Any]  # its full postcode, or a code of it; falsy when there is none
    given_exact: list[bool]  # its given name's level is "exact"
    make: Callable[[int], _Person]
    # The rows best first (``_ranked``), when the arrays they came from ranked them already.
    order: list[int] | None = None


def _ranked(weight: Sequence[float], exact_names: Sequence[bool]) -> list[int]:
    """The rows by weight, best first; ties to the person whose names agree exactly, else in the order fetched
    (as ``np.lexsort((~exact_names, -weight))``, a stable sort)."""
    return sorted(range(len(weight)), key=lambda row: (-weight[row], not exact_names[row]))


def _object_people(scorer: EventScorer, candidates: Sequence[Candidate], prior: float,
                   groups: dict[str, list[Candidate]]) -> _People:
    """People from candidate records of any kind: grouped by UPN, NHS number or exact identity first."""
    mine = scorer.event
    people: list[_Person] = []
    given, family = mine.given, mine.family
    weigh = scorer.weight
    for key, members in groups.items():
        best_member = members[0]
        best_record = _prepared(best_member)
        best_weight = weigh(best_record)
        for member in members[1:]:
            record = _prepared(member)
            weight = weigh(record)
            if weight > best_weight:
                best_weight, best_record, best_member = weight, record, member
        equal = different = False
        if mine.nhs_number:
            numbers = {_prepared(m).nhs_number for m in members} - {None}
            equal = mine.nhs_number in numbers
            different = bool(numbers) and not equal
        exact = bool(given and family and best_record.given == given and best_record.family == family)
        people.append(_Person(key, best_weight + prior, 0.0, best_record, best_member.source, equal, different,
                              scorer, exact))
    return _People(
        [p.weight for p in people], [p.exact_names for p in people], [p.nhs_equal for p in people],
        [p.nhs_different for p in people], [p.record.date_of_birth for p in people],
        [p.record.postcode[0] for p in people], [bool(given) and p.record.given == given for p in people],
        people.__getitem__)


def _per_code(codes: npt.NDArray[np.int32], value_of: Callable[[int], tuple[Any, ...]],
              ) -> tuple[list[tuple[Any, ...]], npt.NDArray[np.intp]]:
    """Each distinct code's result, and for each row the position of its code's result."""
    distinct, rows = np.unique(codes, return_inverse=True)
    return [value_of(code) for code in distinct.tolist()], rows


def _block_people(scorer: EventScorer, block: CandidateBlock, prior: float) -> _People | None:
    """People from a block the index fetched, scored from its columns: the same weights, summed in the same
    order, as ``EventScorer.weight`` on each record. Only when every record is its own person (each has a UPN
    no other shares, and no NHS number is shared): else None, and the records are grouped first."""
    columns, ids, mine, table = block.columns, block.ids, scorer.event, scorer.table
    count = len(ids)
    flags = columns.flags[ids]
    if not np.all(flags & UPN_UNSHARED):
        upns = [candidate.upn for candidate in block]
        if not all(upns) or len(set(upns)) != count:
            return None
    with_nhs = np.flatnonzero(flags & RAW_NHS).tolist()
    if with_nhs and len({block[i].identity.nhs_number for i in with_nhs}) != len(with_nhs):
        return None
    arrays = columns.arrays
    nhs = np.full(count, scorer._nhs_absent)
    equal = np.zeros(count, np.bool_)
    different = np.zeros(count, np.bool_)
    if mine.nhs_number:
        for i in np.flatnonzero(flags & VALID_NHS).tolist():
            same = _prepared(block[i]).nhs_number == mine.nhs_number
            nhs[i] = table["nhs_number"]["exact" if same else "different"]
            equal[i], different[i] = same, not same
    given_codes = arrays["given"][ids]
    distinct, rows = np.unique(given_codes, return_inverse=True)
    weights_of, turns_of = scorer.given_block([columns.given.values[code] for code in distinct.tolist()])
    given_weight = np.array(weights_of, np.float64)[rows]
    given_turns = np.array(turns_of, np.bool_)[rows]
    distinct, rows = np.unique(arrays["family"][ids], return_inverse=True)
    families = [columns.family.values[code] for code in distinct.tolist()]
    weights_of, turns_of = scorer.family_block(families)
    family_weight = np.array(weights_of, np.float64)[rows]
    family_turns = np.array(turns_of, np.bool_)[rows]
    family_exact = np.array([family == mine.family for family, _ in families], np.bool_)[rows]
    turned = given_turns & family_turns  # both names transposed
    total = nhs + np.where(turned, table["given_name"]["transposed"], given_weight)
    total = total + np.where(turned, table["family_name"]["transposed"], family_weight)
    born = arrays["born"][ids]
    distinct, rows = np.unique(born, return_inverse=True)
    ordinals, digits = columns.born_numbers(distinct)
    early = (mine.date_of_birth is not None and mine.date_of_birth.year < 1000) \
        or bool(np.any((digits > 0) & (digits < 10_000_000)))  # a year before 1000: YYYYMMDD is shorter
    if early:
        date_weight = np.array([scorer.date_value(columns.born.values[code])[1] for code in distinct.tolist()])
    else:
        date_weight = scorer.date_block(ordinals, digits)
    total = total + date_weight[rows]
    sexes = np.array([scorer._sex[sex][1] for sex in (None, "M", "F")], np.float64)
    total = total + sexes[columns.sex[ids]]
    postcode = arrays["postcode"][ids]
    weights = scorer._postcode_weights  # full, sector, district, different, absent
    full, sector, district = mine.postcode
    if full:  # the levels of ``_postcode_level``, set from the weakest to the strongest
        postcode_weight = np.full(count, weights[3])
        if district:
            postcode_weight[arrays["district"][ids] == columns.district.code(district)] = weights[2]
        if sector:
            postcode_weight[arrays["sector"][ids] == columns.sector.code(sector)] = weights[1]
        postcode_weight[postcode == columns.postcode.code(mine.postcode)] = weights[0]
        postcode_weight[postcode == 0] = weights[4]
    else:
        postcode_weight = np.full(count, weights[4])
    total = total + postcode_weight
    if mine.school:
        found, rows = _per_code(arrays["school"][ids], lambda code: scorer.school_value(columns.school.values[code]))
        total = total + np.array([f[1] for f in found], np.float64)[rows]
    else:  # ``_school_level``: absent whenever the event names no school
        total = total + table["school"][ABSENT]
    weight = total + prior
    given_exact = given_codes == columns.given.code(mine.given) if mine.given else np.zeros(count, np.bool_)
    exact = given_exact & family_exact if mine.given and mine.family else np.zeros(count, np.bool_)

    def make(row: int) -> _Person:
        candidate = block[row]
        return _Person(f"upn:{candidate.upn}", float(weight[row]), 0.0, _prepared(candidate), candidate.source,
                       bool(equal[row]), bool(different[row]), scorer, bool(exact[row]))

    return _People(weight.tolist(), exact.tolist(), equal.tolist(), different.tolist(), born.tolist(),
                   postcode.tolist(), given_exact.tolist(), make, np.lexsort((~exact, -weight)).tolist())


class FellegiSunterMatcher:
    """Decides which reference person, if any, an event's child is: the model, then the rules of domain.md."""

    def __init__(self, parameters: Parameters | None = None, thresholds: Thresholds | None = None,
                 max_candidates_shown: int = 5) -> None:
        self.parameters = parameters or Parameters()
        self.thresholds = thresholds or Thresholds()
        self.max_candidates_shown = max_candidates_shown

    @property
    def version(self) -> str:
        return self.parameters.version

    def decide(self, event: Identity, candidates: Sequence[Candidate], *, urgent: bool,
               stats: ReferenceStats | None = None) -> MatchDecision:
        params, limits = self.parameters, self.thresholds
        mine = prepared_event(event)
        scorer = EventScorer(params, mine, stats)
        table = None
        if isinstance(candidates, CandidateBlock) and len(candidates) == len(candidates.ids) \
                and len(candidates) >= BLOCK_FROM:
            population = stats.population if stats and stats.population else max(len(candidates), 1)
            table = _block_people(scorer, candidates, prior_weight(params, population))
        if table is None:
            groups = group_people(candidates)
            population = stats.population if stats and stats.population else max(len(groups), 1)
            table = _object_people(scorer, candidates, prior_weight(params, population), groups)
        # Ties go to the person whose names agree exactly (a stable sort: else in the order fetched).
        order = table.order if table.order is not None else _ranked(table.weight, table.exact_names)
        if order and table.exact_names[order[0]]:
            # Twins or siblings at one address: when the names agree exactly with one of them, the others (whose
            # given name does not) are not this child and do not dilute the probability.
            first = order[0]
            born, home, given_exact = table.born, table.home, table.given_exact
            if home[first]:
                order = [row for row in order if row == first or given_exact[row]
                         or born[row] != born[first] or home[row] != home[first]]
        # The child is at most one of these people: each one's probability is its odds against all the others and
        # against none of them, so two close candidates share the probability and neither reaches the link.
        all_weights = table.weight
        weights = [all_weights[row] for row in order]
        chances: list[float] = []
        if weights:
            top_weight = max(weights[0], 0.0)
            odds = [2.0 ** (weight - top_weight) for weight in weights]
            total = 2.0 ** -top_weight + sum(odds)
            chances = [each / total for each in odds]
        made: dict[int, _Person] = {}

        def person(position: int) -> _Person:
            row = order[position]
            found = made.get(row)
            if found is None:
                found = made[row] = table.make(row)
                found.probability = chances[position]
            return found

        outcome, chosen, rule, reason = self._rules(mine, table, order, weights, chances, person)
        shown = [person(i) for i in range(min(self.max_candidates_shown, len(weights)))]
        if chosen is not None and chosen not in shown:
            shown = [chosen, *shown[:-1]]
        breakdown = {
            "model_version": params.version, "rule": rule,
            "link_threshold": limits.link, "review_threshold": limits.review,
            "candidates": [{"probability": round(p.probability, 6), "match_weight": round(p.weight, 2),
                            "source": p.source, "comparisons": scorer.comparisons(p.levels)}
                           for p in shown],
        }
        top = chosen or (person(0) if weights else None)
        return MatchDecision(outcome, chosen.key if chosen and outcome is MatchOutcome.LINKED else None,
                             round(top.probability, 6) if top else 0.0, breakdown, reason, urgent,
                             tuple(p.key for p in shown))

    def _rules(self, event: Prepared, table: _People, order: list[int], weights: list[float],
               chances: list[float], person: Callable[[int], _Person],
               ) -> tuple[MatchOutcome, _Person | None, str, str]:
        """The rules over the people in ``order`` (best first): ``weights`` and ``chances`` are theirs, and
        ``person(position)`` makes one in full."""
        limits = self.thresholds
        incomplete = not (event.given and event.family and event.date_of_birth)
        # 1. The NHS number rule.
        nhs_equal = table.nhs_equal
        equal = [position for position, row in enumerate(order) if nhs_equal[row]]
        if len(equal) == 1:
            found = person(equal[0])
            agrees = found.level("date_of_birth") in ("exact", "day_month_swap") or \
                found.level("family_name") in ("exact", "hyphenated", "jaro_winkler_0.95")
            if not agrees:
                return (MatchOutcome.REVIEW, found, "nhs_number_conflict",
                        "NHS number equal but date of birth and family name disagree")
            if incomplete:
                return MatchOutcome.REVIEW, found, "incomplete_identity", "NHS number agrees; identity incomplete"
            return MatchOutcome.LINKED, found, "nhs_number", "NHS number and identity agree"
        if len(equal) > 1:
            return MatchOutcome.REVIEW, person(equal[0]), "nhs_number_shared", "several people share the NHS number"
        # The probability that the child is one of the candidates at all (they are mutually exclusive).
        known = sum(chances)
        if not weights or known < limits.review:
            return MatchOutcome.NO_MATCH, None, "below_review_threshold", "no candidate above the review threshold"
        top = person(0)
        if top.probability < limits.link:
            if top.probability < known - 1e-9 and probability(weights[1]) >= limits.review:
                return MatchOutcome.REVIEW, top, "ambiguous", "two candidates close in probability"
            return MatchOutcome.REVIEW, top, "between_thresholds", "match probability between the thresholds"
        if top.nhs_different:
            return (MatchOutcome.REVIEW, top, "nhs_number_different",
                    "different valid NHS numbers are never linked automatically")
        # The first other person who is a sibling at the same address (when the names are fuzzy) or close.
        first = order[0]
        born, home, weight = table.born, table.home, table.weight
        first_born, first_home, fuzzy = born[first], home[first], not top.exact_names
        for row in order[1:]:
            sibling = bool(first_home) and born[row] == first_born and home[row] == first_home
            if sibling and fuzzy:
                return (MatchOutcome.REVIEW, top, "twins",
                        "a sibling shares the date of birth and address; fuzzy names are never linked")
            if top.weight - weight[row] < limits.close_bits and weight[row] > 0:
                return MatchOutcome.REVIEW, top, "ambiguous", "two candidates close in probability"
        if incomplete:
            return MatchOutcome.REVIEW, top, "incomplete_identity", "identity incomplete: a person confirms"
        return MatchOutcome.LINKED, top, "model", "match probability above the link threshold"
