"""Benchmark: the missing pathway's reads of deadlines with a long history of deadlines stored.

The missing pathway asks ``deadlines_of_subjects`` (the episode's deadlines and those of the trigger meeting raised
on it) on every event about an episode already stored: a found report, a regrade. Before migration 0011 no index began
with ``subject_id``, and both backends read every deadline ever stored for it. This stores N deadlines (one per
episode, kinds mixed) in a fresh SQLite database through the migrations, then times R reads of one episode's
deadlines, each in a unit of work of its own (``Store.unit_of_work``, as a handler runs), with the index as shipped
and dropped (what the store was before migration 0011).

Second, a batch's children's pending trigger meetings: every batch of missing reports on SQLite reads them in one
statement (``read_children_ahead``, then the first ``open_trigger_meeting``). With the N deadlines open, a third of
them trigger meetings of distinct children, this times R such reads of 64 children each, in a unit of work of its
own. Run pinned to one core:

    taskset -c 0 .venv/bin/python bench/bench_episode_deadlines.py [--deadlines 10000 100000] [--reads 200]

Appends a dated section to bench/results/intake.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from bench.results_file import append, machine  # noqa: E402
from pipeline.adapters.store import Store  # noqa: E402


@contextmanager
def _deadlines_stored(deadlines: int) -> Iterator[Store]:
    """A fresh SQLite store, migrated, with ``deadlines`` open deadlines, kinds in turn: a still-missing, a trigger
    meeting (of child C-n), a return interview; the subject of each is an episode of its own."""
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{tmp}/deadlines.db")
        store.migrate()
        with store.engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO deadline (id, kind, subject_id, child_id, due_at, state, escalation_level, steps_json, "
                f"created_at) WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < {deadlines}) "
                "SELECT 'd-' || n, CASE n % 3 WHEN 0 THEN 'still_missing' WHEN 1 THEN 'trigger_meeting' "
                "ELSE 'return_interview' END, CASE n % 3 WHEN 1 THEN 'trigger:EP-' ELSE 'EP-' END || n, 'C-' || n, "
                "'2026-12-03 12:00:00.000000', 'open', 0, '[]', '2026-12-03 12:00:00.000000' FROM g"))
        try:
            yield store
        finally:
            store.dispose()


def read_cost(deadlines: int, reads: int, with_index: bool) -> float:
    """CPU milliseconds (thread time) per read of one episode's deadlines, unit of work included."""
    with _deadlines_stored(deadlines) as store:
        if not with_index:
            with store.engine.begin() as connection:
                connection.execute(text("DROP INDEX ix_deadline_subject"))
        step = max(1, deadlines // reads)
        started = time.thread_time()
        for index in range(reads):
            episode = f"EP-{1 + index * step % deadlines}"
            with store.unit_of_work() as port:
                assert len(port.deadlines_of_subjects([episode, f"trigger:{episode}"])) == 1
        return (time.thread_time() - started) * 1000 / reads


def meetings_cost(deadlines: int, reads: int, children: int = 64) -> float:
    """CPU milliseconds (thread time) per read of ``children`` children's pending trigger meetings (a third of them
    with one), unit of work included."""
    with _deadlines_stored(deadlines) as store:
        step = max(1, deadlines // reads)
        started = time.thread_time()
        for index in range(reads):
            first = 1 + index * step % deadlines
            # Children C-n with n % 3 == 1 have a meeting; the others have none.
            wanted = [f"C-{first + offset}" for offset in range(children)]
            with store.unit_of_work() as port:
                port.read_children_ahead(wanted)
                port.open_trigger_meeting(wanted[0])
        return (time.thread_time() - started) * 1000 / reads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deadlines", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--reads", type=int, default=200)
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results" / "intake.md")
    args = parser.parse_args()
    lines = [f"`bench/bench_episode_deadlines.py`; an episode's deadlines (`deadlines_of_subjects`): {args.reads} "
             "reads, each in its own unit of work, CPU (thread time) per read",
             f"machine: {machine()}; SQLite WAL, synchronous=FULL, as shipped"]
    for deadlines in args.deadlines:
        with_index, without = read_cost(deadlines, args.reads, True), read_cost(deadlines, args.reads, False)
        lines.append(f"{deadlines:,} deadlines stored: {with_index:.2f} ms per read with `ix_deadline_subject` "
                     f"(migration 0011), {without:.2f} ms without it")
    lines.append(f"a batch's children's pending trigger meetings (`read_children_ahead` of 64 children, then "
                 f"`open_trigger_meeting`), {args.reads} reads, each in its own unit of work, open deadlines stored "
                 f"a third of them trigger meetings: " + "; ".join(
                     f"{deadlines:,} deadlines, {meetings_cost(deadlines, args.reads):.2f} ms per read"
                     for deadlines in args.deadlines))
    print(append(args.results, "Intake benchmark results", lines))


if __name__ == "__main__":
    main()
