"""cProfile of the intake consumer's processing, one event type at a time (where a handler's CPU goes).

A fresh SQLite database with the demo reference data (as bench/profile_intake.py makes it); N events of one type
go in through ``Intake.submit_many`` and ``IntakeConsumer.run_once`` processes them under cProfile; then N of the
next type. Prints each type's CPU per event and its top functions (by own time and by cumulative time), and
writes the raw profiles next to ``--out`` for pstats or snakeviz.

    taskset -c 0 .venv/bin/python bench/cprofile_handlers.py [--events 200] [--top 30] [--out /tmp/handlers]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import event

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.bench_intake import Target  # noqa: E402

KINDS = ("missing-reported", "self-harm-attendance")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200, help="events of each type")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "handlers")
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    parser.add_argument("--statements", type=int, default=0, metavar="N",
                        help="also print the N most frequent SQL statements of each type (count per event)")
    parser.add_argument("--plain", action="store_true",
                        help="no cProfile: thread CPU per event of the processing, then of the relay")
    parser.add_argument("--repeat", type=int, default=1, help="with --plain: rounds of --events each")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        target = Target(Path(tmp_name))
        os.environ.update(target.env)
        from consumers.intake_consumer import IntakeConsumer
        from pipeline.bootstrap import build
        from pipeline.service.intake import Submission
        from pipeline.service.relay import relay
        from pipeline.settings import Settings

        services = build(Settings())
        services.ctx.warm_up(services.store)
        consumer = IntakeConsumer(services.store, services.ctx, services.clock)
        rng = random.Random(7)
        make = {"missing-reported": target.missing_report, "self-harm-attendance": target.event}
        # One event of each type first, outside the profile: first-use costs (imports, the calendar's holidays).
        for kind in args.kinds:
            services.intake.submit_many([Submission(kind, json.dumps(make[kind](rng)).encode(), source="cli")])
        while consumer.run_once():
            pass
        if args.plain:
            for _ in range(args.repeat):
                for kind in args.kinds:
                    _plain_round(services, consumer, relay, kind, make[kind], rng, args.events, Submission)
            services.store.dispose()
            return
        for kind in args.kinds:
            results = services.intake.submit_many([Submission(kind, json.dumps(make[kind](rng)).encode(), source="cli")
                                                   for _ in range(args.events)])
            assert all(r.status_code == 202 for r in results)
            statements: Counter[str] = Counter()

            def count(_conn: object, _cursor: object, statement: str, *_args: object,
                      counted: Counter[str] = statements) -> None:
                counted[" ".join(statement.split())[:160]] += 1

            event.listen(services.store.engine, "before_cursor_execute", count)
            profile = cProfile.Profile(time.thread_time)
            processed = 0
            cpu = time.thread_time()
            profile.enable()
            while handled := consumer.run_once():
                processed += handled
            profile.disable()
            cpu = time.thread_time() - cpu
            event.remove(services.store.engine, "before_cursor_execute", count)
            path = args.out.with_name(f"{args.out.name}-{kind}.prof")
            profile.dump_stats(path)
            print(f"\n=== {kind}: {processed} events, {cpu * 1000 / processed:.2f} ms CPU per event under cProfile "
                  f"(raw profile: {path}); {statements.total() / processed:.1f} SQL statements per event")
            for text, n in statements.most_common(args.statements):
                print(f"{n / processed:8.2f}  {text}")
            for order in ("tottime", "cumulative"):
                text = io.StringIO()
                pstats.Stats(profile, stream=text).sort_stats(order).print_stats(args.top)
                print(text.getvalue().split("\n", 6)[-1])
        services.store.dispose()


def _plain_round(services: Any, consumer: Any, relay: Any, kind: str, make: Any, rng: random.Random, events: int,
                 submission: Any) -> None:
    """One round without the profiler: ``events`` of ``kind`` accepted, then processed (thread CPU of
    ``run_once`` until nothing is left, batch claims and commits included), then relayed (thread CPU of
    ``relay`` until it has nothing left, per event processed)."""
    results = services.intake.submit_many([submission(kind, json.dumps(make(rng)).encode(), source="cli")
                                           for _ in range(events)])
    assert all(r.status_code == 202 for r in results)
    processed = 0
    cpu = time.thread_time()
    while handled := consumer.run_once():
        processed += handled
    cpu = time.thread_time() - cpu
    relay_cpu = time.thread_time()
    while relay(services.store, services.delivery, services.publisher, services.clock()):
        pass
    relay_cpu = time.thread_time() - relay_cpu
    print(f"{kind}: {processed} events, processing {cpu * 1000 / processed:.3f} ms CPU per event, "
          f"relay {relay_cpu * 1000 / processed:.3f} ms CPU per event processed", flush=True)


if __name__ == "__main__":
    main()
