"""Experiment: how long a one-record batch takes when the worker's outbox relay runs beside it, with the relay
publishing as it did (one burst) and giving way to the batch before each record (``GivingWayPublisher``).

In this process (pinned to core 0, as a benchmarked worker is), the objects `safeguard worker` uses: the
``BatchesFirst`` gate, ``handle_batch`` run through ``gate.batch`` in a thread, and a relay pass in another thread
(``relay_pass`` over the outbox of ``--backlog`` events, about two rows each, published to the real broker with
acks=all). Each trial first processes the backlog (not timed), then starts a relay pass and, a few milliseconds
later, a batch of one self-harm attendance, and records the batch's wall and thread CPU time; the three cases
(no relay, relay as before, relay giving way) take turns, so load from elsewhere on the machine falls on all
three alike. PostgreSQL and Kafka are started with scripts/services/services.py ($SAFEGUARD_SERVICES_DIR), in a
fresh database with the demo reference data.

    SAFEGUARD_SERVICES_DIR=/tmp/svc-mine taskset -c 0 .venv/bin/python bench/relay_overlap.py \
        [--trials 30] [--backlog 50] [--append]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_intake import Target  # noqa: E402
from bench.bench_kafka import load_average  # noqa: E402
from bench.profile_worker import pinned_worker_database  # noqa: E402
from bench.results_file import append, machine  # noqa: E402

CASES = ("no relay", "relay as before (one burst)", "relay giving way")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=30, help="trials of each case")
    parser.add_argument("--backlog", type=int, default=50, help="events whose outbox the relay pass publishes")
    parser.add_argument("--append", action="store_true", help="append the figures to --results")
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results" / "kafka.md")
    args = parser.parse_args()
    with pinned_worker_database() as (_, env, pupils):
        from faust.serializers import codecs as faust_codecs

        from consumers.kafka_records import Delivery, handle_batch
        from pipeline import codec
        from pipeline.adapters.faust_codec import codec_name, register_codecs
        from pipeline.adapters.kafka import ensure_topics
        from pipeline.bootstrap import build
        from pipeline.runtimes.faust_app import BatchesFirst, GivingWayPublisher
        from pipeline.service.relay import relay_pass
        from pipeline.settings import Settings

        kind = "self-harm-attendance"
        ensure_topics(env["SAFEGUARD_KAFKA_BOOTSTRAP"], 4, env["SAFEGUARD_KAFKA_TOPIC_PREFIX"])
        worker = build(Settings())
        worker.ctx.warm_up(worker.store)
        register_codecs()
        loads = faust_codecs.get_codec(codec_name(kind)).loads
        maker = Target.__new__(Target)
        maker.pupils = pupils
        rng = random.Random(11)
        offsets = iter(range(10**9))

        def deliveries(count: int) -> list[Delivery]:
            values = [codec.encode(kind, codec.from_json(kind, maker.event(rng))) for _ in range(count)]
            return [Delivery(kind, kind, 0, next(offsets), value, loads(value)) for value in values]

        def relay_all() -> None:
            while relay_pass(worker.store, worker.delivery, worker.publisher, worker.clock())[1]:
                pass

        gate = BatchesFirst(0.25)
        giving_way = GivingWayPublisher(worker.publisher, gate)

        def relay_once(publisher: Any) -> float:
            started = time.perf_counter()
            if isinstance(publisher, GivingWayPublisher):
                publisher.new_pass()
            relay_pass(worker.store, worker.delivery, publisher, worker.clock())
            return time.perf_counter() - started

        async def trial(case: str) -> tuple[float, float, float]:
            handle_batch(worker, deliveries(args.backlog))  # the outbox the relay will publish: not timed
            one = deliveries(1)
            relay = None
            if case != CASES[0]:
                publisher = giving_way if case == CASES[2] else worker.publisher
                relay = asyncio.create_task(asyncio.to_thread(relay_once, publisher))
                await asyncio.sleep(rng.uniform(0.002, 0.010))  # the record arrives while the pass is under way

            def timed() -> tuple[float, float]:
                cpu = time.thread_time()
                outcome = handle_batch(worker, one)
                assert outcome == ["processed"], outcome
                return time.thread_time() - cpu, time.perf_counter()

            started = time.perf_counter()
            cpu, ended = await gate.batch(timed)
            relay_seconds = await relay if relay is not None else 0.0
            relay_all()  # whatever is left, before the next trial
            return ended - started, cpu, relay_seconds

        async def run() -> dict[str, list[tuple[float, float, float]]]:
            for case in CASES:  # first-use costs outside the figures
                await trial(case)
            results: dict[str, list[tuple[float, float, float]]] = {case: [] for case in CASES}
            for _ in range(args.trials):
                for case in CASES:
                    results[case].append(await trial(case))
            return results

        results = asyncio.run(run())
        worker.store.dispose()
        worker.publisher.close()  # type: ignore[attr-defined]
    lines = [
        f"relay beside a one-record batch (`bench/relay_overlap.py --trials {args.trials} --backlog "
        f"{args.backlog}`): the batch's wall time with a relay pass over the outbox of {args.backlog} events "
        "started 2 to 10 ms before it, the three cases taking turns",
        f"machine: {machine()}; this process pinned to core 0, PostgreSQL and Kafka float; load average at the end "
        f"{load_average()}",
    ]
    for case in CASES:
        walls = sorted(wall * 1000 for wall, _, _ in results[case])
        cpus = [cpu * 1000 for _, cpu, _ in results[case]]
        relays = [relay * 1000 for _, _, relay in results[case]]
        line = (f"{case}: batch wall median {statistics.median(walls):.1f} ms, 90th percentile "
                f"{walls[int(len(walls) * 0.9) - 1]:.1f} ms, max {walls[-1]:.1f} ms; batch thread CPU median "
                f"{statistics.median(cpus):.2f} ms")
        if case != CASES[0]:
            line += f"; the relay pass's wall median {statistics.median(relays):.1f} ms"
        lines.append(line)
    print("\n".join(lines))
    if args.append:
        print(append(args.results, "Kafka runtime benchmark results (bench/bench_kafka.py)", lines))


if __name__ == "__main__":
    main()
