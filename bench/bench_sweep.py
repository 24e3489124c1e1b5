"""Benchmark: the deadline sweep with 1,000,000 open deadlines in the store, 1,000 of them due.

Measures, through the public sweep entry point (``pipeline.service.sweep.sweep``) on SQLite with
durability as shipped (WAL, synchronous=FULL): the time of the due-deadline query alone, the time to find
and fire all due steps (each fired once, notifications + audit + outbox written and committed), and the
process's peak memory. Run pinned to one core:

    taskset -c 0 .venv/bin/python bench/bench_sweep.py [--open 1000000] [--due 1000]

Appends a dated section to bench/results/sweep.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlmodel import func, select  # noqa: E402

from bench.results_file import append, machine  # noqa: E402
from pipeline.adapters import tables as t  # noqa: E402
from pipeline.adapters.repository import Repository  # noqa: E402
from pipeline.adapters.store import Store  # noqa: E402
from pipeline.service.handlers import Context  # noqa: E402
from pipeline.service.sweep import sweep  # noqa: E402
from pipeline.settings import Settings  # noqa: E402

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def seed(store: Store, open_count: int, due_count: int) -> None:
    """Bulk-insert deadlines with raw SQL (seeding speed is not what is measured)."""
    step_future = json.dumps([{"at": (NOW + timedelta(days=3)).isoformat(), "notify": ["SCIES"],
                               "action": "escalation"}])
    step_due = json.dumps([{"at": (NOW - timedelta(minutes=5)).isoformat(), "notify": ["SCIES"],
                            "action": "escalation"}])
    created = (NOW - timedelta(days=1)).replace(tzinfo=None).isoformat(" ")
    future = (NOW + timedelta(days=3)).replace(tzinfo=None).isoformat(" ")
    past = (NOW - timedelta(minutes=5)).replace(tzinfo=None).isoformat(" ")
    with store.engine.begin() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        cursor = raw.cursor()
        cursor.execute("INSERT INTO teamcontact (team, email) VALUES ('SCIES', 'scies@bench.example')")
        batch = []
        for index in range(open_count):
            due = index < due_count
            batch.append((str(uuid.uuid4()), "self_harm_acknowledgement", f"subject-{index}", f"event-{index}",
                          past if due else future, "open", 0, past if due else future,
                          step_due if due else step_future, created))
            if len(batch) == 50_000:
                cursor.executemany(
                    "INSERT INTO deadline (id, kind, subject_id, event_id, due_at, state, escalation_level, "
                    "next_step_at, steps_json, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)", batch)
                batch.clear()
        if batch:
            cursor.executemany(
                "INSERT INTO deadline (id, kind, subject_id, event_id, due_at, state, escalation_level, "
                "next_step_at, steps_json, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)", batch)
    with store.engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--open", type=int, default=1_000_000)
    parser.add_argument("--due", type=int, default=1_000)
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results" / "sweep.md")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{tmp}/bench.db")
        store.migrate()
        started = time.perf_counter()
        seed(store, args.open, args.due)
        seeded = time.perf_counter() - started
        ctx = Context.build(Settings().rules)

        query_times = []
        for _ in range(5):
            with store.read() as session:
                t0 = time.perf_counter()
                rows = Repository(session).due_deadlines(NOW, 1000)
                query_times.append((time.perf_counter() - t0) * 1000)
        assert len(rows) == min(args.due, 1000)

        t0 = time.perf_counter()
        fired = sweep(store, ctx, NOW)
        sweep_ms = (time.perf_counter() - t0) * 1000
        again = sweep(store, ctx, NOW)
        with store.read() as session:
            escalations = session.exec(select(func.count()).select_from(t.Notification)).one()
            still_due = len(Repository(session).due_deadlines(NOW, 10))
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        assert fired == args.due and again == 0 and escalations == args.due and still_due == 0

    query_times.sort()
    affinity = sorted(os.sched_getaffinity(0))
    print(append(args.results, "Deadline sweep benchmark results (bench/bench_sweep.py)", [
        f"machine: {machine()}, pinned to cores {affinity}",
        f"store: SQLite, WAL, synchronous=FULL (as shipped); {args.open:,} open deadlines, {args.due:,} due",
        f"due-deadline query (indexed `state, next_step_at`, limit 1000): median {query_times[2]:.1f} ms, "
        f"best {query_times[0]:.1f} ms, worst {query_times[-1]:.1f} ms (target < 100 ms)",
        f"find and fire all due steps, committed: {sweep_ms:.0f} ms for {fired:,} steps "
        f"({fired / (sweep_ms / 1000):,.0f} steps/s); a second sweep fired {again}",
        f"peak resident memory of the process: {peak_mb:.0f} MiB (includes seeding {args.open:,} rows "
        f"in {seeded:.0f} s)",
    ]))


if __name__ == "__main__":
    main()
