"""Micro-benchmark: the consumer's own cost per event, without the handler's work (claim, processed mark, commit).

A fresh SQLite database (as bench/profile_intake.py makes it); N self-harm attendances go in through
``Intake.submit_many``, and ``IntakeConsumer.run_once`` processes them in its batches of 64 with the handler
replaced by one that only records what a real one records on the event (the match decision and the status), so
what is measured is the batch's claim, the record's decode, the marks set on the event and the commit that
writes them (thread CPU, SQLite synchronous=FULL as shipped, start-up objects frozen out of the garbage
collector as the runtimes do). Rounds are repeated and the minimum and median are
printed: on a shared machine the minimum moves least.

    taskset -c 0 .venv/bin/python bench/bench_event_marks.py [--events 640] [--rounds 5] [--label NAME]

Appends its figures to bench/results/intake.md with ``--label``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.bench_intake import Target  # noqa: E402
from bench.results_file import append, machine  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
KIND = "self-harm-attendance"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=640, help="events per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--label", default="", help="append the figures to bench/results/intake.md under this label")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        target = Target(Path(tmp_name))
        os.environ.update(target.env)
        from consumers.intake_consumer import IntakeConsumer
        from pipeline.bootstrap import build
        from pipeline.runtimes.memory import freeze_start_up_objects
        from pipeline.service import dispatch
        from pipeline.service.intake import Submission
        from pipeline.settings import Settings

        def marks_only(_port: Any, event: Any, _record: dict[str, Any], _ctx: Any, _now: Any) -> None:
            event.match_outcome, event.child_id = "linked", "c-bench"
            event.match_json = json.dumps({"score": 1.0, "reason": "bench"})
            event.status = "processed"

        dispatch.HANDLERS[KIND] = marks_only
        services = build(Settings())
        consumer = IntakeConsumer(services.store, services.ctx, services.clock)
        freeze_start_up_objects()  # as the runtimes do once started
        rng = random.Random(7)
        per_event = []
        for _ in range(args.rounds + 1):  # the first round warms up (imports, statement caches), not counted
            results = services.intake.submit_many([Submission(KIND, json.dumps(target.event(rng)).encode(),
                                                              source="cli") for _ in range(args.events)])
            assert all(r.status_code == 202 for r in results)
            processed = 0
            cpu = time.thread_time()
            while handled := consumer.run_once():
                processed += handled
            per_event.append((time.thread_time() - cpu) * 1000 / processed)
            assert processed == args.events
        services.store.dispose()
    counted = per_event[1:]
    line = (f"consumer cost per event without handler work (claim, decode, marks, commit): min {min(counted):.3f}, "
            f"median {statistics.median(counted):.3f} ms CPU ({args.rounds} rounds of {args.events} events, batches "
            f"of 64; rounds: {', '.join(f'{v:.3f}' for v in counted)})")
    print(line)
    if args.label:
        append(ROOT / "bench" / "results" / "intake.md", "Intake benchmarks", [
            f"bench_event_marks ({args.label}): {line}",
            f"machine: {machine()}; pinned with taskset -c 0; load average {' '.join(map(str, os.getloadavg()))}",
            "settings: SQLite WAL, synchronous=FULL (as shipped), the demo reference data"])


if __name__ == "__main__":
    main()
