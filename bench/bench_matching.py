"""Benchmark: the matcher on rolls of 100,000 and 1,000,000 children, and its accuracy on the synthetic set.

Measures, through the matcher's public pieces (``ReferenceIndex`` as the runtimes hold it, and
``FellegiSunterMatcher.decide`` with the index's statistics, the calls ``Context.match`` makes after its
version check): the time to build the index, the time to apply a 1,000-row change (500 new pupils, 500
left), p50 and p99 time to match one event (index lookup and decision), and the process's peak resident
memory. Accuracy: precision, recall (reviews holding the right child counted as found), F1, review and
no-match rates on ``pipeline.service.match_synthetic`` sets at the configured thresholds, with the model
estimated without labels. Run pinned to one core:

    taskset -c 1 .venv/bin/python bench/bench_matching.py [--children 100000 1000000] [--events 2000]

The large rolls come from a fast generator here (English names weighted as Faker's en_GB lists weigh
them, households with twins and siblings, postcodes in nine districts); the accuracy sets from the seeded
generator `safeguard match generate` uses. Appends a dated section to bench/results/matching.md.
"""

from __future__ import annotations

import argparse
import gc
import random
import resource
import sys
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from faker.providers.person.en_GB import Provider  # noqa: E402

from bench.results_file import append, machine  # noqa: E402
from pipeline.adapters.match_index import ReferenceIndex, ReferenceRow  # noqa: E402
from pipeline.domain.fellegi_sunter import FellegiSunterMatcher, Thresholds  # noqa: E402
from pipeline.domain.model import Identity  # noqa: E402
from pipeline.service.demo_data import DISTRICTS  # noqa: E402
from pipeline.service.match_synthetic import _Corrupter, synthesise  # noqa: E402
from pipeline.service.match_training import evaluate, event_identities, roll_rows, train  # noqa: E402
from pipeline.settings import default_rules  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "matching.md"


def fast_roll(children: int, seed: int) -> list[ReferenceRow]:
    rng = random.Random(seed)
    families = list(Provider.last_names)
    family_weights = list(Provider.last_names.values())
    boys, girls = list(Provider.first_names_male), list(Provider.first_names_female)
    letters = "ABDEFGHJLNPQRSTUWXYZ"
    rows: list[ReferenceRow] = []
    household = 0
    while len(rows) < children:
        household += 1
        family = rng.choices(families, family_weights)[0]
        postcode = f"{rng.choice(DISTRICTS)}{rng.randrange(10)} {rng.randrange(1, 10)}" \
                   f"{rng.choice(letters)}{rng.choice(letters)}"
        born = date(2008, 9, 1) + timedelta(days=rng.randrange(18 * 365))
        size = 2 if rng.random() < 0.02 else 1 + (rng.random() < 0.15)
        twins = size == 2 and rng.random() < 0.3
        used: set[str] = set()
        for member in range(size):
            sex = rng.choice("MF")
            given = rng.choice(boys if sex == "M" else girls)
            while given in used:
                given = rng.choice(boys if sex == "M" else girls)
            used.add(given)
            when = born if member == 0 or twins else born + timedelta(days=rng.randrange(400, 2500))
            upn = f"U{len(rows):012d}"
            rows.append(ReferenceRow("pupils", upn, Identity(given, family, when, sex, None, postcode), upn=upn,
                                     school_urn=str(100000 + household % 400)))
    return rows


def _as_csv_row(row: ReferenceRow) -> dict[str, str]:
    identity = row.identity
    return {"given_name": identity.given_name or "", "family_name": identity.family_name or "",
            "date_of_birth": identity.date_of_birth.isoformat() if identity.date_of_birth else "",
            "sex": identity.sex or "", "postcode": identity.postcode or ""}


