"""Dump the matcher's decisions on a seeded roll and event set, one JSON line each, to compare two versions.

Checks that a change to the index or the scorer leaves every decision byte-identical (outcome, person,
probability, reason, breakdown and candidate keys): run it on both versions with the same PYTHONHASHSEED
(equal-weight candidates are listed in the order the index returns them) and compare the files:

    PYTHONHASHSEED=0 taskset -c 0 .venv/bin/python bench/match_decisions_dump.py --children 100000 \
        --events 4000 --out /tmp/after.jsonl
    cmp /tmp/before.jsonl /tmp/after.jsonl

Uses the benchmark's fast roll generator and corrupter (``bench/bench_matching.py``), the index and the
matcher through the same calls ``Context.match`` makes.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from dataclasses import replace
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_matching import _as_csv_row, fast_roll  # noqa: E402
from pipeline.adapters.match_index import ReferenceIndex, ReferenceRow  # noqa: E402
from pipeline.domain.fellegi_sunter import FellegiSunterMatcher, Parameters, Thresholds  # noqa: E402
from pipeline.domain.model import Identity  # noqa: E402
from pipeline.service.demo_data import make_nhs_number  # noqa: E402
from pipeline.service.handlers import Context  # noqa: E402
from pipeline.service.match_synthetic import _Corrupter  # noqa: E402
from pipeline.service.match_training import train  # noqa: E402
from pipeline.settings import Settings  # noqa: E402

SCHOOL_WORDS = ("Oakfield", "St Mary's", "Riverside", "Hillcrest", "Greenway", "Northgate", "Castle", "Meadow")


def _mixed(rows: list[ReferenceRow], rng: random.Random) -> list[ReferenceRow]:
    """The fast roll with what a real one also has: NHS numbers on 40% of pupils (now and then one shared by
    two records), and home-education and involvement records about some of the same children, with and
    without a UPN, so grouping people across sources is exercised too."""
    mixed: list[ReferenceRow] = []
    for row in rows:
        draw = rng.random()
        if draw < 0.4:
            row = replace(row, identity=replace(row.identity, nhs_number=make_nhs_number(rng)))
        elif draw < 0.401 and mixed and mixed[-1].identity.nhs_number:
            row = replace(row, identity=replace(row.identity, nhs_number=mixed[-1].identity.nhs_number))
        mixed.append(row)
    for i, row in enumerate(rng.sample(mixed, len(mixed) // 50)):
        identity = replace(row.identity, given_name=row.identity.given_name if rng.random() < 0.8 else "Sam")
        if i % 2:
            mixed.append(ReferenceRow("ehe", f"E{i}", identity))
        else:
            mixed.append(ReferenceRow("involvements", f"I{i}", identity, upn=row.upn if i % 4 else None))
    return mixed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--children", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=4000)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--through-context", action="store_true",
                        help="decide through the handlers' Context (its kept decisions), each event twice in a row "
                             "and every event again at the end, writing the last decision: the file must not change")
    args = parser.parse_args()
    rng = random.Random(9)
    rows = _mixed(fast_roll(args.children, seed=args.children), rng)
    index = ReferenceIndex()
    index.load(rows, {str(100000 + i): f"{rng.choice(SCHOOL_WORDS)} Primary School" for i in range(400)})
    corrupter = _Corrupter(rng, sorted({r.identity.family_name or "" for r in rows[:5000]}))
    identities = []
    for _ in range(args.events):
        row = rng.choice(rows)
        child = corrupter.child(_as_csv_row(row), row.identity.nhs_number or make_nhs_number(rng),
                                index.schools.get(row.school_urn or "", "") if rng.random() < 0.5 else "")
        identities.append(Identity(child["given_name"], child["family_name"],
                                   date.fromisoformat(child["date_of_birth"]) if child["date_of_birth"] else None,
                                   child["sex"], child["nhs_number"], child["postcode"], child["school_name"]))
    parameters = train(index, identities[:2000])
    # the parameters as stored and reloaded: the same floats in every version
    matcher = FellegiSunterMatcher(Parameters.from_json(parameters.to_json()), Thresholds())
    ctx = Context.build(Settings().rules)
    ctx.matcher, ctx.index = matcher, index
    if args.through_context:
        for identity in identities:
            ctx._decide(identity, False)
    with args.out.open("w") as out:
        for identity in identities:
            if args.through_context:
                decision = ctx._decide(identity, False)[0]
            else:
                decision = matcher.decide(identity, index.candidates(identity), urgent=False, stats=index.stats)
            out.write(json.dumps({"outcome": decision.outcome.value, "person": decision.person_key,
                                  "score": decision.score, "reason": decision.reason,
                                  "breakdown": decision.breakdown, "keys": list(decision.candidate_keys)},
                                 sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
