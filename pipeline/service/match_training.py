"""Estimating the matcher's parameters from the loaded data without labels, and measuring it against labels.

``train``: u from random pairs of reference records, then m (and the share of events whose child is known)
by expectation-maximisation over the pairs the index's blocking fetches for events, as Splink does; with no
events yet, over pairs of reference records that block together (one child on several registers).
``evaluate``: precision, recall, F1, review and no-match rates on a labelled set (`safeguard match evaluate`).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from pipeline.adapters.match_index import ReferenceIndex, ReferenceRow
from pipeline.domain.fellegi_sunter import (
    FellegiSunterMatcher,
    Parameters,
    Prepared,
    Thresholds,
    compare,
    estimate_u,
    expectation_maximisation,
    prepare,
    random_pairs,
)
from pipeline.domain.matching import group_people
from pipeline.domain.model import Identity, MatchOutcome
from pipeline.ports import StorePort
from pipeline.service.handlers import Context
from pipeline.service.reference import pupil_row_key

RANDOM_PAIRS = 40_000
MAX_TRAINING_EVENTS = 20_000


def _event_pairs(index: ReferenceIndex, identities: Iterable[Identity]) -> tuple[list[dict[str, str]], int, int]:
    """Levels of every blocked (event, record) pair; the number of events and of those with a date of birth."""
    levels: list[dict[str, str]] = []
    events = dated = 0
    for identity in identities:
        events += 1
        dated += identity.date_of_birth is not None
        mine = prepare(identity)
        for candidate in index.candidates(identity):
            assert isinstance(candidate.prepared, Prepared)
            levels.append(compare(mine, candidate.prepared))
    return levels, events, dated


def _reference_pairs(index: ReferenceIndex) -> list[dict[str, str]]:
    """Pairs of reference records from different registers that block together (one child, several records)."""
    levels = []
    for candidate in index.records:
        if candidate is None:
            continue
        assert isinstance(candidate.prepared, Prepared)
        for other in index.candidates(candidate.identity):
            if other is not candidate and other.source != candidate.source:
                assert isinstance(other.prepared, Prepared)
                levels.append(compare(candidate.prepared, other.prepared))
    return levels


NAME_FIELDS = ("given_name", "family_name")
SHARED_FIELDS = ("nhs_number", "sex", "postcode", "school")


def estimate_m(levels: list[dict[str, str]], start: Parameters) -> tuple[dict[str, dict[str, float]], float]:
    """Splink's two training sessions: pairs blocked on an exact date of birth estimate the names (and the
    rest); pairs whose names both agree exactly estimate the date of birth (and the rest); a field estimated
    in both takes the mean. Returns m and the share of date-of-birth-session pairs that match."""
    by_birth = [lv for lv in levels if lv["date_of_birth"] == "exact"]
    by_names = [lv for lv in levels if lv["given_name"] == "exact" and lv["family_name"] == "exact"]
    m_birth, share_birth = expectation_maximisation(by_birth, start, fixed=("date_of_birth",))
    m_names, _ = expectation_maximisation(by_names, start, fixed=NAME_FIELDS)
    m = {f: dict(v) for f, v in start.m.items()}
    for name in NAME_FIELDS:
        m[name] = m_birth[name]
    m["date_of_birth"] = m_names["date_of_birth"]
    for name in SHARED_FIELDS:
        m[name] = {lv: (m_birth[name][lv] + m_names[name][lv]) / 2 for lv in m[name]}
    return m, share_birth * len(by_birth)


def train(index: ReferenceIndex, events: Sequence[Identity], base: Parameters | None = None,
          seed: int = 7) -> Parameters:
    """New parameters from the index's records (u) and the events' blocked pairs (m); ``base`` is the prior."""
    base = base or Parameters()
    records = [c.prepared for c in index.records if c is not None and isinstance(c.prepared, Prepared)]
    u = estimate_u(random_pairs(records, min(RANDOM_PAIRS, len(records) * 10), seed), base)
    start = Parameters(base.m, u, base.share_known, {})
    if events:
        levels, count, dated = _event_pairs(index, events[:MAX_TRAINING_EVENTS])
        m, birth_matches = estimate_m(levels, start)
        # Matches found by the date-of-birth session are the known children whose date of birth is exact.
        share = birth_matches / max(dated * m["date_of_birth"]["exact"], 1.0)
        return Parameters(m, u, min(max(share, 0.05), 0.995),
                          {"reference_records": len(records), "events": count, "pairs": len(levels)})
    levels = _reference_pairs(index)
    m, _ = estimate_m(levels, start)
    return Parameters(m, u, base.share_known, {"reference_records": len(records), "events": 0, "pairs": len(levels)})


def train_stored(port: StorePort, ctx: Context, now: datetime) -> tuple[str, dict[str, int]]:
    """``safeguard match train``: estimate from the store's reference data and recent events, store the version."""
    port.sync_match_index(ctx.index)
    parameters = train(ctx.index, port.recent_event_children(MAX_TRAINING_EVENTS), ctx.matcher.parameters)
    return port.save_match_parameters(parameters, now), parameters.trained_on


# ---- evaluation on a labelled set ---------------------------------------------------------------------------

def _day(value: str | None) -> date | None:
    value = (value or "").strip()
    return date.fromisoformat(value) if value else None


