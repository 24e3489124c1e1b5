"""Profile: a Kafka worker's CPU per event on PostgreSQL, by stage and by SQL statement.

What `safeguard worker` does with each batch of records, driven in this process (pinned to core 0) without
faust around it, so the CPU of each stage is its own: the records are Avro-encoded as a producer sends them;
each batch (``--batch``, the worker's ``runtime.kafka_batch_max``) is decoded by the faust codec the agents use
and handed to ``consumers.kafka_records.handle_batch`` exactly as the agent hands it; then the relay
(``relay_pass``, as the worker's timer runs it) publishes the outbox to the real broker and works the
deliveries. PostgreSQL and Kafka are started with scripts/services/services.py ($SAFEGUARD_SERVICES_DIR) and the
reference data is the demo data `bench/bench_kafka.py` loads, in a fresh database.

Stages (thread CPU, exclusive: a stage nested in another is charged to the inner one, so the rows add up):
decode (the faust codec), check (the rules' checks of a record), claim (the event rows: look-up, new row,
content hash), match, child (the child id and the child's facts: their reads), route (the rest of the handler:
rules, recipients, notifications and deadlines built), write (the unit of work's buffered inserts and updates),
commit (BEGIN/COMMIT, connection check-out and the rest of the transaction around the batch), relay.

SQL: every statement the batch sends (SQLAlchemy's and the driver-cursor ones, through the engine's
``before_cursor_execute``), per event, and the round trips to PostgreSQL: the times the client waited for the
server (psycopg ``Connection.wait`` outside pipeline mode, and a pipeline's sync or fetch), BEGIN, COMMIT and
the pool's pre-ping included.

    SAFEGUARD_SERVICES_DIR=/tmp/svc-mine taskset -c 0 .venv/bin/python bench/profile_worker.py \
        [--events 2000] [--batch 500] [--kinds self-harm-attendance missing-reported] [--statements 25] \
        [--cprofile /tmp/worker.prof] [--label before] [--append]

With ``--append``, adds a table to bench/results/kafka.md.
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import io
import os
import pstats
import random
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from bench.bench_intake import Target  # noqa: E402
from bench.bench_kafka import SAFEGUARD, services_env  # noqa: E402
from bench.profile_intake import Stages  # noqa: E402
from bench.results_file import append, machine  # noqa: E402

KINDS = ("self-harm-attendance", "missing-reported")


class RoundTrips:
    """Counts the client's waits for PostgreSQL: psycopg's ``Connection.wait`` outside pipeline mode, and inside
    it only a pipeline's sync or a fetch (the statements queued in a pipeline go in one round trip)."""

    PIPELINE_WAITS = ("_exit_gen", "_sync_gen", "_fetch_gen")

    def __init__(self) -> None:
        self.count = 0
        original = psycopg.Connection.wait
        counter = self

        def wait(connection: Any, gen: Any, *args: Any, **kwargs: Any) -> Any:
            if connection._pipeline is None or getattr(gen, "__name__", "") in counter.PIPELINE_WAITS:
                counter.count += 1
            return original(connection, gen, *args, **kwargs)

        psycopg.Connection.wait = wait  # type: ignore[method-assign]

    def take(self) -> int:
        taken, self.count = self.count, 0
        return taken


_VALUES = re.compile(r"VALUES \(.*\)(, \(.*\))*", re.S)
_IN_LIST = re.compile(r"IN \((%\(\w+\)s|%s)(, (%\(\w+\)s|%s))*\)")
_SELECTED = re.compile(r"^SELECT (?!\(SELECT).*? FROM ")


def statement_shape(sql: str) -> str:
    """A statement's text, its multi-row VALUES, expanded IN lists and a SELECT's column list folded, shortened."""
    text = " ".join(sql.split())
    text = _SELECTED.sub(lambda found: f"SELECT <{found.group(0)[7:].split('.', 1)[0]} columns> FROM ", text, count=1)
    text = _VALUES.sub("VALUES (...)", text)
    text = _IN_LIST.sub("IN (...)", text)
    return text[:150]


def instrument(stages: Stages) -> None:
    """Timing wrappers around the functions each stage is made of (this process only)."""
    from sqlalchemy.orm import Session

    import consumers.kafka_records as records
    from pipeline.adapters.faust_codec import SingleObjectAvro
    from pipeline.adapters.repository import Repository
    from pipeline.service.handlers import Context

    stages.wrap(SingleObjectAvro, "_loads", "decode")
    stages.wrap(records, "rule_errors", "check")
    stages.wrap(records, "_claim", "claim")
    stages.wrap(Repository, "events_by_id", "claim")
    stages.wrap(Context, "match", "match")
    for name in ("child_id", "child_facts", "facts_for_child"):
        stages.wrap(Repository, name, "child")
    stages.wrap(Repository, "_write_rows", "write")
    stages.wrap(Session, "flush", "write")
    stages.wrap(Session, "commit", "commit")
    stages.wrap(Session, "close", "commit")
    # The handler's own work is "route"; handle_batch's own (batch set-up, session, BEGIN) is "commit".
    dispatch_process = records.process

    def routed(*args: Any, **kwargs: Any) -> None:
        with stages.stage("route"):
            dispatch_process(*args, **kwargs)

    records.process = routed  # type: ignore[assignment]


