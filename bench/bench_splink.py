"""Benchmark: our matcher's precision, recall and F1 on the synthetic set, side by side with Splink's.

For each seed: ``safeguard match generate`` writes the labelled set (schools, a roll of pupils, events, truth);
``safeguard match evaluate`` scores our matcher at the configured thresholds (the model estimated without
labels); then Splink (the ``bench`` extra: ``.venv/bin/pip install -e '.[bench]'``, never installed by
``make test``) is trained on the same roll and events, unsupervised as its documentation does it (the
prior from deterministic rules, u by random sampling, m by expectation maximisation under two blocking
rules), on the same fields the events carry (given name, family name, date of birth, sex, postcode, NHS
number, school name), and links each event to its best-scoring pupil when the match probability is at least
0.9. Both are counted the way ``evaluate`` counts: precision over automatic links; recall over events about a
child on the roll, ours once with review hits counted as found and once with automatic links alone.

A breakdown by the corruption the event carries (found by comparing the event with the true pupil's row)
shows where either loses children; for it our decisions are recomputed in process with the calls
``evaluate`` makes (the totals are checked against the command's). Run pinned to one core:

    taskset -c 0 .venv/bin/python bench/bench_splink.py [--seeds 11 12] [--pupils 3800] [--events 5000]

Appends a dated section to bench/results/matching.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import splink  # noqa: E402
import splink.comparison_library as cl  # noqa: E402
from splink import DuckDBAPI, Linker, SettingsCreator, block_on  # noqa: E402

from bench.results_file import append, machine  # noqa: E402
from pipeline.adapters.match_index import ReferenceIndex  # noqa: E402
from pipeline.domain.fellegi_sunter import FellegiSunterMatcher, Thresholds  # noqa: E402
from pipeline.domain.matching import group_people  # noqa: E402
from pipeline.domain.model import MatchOutcome  # noqa: E402
from pipeline.service.match_training import event_identities, roll_rows, train, truth_of  # noqa: E402
from pipeline.settings import default_rules  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "matching.md"
SAFEGUARD = ROOT / ".venv" / "bin" / "safeguard"
SPLINK_LINK_PROBABILITY = 0.9
SPLINK_REVIEW_PROBABILITY = 0.5
FIELDS = ("given_name", "family_name", "date_of_birth", "sex", "postcode", "nhs_number", "school_name")


@dataclass
class Tally:
    on_roll: int = 0
    linked: int = 0
    linked_correct: int = 0
    found_with_review: int = 0

    def precision(self) -> float:
        return self.linked_correct / self.linked if self.linked else 1.0

    def recall(self, with_review: bool) -> float:
        found = self.found_with_review if with_review else self.linked_correct
        return found / self.on_roll if self.on_roll else 1.0

    def f1(self, with_review: bool) -> float:
        p, r = self.precision(), self.recall(with_review)
        return 2 * p * r / (p + r) if p + r else 0.0


def _safeguard(*args: str) -> str:
    return subprocess.run([str(SAFEGUARD), "match", *args], check=True, capture_output=True, text=True,
                          cwd=ROOT).stdout


def corruptions(child: dict[str, Any], pupil: dict[str, str]) -> list[str]:
    """Which of the generator's corruptions an event carries, read off against the true pupil's row."""
    found = []
    given, family = child.get("given_name"), child.get("family_name")
    if given == pupil["family_name"] and family == pupil["given_name"]:
        found.append("names transposed")
    else:
        if given is None:
            found.append("no given name")
        elif given != pupil["given_name"]:
            found.append("given name changed (nickname or typo)")
        if family != pupil["family_name"]:
            found.append("family name changed (typo, new or hyphenated)")
    born = child.get("date_of_birth")
    if born is None:
        found.append("no date of birth")
    elif born != pupil["date_of_birth"]:
        found.append("date of birth changed (swap or digit)")
    if child.get("postcode") is None:
        found.append("no postcode")
    elif child.get("postcode") != pupil["postcode"]:
        found.append("other postcode")
    found = found or ["none of the above (names, date of birth, postcode as on the roll)"]
    if given and family and born:
        found.append("complete identity (given name, family name and date of birth present)")
    if not child.get("nhs_number") or child.get("nhs_number") != pupil.get("nhs_number"):
        found.append("no NHS number shared (missing on the event or the roll)")
    return found


def ours_per_event(paths: dict[str, Path], thresholds: Thresholds) -> tuple[dict[str, tuple[bool, bool]], Tally]:
    """event_id -> (linked to the right child, found counting review), with evaluate's calls."""
    names = {row["urn"]: row["name"] for row in csv.DictReader(paths["schools"].open(encoding="utf-8"))}
    roll, names = roll_rows(paths["pupils"].read_text(encoding="utf-8"), names)
    with paths["events"].open(encoding="utf-8") as handle:
        events = event_identities(handle)
    truth = truth_of(paths["truth"].read_text(encoding="utf-8"))
    index = ReferenceIndex()
    index.load(roll, names)
    matcher = FellegiSunterMatcher(train(index, [identity for _, identity in events]), thresholds)
    outcome: dict[str, tuple[bool, bool]] = {}
    tally = Tally()
    for event_id, identity in events:
        expected = truth.get(event_id)
        candidates = index.candidates(identity)
        decision = matcher.decide(identity, candidates, urgent=False, stats=index.stats)
        right = f"upn:{expected}" if expected else None
        linked = decision.outcome is MatchOutcome.LINKED
        tally.linked += linked
        hit = linked and decision.person_key == right
        in_review = (decision.outcome is MatchOutcome.REVIEW and right is not None
                     and right in (set(decision.candidate_keys) or set(group_people(candidates))))
        if expected:
            tally.on_roll += 1
            tally.linked_correct += hit
            tally.found_with_review += hit or in_review
            outcome[event_id] = (hit, hit or in_review)
    return outcome, tally