def speed(children: int, events: int, thresholds: Thresholds) -> list[str]:
    rows = fast_roll(children, seed=children)
    gc.collect()
    start, build_cpu = time.perf_counter(), time.process_time()
    index = ReferenceIndex()
    index.load(rows)
    build = time.perf_counter() - start
    build_cpu = time.process_time() - build_cpu
    rng = random.Random(5)
    corrupter = _Corrupter(rng, sorted({r.identity.family_name or "" for r in rows[:5000]}))
    sample = [rng.choice(rows) for _ in range(events)]
    identities = []
    for row in sample:
        child = corrupter.child(_as_csv_row(row), "", "")
        identities.append(Identity(child["given_name"], child["family_name"],
                                   date.fromisoformat(child["date_of_birth"]) if child["date_of_birth"] else None,
                                   child["sex"], None, child["postcode"]))
    train_start = time.perf_counter()
    matcher = FellegiSunterMatcher(train(index, identities[: min(events, 2000)]), thresholds)
    training = time.perf_counter() - train_start
    timings = []
    cpu = []
    sizes = []
    reached = 0  # events whose true record reaches scoring (the blocking recall)
    for row, identity in zip(sample, identities, strict=True):
        t0, c0 = time.perf_counter(), time.process_time()
        candidates = index.candidates(identity)
        matcher.decide(identity, candidates, urgent=False, stats=index.stats)
        timings.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        sizes.append(len(candidates))
        reached += any(c.record_key == row.key for c in candidates)
    timings.sort()
    cpu.sort()
    sizes.sort()
    change = fast_roll(500, seed=children + 1)
    start, change_cpu = time.perf_counter(), time.process_time()
    for i, row in enumerate(change):
        index.add(ReferenceRow("pupils", f"N{i:012d}", row.identity, upn=f"N{i:012d}"))
    for row in rows[:500]:
        index.remove("pupils", row.key)
    index._restat()
    apply_change = time.perf_counter() - start
    change_cpu = time.process_time() - change_cpu
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ms = 1000
    return [
        f"{children:,} children: index build {build:.1f} s ({build_cpu:.1f} s CPU); "
        f"estimating the model on {min(events, 2000):,} events "
        f"{training:.1f} s; match one event p50 {timings[len(timings) // 2] * ms:.2f} ms, "
        f"p99 {timings[int(len(timings) * 0.99)] * ms:.2f} ms, max {timings[-1] * ms:.1f} ms over {events:,} "
        f"events wall clock (CPU time, time.process_time: p50 {cpu[len(cpu) // 2] * ms:.2f} ms, "
        f"p99 {cpu[int(len(cpu) * 0.99)] * ms:.2f} ms); candidates per event p50 {sizes[len(sizes) // 2]}, "
        f"p99 {sizes[int(len(sizes) * 0.99)]}; true record reached scoring for {reached / len(sample):.4f} of "
        f"events; 1,000-row change applied in {apply_change * ms:.0f} ms ({change_cpu * ms:.0f} ms CPU); "
        f"peak resident memory so far {peak_mb:,.0f} MB",
    ]


def accuracy(seed: int, pupils: int, events: int, thresholds: Thresholds) -> str:
    made = synthesise(seed, pupils, events)
    import csv
    import io
    import json

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(made.pupils[0]))
    writer.writeheader()
    writer.writerows(made.pupils)
    rows, names = roll_rows(buffer.getvalue(), {r["urn"]: r["name"] for r in made.schools})
    truth = {r["event_id"]: (r["upn"] or None) for r in made.truth}
    result = evaluate(rows, names, event_identities(json.dumps(e) for e in made.events), truth, thresholds)
    return (f"synthetic set seed {seed} ({pupils:,} pupils, {events:,} events): precision {result.precision:.4f}, "
            f"recall {result.recall:.4f} (links alone {result.recall_links:.4f}), F1 {result.f1:.4f}, "
            f"review rate {result.review / result.events:.4f}, no-match rate {result.no_match / result.events:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--children", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--accuracy-seeds", type=int, nargs="*", default=[11, 12])
    args = parser.parse_args()
    thresholds = Thresholds.from_mapping(default_rules().get("matching"))
    lines = [f"machine: {machine()}; pinned with taskset to one core",
             f"settings: matching.link_threshold {thresholds.link}, matching.review_threshold {thresholds.review}"]
    for seed in args.accuracy_seeds:
        lines.append(accuracy(seed, 3800, 5000, thresholds))
        print(lines[-1], flush=True)
    for children in args.children:
        lines += speed(children, args.events, thresholds)
        print(lines[-1], flush=True)
    print(append(RESULTS, "Matching benchmark results", lines))


if __name__ == "__main__":
    main()