def _text(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


def roll_rows(text: str, school_names: dict[str, str] | None = None) -> tuple[list[ReferenceRow], dict[str, str]]:
    """Pupils CSV (the contract's columns) as index rows."""
    rows = []
    for values in csv.DictReader(io.StringIO(text)):
        identity = Identity(_text(values.get("given_name")), _text(values.get("family_name")),
                            _day(values.get("date_of_birth")), _text(values.get("sex")),
                            _text(values.get("nhs_number")), _text(values.get("postcode")))
        upn, school_urn = _text(values.get("upn")), _text(values.get("school_urn"))
        if upn:
            key = pupil_row_key(upn, school_urn or "", _day(values.get("on_roll_from")))
            rows.append(ReferenceRow("pupils", key, identity, upn=upn, school_urn=school_urn))
    return rows, dict(school_names or {})


def event_identities(lines: Iterable[str]) -> list[tuple[str, Identity]]:
    """(event_id, child) of each JSON event (one a line, the contract's field names)."""
    found = []
    for line in lines:
        if not line.strip():
            continue
        record = json.loads(line)
        child = record.get("child") or {}
        found.append((str(record.get("event_id")), Identity(
            _text(child.get("given_name")), _text(child.get("family_name")), _day(child.get("date_of_birth")),
            _text(child.get("sex")), _text(child.get("nhs_number")), _text(child.get("postcode")),
            _text(child.get("school_name")))))
    return found


TRUTH_COLUMNS = ("upn", "true_upn", "pupil_upn", "match_upn", "child_upn")


def truth_of(text: str) -> dict[str, str | None]:
    """event_id -> the UPN of the pupil the event is about (empty: on no roll)."""
    reader = csv.DictReader(io.StringIO(text))
    column = next((c for c in TRUTH_COLUMNS if c in (reader.fieldnames or [])), None)
    if column is None or "event_id" not in (reader.fieldnames or []):
        raise ValueError(f"the truth file needs an event_id column and one of {', '.join(TRUTH_COLUMNS)}")
    return {row["event_id"]: _text(row.get(column)) for row in reader}


@dataclass(frozen=True)
class Evaluation:
    events: int
    on_roll: int
    linked: int
    linked_correct: int
    review: int
    review_containing_truth: int
    no_match: int
    model_version: str

    @property
    def precision(self) -> float:
        return self.linked_correct / self.linked if self.linked else 1.0

    @property
    def recall_links(self) -> float:
        return self.linked_correct / self.on_roll if self.on_roll else 1.0

    @property
    def recall(self) -> float:
        """Children on the roll found: linked correctly, or in review with the right child among the candidates."""
        return (self.linked_correct + self.review_containing_truth) / self.on_roll if self.on_roll else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def lines(self) -> list[str]:
        return [
            f"events: {self.events} ({self.on_roll} about a child on the roll)",
            f"precision: {self.precision:.4f} (automatic links: {self.linked}, correct: {self.linked_correct})",
            f"recall: {self.recall:.4f} (counting reviews that hold the right child: "
            f"{self.review_containing_truth}; links alone: {self.recall_links:.4f})",
            f"f1: {self.f1:.4f}",
            f"review rate: {self.review / self.events if self.events else 0:.4f} ({self.review})",
            f"no-match rate: {self.no_match / self.events if self.events else 0:.4f} ({self.no_match})",
            f"model: {self.model_version}",
        ]


def evaluate(roll: list[ReferenceRow], schools: dict[str, str], events: list[tuple[str, Identity]],
             truth: dict[str, str | None], thresholds: Thresholds, *, train_model: bool = True,
             parameters: Parameters | None = None) -> Evaluation:
    """Build an index of the roll, estimate the model on the roll and the events (no labels), decide each event
    and score the decisions against the truth."""
    index = ReferenceIndex()
    index.load(roll, schools)
    if train_model:
        parameters = train(index, [identity for _, identity in events], parameters)
    matcher = FellegiSunterMatcher(parameters, thresholds)
    linked = correct = review = review_hit = no_match = on_roll = 0
    for event_id, identity in events:
        expected = truth.get(event_id)
        on_roll += expected is not None
        candidates = index.candidates(identity)
        decision = matcher.decide(identity, candidates, urgent=False, stats=index.stats)
        if decision.outcome is MatchOutcome.LINKED:
            linked += 1
            correct += expected is not None and decision.person_key == f"upn:{expected}"
        elif decision.outcome is MatchOutcome.REVIEW:
            review += 1
            keys = set(decision.candidate_keys) or set(group_people(candidates))
            review_hit += expected is not None and f"upn:{expected}" in keys
        else:
            no_match += 1
    return Evaluation(len(events), on_roll, linked, correct, review, review_hit, no_match, matcher.version)


def evaluate_files(roll: Path, events: Path, truth: Path, thresholds: Thresholds,
                   schools: Path | None = None) -> Evaluation:
    names: dict[str, str] = {}
    if schools is not None:
        names = {row["urn"]: row["name"] for row in csv.DictReader(io.StringIO(schools.read_text("utf-8-sig")))}
    rows, names = roll_rows(roll.read_text(encoding="utf-8-sig"), names)
    with events.open(encoding="utf-8") as handle:
        identities = event_identities(handle)
    return evaluate(rows, names, identities, truth_of(truth.read_text(encoding="utf-8-sig")), thresholds)