def splink_tables(paths: dict[str, Path]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    schools = {row["urn"]: row["name"] for row in csv.DictReader(paths["schools"].open(encoding="utf-8"))}

    def clean(value: Any) -> Any:
        return value.strip() if isinstance(value, str) and value.strip() else None

    roll = [{"unique_id": f"p:{row['upn']}", **{name: clean(row.get(name)) for name in FIELDS if name != "school_name"},
             "school_name": clean(schools.get(row["school_urn"]))}
            for row in csv.DictReader(paths["pupils"].open(encoding="utf-8"))]
    events = []
    for line in paths["events"].open(encoding="utf-8"):
        record = json.loads(line)
        child = record["child"]
        events.append({"unique_id": f"e:{record['event_id']}", **{name: clean(child.get(name)) for name in FIELDS}})
    return roll, events


def splink_settings() -> SettingsCreator:
    return SettingsCreator(
        link_type="link_only",
        comparisons=[
            cl.NameComparison("given_name").configure(term_frequency_adjustments=True),
            cl.NameComparison("family_name").configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison("date_of_birth", input_is_string=True),
            cl.ExactMatch("sex"),
            cl.PostcodeComparison("postcode"),
            cl.ExactMatch("nhs_number"),
            cl.ExactMatch("school_name"),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("family_name"), block_on("given_name"), block_on("date_of_birth"), block_on("postcode"),
            block_on("nhs_number"),
        ],
        retain_intermediate_calculation_columns=False,
    )


def splink_run(paths: dict[str, Path], seed: int) -> tuple[list[dict[str, Any]], float]:
    """Scored (event, pupil) pairs at or above the review probability, and the seconds training and predicting took."""
    roll, events = splink_tables(paths)
    start = time.perf_counter()
    db_api = DuckDBAPI()
    linker = Linker([db_api.register(roll, table_name="roll"), db_api.register(events, table_name="events")],
                    splink_settings())
    linker.training.estimate_probability_two_random_records_match(
        [block_on("given_name", "family_name", "date_of_birth"), block_on("nhs_number")], recall=0.7)
    linker.training.estimate_u_using_random_sampling(max_pairs=1e7, seed=seed)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("date_of_birth"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("given_name", "family_name"))
    pairs = linker.inference.predict(threshold_match_probability=SPLINK_REVIEW_PROBABILITY)
    table = pairs.as_pyarrow_table()
    rows = table.select(["unique_id_l", "unique_id_r", "match_probability"]).to_pylist()
    return rows, time.perf_counter() - start


def splink_per_event(pairs: list[dict[str, Any]], truth: dict[str, str | None]
                     ) -> tuple[dict[str, tuple[bool, bool]], Tally]:
    best: dict[str, tuple[float, str]] = {}
    above_review: dict[str, set[str]] = {}
    for pair in pairs:
        ids = (pair["unique_id_l"], pair["unique_id_r"])
        event = next(i for i in ids if i.startswith("e:"))[2:]
        pupil = next(i for i in ids if i.startswith("p:"))[2:]
        probability = float(pair["match_probability"])
        if event not in best or probability > best[event][0]:
            best[event] = (probability, pupil)
        above_review.setdefault(event, set()).add(pupil)
    tally = Tally()
    outcome: dict[str, tuple[bool, bool]] = {}
    for event_id, expected in truth.items():
        probability, pupil = best.get(event_id, (0.0, ""))
        linked = probability >= SPLINK_LINK_PROBABILITY
        tally.linked += linked
        if expected:
            hit = linked and pupil == expected
            found = hit or (not linked and expected in above_review.get(event_id, set()))
            tally.on_roll += 1
            tally.linked_correct += hit
            tally.found_with_review += found
            outcome[event_id] = (hit, found)
    return outcome, tally


def breakdown(label: str, paths: dict[str, Path], truth: dict[str, str | None], ours: dict[str, tuple[bool, bool]],
              theirs: dict[str, tuple[bool, bool]]) -> list[str]:
    pupils = {row["upn"]: row for row in csv.DictReader(paths["pupils"].open(encoding="utf-8"))}
    counts: dict[str, Counter[str]] = {}
    for line in paths["events"].open(encoding="utf-8"):
        record = json.loads(line)
        expected = truth.get(record["event_id"])
        if not expected:
            continue
        for kind in corruptions(record["child"], pupils[expected]):
            tally = counts.setdefault(kind, Counter())
            tally["events"] += 1
            tally["ours_links"] += ours[record["event_id"]][0]
            tally["ours_found"] += ours[record["event_id"]][1]
            tally["splink_links"] += theirs[record["event_id"]][0]
            tally["splink_found"] += theirs[record["event_id"]][1]
    lines = []
    for kind, tally in sorted(counts.items(), key=lambda item: -item[1]["events"]):
        n = tally["events"]
        behind = []
        if tally["ours_found"] < tally["splink_links"]:
            behind.append("OURS (even counting review) BELOW SPLINK'S LINKS")
        elif tally["ours_links"] < tally["splink_links"]:
            behind.append("our automatic links below Splink's links")
        behind_text = f" — {'; '.join(behind)}" if behind else ""
        lines.append(f"{label} {kind} ({n} events): recall ours links {tally['ours_links'] / n:.4f}, ours with review "
                     f"{tally['ours_found'] / n:.4f}; Splink links {tally['splink_links'] / n:.4f}, Splink with "
                     f"0.5-0.9 band {tally['splink_found'] / n:.4f}{behind_text}")
    return lines


def run_seed(seed: int, pupils: int, events: int, thresholds: Thresholds, workdir: Path) -> list[str]:
    out = workdir / f"seed{seed}"
    _safeguard("generate", "--out", str(out), "--seed", str(seed), "--pupils", str(pupils), "--events", str(events))
    paths = {kind: out / name for kind, name in (("schools", "schools.csv"), ("pupils", "pupils.csv"),
                                                 ("events", "events.jsonl"), ("truth", "truth.csv"))}
    start = time.perf_counter()
    command = _safeguard("evaluate", "--roll", str(paths["pupils"]), "--events", str(paths["events"]),
                         "--truth", str(paths["truth"]), "--schools", str(paths["schools"]))
    ours_seconds = time.perf_counter() - start
    figures = dict(re.findall(r"^([a-z1 -]+): ([0-9.]+)", command, flags=re.MULTILINE))
    links_alone = re.search(r"links alone: ([0-9.]+)", command)
    truth = truth_of(paths["truth"].read_text(encoding="utf-8"))
    ours, our_tally = ours_per_event(paths, thresholds)
    if f"{our_tally.recall(True):.4f}" != figures["recall"] or f"{our_tally.precision():.4f}" != figures["precision"]:
        raise SystemExit(f"seed {seed}: the in-process decisions do not reproduce `safeguard match evaluate`")
    pairs, splink_seconds = splink_run(paths, seed)
    theirs, splink_tally = splink_per_event(pairs, truth)
    lines = [
        f"seed {seed}: {pupils:,} pupils, {events:,} events, {our_tally.on_roll:,} about a child on the roll "
        "(recall by corruption below: an event can carry several)",
        f"seed {seed}, ours (`safeguard match evaluate`, {ours_seconds:.0f} s): precision {figures['precision']} "
        f"({our_tally.linked:,} links, {our_tally.linked - our_tally.linked_correct} wrong), recall "
        f"{figures['recall']} counting review hits (F1 {figures['f1']}), automatic links alone: recall "
        f"{links_alone.group(1) if links_alone else '?'}, F1 {our_tally.f1(False):.4f}; review rate "
        f"{figures['review rate']}, no-match rate {figures['no-match rate']}",
        f"seed {seed}, Splink {splink.__version__} (link at match probability >= {SPLINK_LINK_PROBABILITY}, "
        f"{splink_seconds:.0f} s to train and predict): precision {splink_tally.precision():.4f} "
        f"({splink_tally.linked:,} links, {splink_tally.linked - splink_tally.linked_correct} wrong), "
        f"recall {splink_tally.recall(False):.4f}, F1 {splink_tally.f1(False):.4f}; "
        f"counting events whose true pupil scored {SPLINK_REVIEW_PROBABILITY}-{SPLINK_LINK_PROBABILITY} as a "
        f"review hit: recall {splink_tally.recall(True):.4f}",
        *breakdown(f"seed {seed}, recall by corruption:", paths, truth, ours, theirs),
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[11, 12])
    parser.add_argument("--pupils", type=int, default=3800)
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--no-write", action="store_true", help="Print the figures without appending them.")
    args = parser.parse_args()
    logging.getLogger("splink").setLevel(logging.WARNING)
    thresholds = Thresholds.from_mapping(default_rules().get("matching"))
    lines = [f"machine: {machine()}; pinned with taskset to one core",
             f"settings: ours matching.link_threshold {thresholds.link}, matching.review_threshold "
             f"{thresholds.review}; Splink {splink.__version__} (DuckDB backend), link_only roll to events, "
             "comparisons NameComparison(given_name, family_name; term-frequency adjusted), "
             "DateOfBirthComparison(input_is_string), ExactMatch(sex), PostcodeComparison(postcode), "
             "ExactMatch(nhs_number), ExactMatch(school_name); prediction blocking on family_name OR given_name OR "
             "date_of_birth OR postcode OR nhs_number; prior from block_on(given, family, dob) and "
             "block_on(nhs_number) at recall 0.7; u by random sampling (max_pairs 1e7, seed = set seed); m by EM "
             "blocked on date_of_birth, then on given_name+family_name; each event linked to its top pupil at "
             f"match probability >= {SPLINK_LINK_PROBABILITY}"]
    with tempfile.TemporaryDirectory(prefix="bench-splink-") as workdir:
        for seed in args.seeds:
            section = run_seed(seed, args.pupils, args.events, thresholds, Path(workdir))
            print("\n".join(section), flush=True)
            lines += section
    if not args.no_write:
        print(append(RESULTS, "Matching benchmark results", lines))


if __name__ == "__main__":
    main()