@contextmanager
def pinned_worker_database() -> Iterator[tuple[dict[str, str], dict[str, str], list[dict[str, str]]]]:
    """This process pinned to core 0 (as bench_kafka pins the worker), the broker and PostgreSQL started, and a
    fresh database with the demo reference data made and set in this process's environment, for as long as the
    block runs: the services' settings, the database's environment and its pupils."""
    os.sched_setaffinity(0, {0})
    services = services_env()
    with tempfile.TemporaryDirectory() as tmp_name:
        env, pupils = fresh_database(services, Path(tmp_name))
        os.environ.update(env)
        yield services, env, pupils


def fresh_database(services: dict[str, str], tmp: Path) -> tuple[dict[str, str], list[dict[str, str]]]:
    """A new PostgreSQL database with the demo reference data bench_kafka.py loads; its environment and pupils."""
    admin = services["SAFEGUARD_POSTGRES_ADMIN_URL"].replace("+psycopg", "")
    name = f"profile_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" OWNER safeguard')
    url = services["SAFEGUARD_DATABASE_URL"].rsplit("/", 1)[0] + "/" + name
    env = {"SAFEGUARD_DATABASE_URL": url, "SAFEGUARD_KAFKA_BOOTSTRAP": services["SAFEGUARD_KAFKA_BOOTSTRAP"],
           "SAFEGUARD_KAFKA_TOPIC_PREFIX": f"{name}.", "SAFEGUARD_KAFKA_GROUP": name,
           "SAFEGUARD_VAR_DIR": str(tmp / "var"), "SAFEGUARD_LOG_LEVEL": "WARNING"}
    data = tmp / "data"
    full = {**os.environ, **env}
    subprocess.run([SAFEGUARD, "demo-data", "--out", str(data), "--pupils", "2000"], env=full, check=True,
                   capture_output=True)
    for kind in ("schools", "teams", "pupils", "ehe", "involvements"):
        subprocess.run([SAFEGUARD, "load", kind, str(data / f"{kind}.csv")], env=full, check=True,
                       capture_output=True)
    with (data / "pupils.csv").open() as handle:
        pupils = [row for row in csv.DictReader(handle) if not row["on_roll_to"]]
    return env, pupils


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=2000, help="events of each kind")
    parser.add_argument("--batch", type=int, default=500, help="records per batch (runtime.kafka_batch_max)")
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    parser.add_argument("--statements", type=int, default=25, metavar="N",
                        help="print the N most frequent statements (count per event)")
    parser.add_argument("--cprofile", type=Path, help="also write a cProfile of the processing here")
    parser.add_argument("--top", type=int, default=40, help="with --cprofile: functions printed")
    parser.add_argument("--plain", action="store_true",
                        help="no timing wrappers: only the totals (the stages' wrappers cost a little themselves)")
    parser.add_argument("--label", default="")
    parser.add_argument("--append", action="store_true", help="append the table to --results")
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results" / "kafka.md")
    args = parser.parse_args()
    with pinned_worker_database() as (services, env, pupils):
        from sqlalchemy import event as sa_event

        from consumers.kafka_records import Delivery, handle_batch
        from pipeline import codec
        from pipeline.adapters.faust_codec import codec_name, register_codecs
        from pipeline.adapters.kafka import ensure_topics
        from pipeline.bootstrap import build
        from pipeline.runtimes.memory import freeze_start_up_objects
        from pipeline.service.relay import relay_pass
        from pipeline.settings import Settings

        ensure_topics(env["SAFEGUARD_KAFKA_BOOTSTRAP"], 4, env["SAFEGUARD_KAFKA_TOPIC_PREFIX"])
        services_ = build(Settings())
        services_.ctx.warm_up(services_.store)
        register_codecs()
        from faust.serializers import codecs as faust_codecs

        maker = Target.__new__(Target)  # only its event makers: the pupils, no SQLite database
        maker.pupils = pupils
        make = {"self-harm-attendance": maker.event, "missing-reported": maker.missing_report}
        rng = random.Random(7)

        def encoded(kind: str, count: int) -> list[bytes]:
            return [codec.encode(kind, codec.from_json(kind, make[kind](rng))) for _ in range(count)]

        def handle(kind: str, values: list[bytes]) -> None:
            loads = faust_codecs.get_codec(codec_name(kind)).loads
            for start in range(0, len(values), args.batch):
                chunk = values[start:start + args.batch]
                deliveries = [Delivery(kind, kind, 0, start + i, value, loads(value))
                              for i, value in enumerate(chunk)]
                outcomes = handle_batch(services_, deliveries)
                assert outcomes.count("processed") == len(chunk), Counter(outcomes)

        def relay_all() -> None:
            while relay_pass(services_.store, services_.delivery, services_.publisher, services_.clock())[1]:
                pass

        # First-use costs outside the figures (imports, compiled statements, the calendar, the producer).
        for kind in args.kinds:
            handle(kind, encoded(kind, 20))
        relay_all()
        freeze_start_up_objects()  # as the worker does once started: the match index out of the collector's reach

        stages = Stages()
        if not args.plain:
            instrument(stages)
        trips = RoundTrips()
        statements: Counter[str] = Counter()

        def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            statements[statement_shape(statement)] += 1

        engine = services_.store.engine
        lines: list[str] = []
        table = ["| kind | stage | CPU ms per event |", "|---|---|---:|"]

        def measured(stage: str, work: Callable[[], object]) -> tuple[float, cProfile.Profile | None]:
            """``work``'s thread CPU in seconds (its statements counted, its time split by ``stages`` under
            ``stage``) and its cProfile if one is asked for."""
            statements.clear()
            sa_event.listen(engine, "before_cursor_execute", count)
            profile = cProfile.Profile(time.thread_time) if args.cprofile else None
            cpu = time.thread_time()
            if profile:
                profile.enable()
            with stages.stage(stage):
                work()
            if profile:
                profile.disable()
            cpu = time.thread_time() - cpu
            sa_event.remove(engine, "before_cursor_execute", count)
            return cpu, profile

        for kind in args.kinds:
            values = encoded(kind, args.events)
            stages.take()
            trips.take()
            cpu, profile = measured("commit", lambda: handle(kind, values))  # noqa: B023 - called at once
            split, batch_trips, batch_statements = stages.take(), trips.take(), statements.copy()
            relay_cpu, relay_profile = measured("relay", relay_all)
            stages.take()  # the relay's split by stage is not reported
            relay_trips = trips.take()
            n = args.events
            for name, what in (("decode", "decode (faust codec)"), ("check", "check (the rules' checks)"),
                               ("claim", "claim (event look-up, new event row, content hash)"),
                               ("match", "match"), ("child", "child (child id, the child's facts: reads)"),
                               ("route", "route (the handler's rules, notifications, deadlines, audit)"),
                               ("write", "write (buffered inserts and updates)"),
                               ("commit", "commit (session, BEGIN, COMMIT, the batch around the records)")):
                table.append(f"| {kind} | {what} | {split.get(name, 0) * 1000 / n:.3f} |")
            table.append(f"| {kind} | **processing total** ({batch_statements.total() / n:.2f} statements, "
                         f"{batch_trips / n:.2f} round trips per event; batches of {args.batch}) | "
                         f"**{cpu * 1000 / n:.3f}** |")
            table.append(f"| {kind} | relay (outbox to Kafka, deliveries; {statements.total() / n:.2f} statements, "
                         f"{relay_trips / n:.2f} round trips per event) | {relay_cpu * 1000 / n:.3f} |")
            if not args.plain:
                assert abs(sum(split.values()) - cpu) < 0.05 * cpu + 0.01, (split, cpu)
            lines.append(f"\n{kind}: SQL statements per event while processing (batches of {args.batch})")
            lines += [f"{c / n:8.3f}  {text}" for text, c in batch_statements.most_common(args.statements)]
            for phase, profiled in (("processing", profile), ("relay", relay_profile)):
                if profiled is None or args.cprofile is None:
                    continue
                path = args.cprofile.with_name(f"{args.cprofile.stem}-{kind}-{phase}{args.cprofile.suffix or '.prof'}")
                path.parent.mkdir(parents=True, exist_ok=True)
                profiled.dump_stats(path)
                for order in ("tottime", "cumulative"):
                    text = io.StringIO()
                    pstats.Stats(profiled, stream=text).sort_stats(order).print_stats(args.top)
                    lines.append(f"\n{kind}, {phase}: cProfile by {order} (raw: {path}; CPU under the profiler "
                                 "is higher)")
                    lines.append(text.getvalue().split("\n", 6)[-1])
        services_.store.dispose()
        services_.publisher.close()  # type: ignore[attr-defined]
        with psycopg.connect(services["SAFEGUARD_POSTGRES_ADMIN_URL"].replace("+psycopg", ""),
                             autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{env["SAFEGUARD_KAFKA_GROUP"]}" WITH (FORCE)')
    print("\n".join(table))
    print("\n".join(lines))
    if args.append:
        load = os.getloadavg()
        label = f" ({args.label})" if args.label else ""
        section = append(args.results, "Kafka runtime benchmark results (bench/bench_kafka.py)", [
            f"worker profile{label}: CPU per event by stage, `bench/profile_worker.py --events {args.events} "
            f"--batch {args.batch}` (the worker's batch function and relay driven in one process, no faust)",
            f"machine: {machine()}; this process pinned to core 0, PostgreSQL and Kafka float; load average "
            f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the end",
            "settings: PostgreSQL 15 with fsync and synchronous_commit on, Kafka 3.9.2 acks=all, 2,000 demo pupils; "
            "thread CPU, exclusive by stage, with timing wrappers in place",
        ])
        with args.results.open("a", encoding="utf-8") as handle:
            handle.write("\n" + "\n".join(table) + "\n")
        print(section)


if __name__ == "__main__":
    main()
