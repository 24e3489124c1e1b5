"""Benchmark: where a replay through `safeguard produce` spends its time, and how long the two processes wait on
SQLite's write lock.

The replay of bench_intake.py (self-harm attendances and missing reports, half each, through `safeguard produce`
into a running `safeguard run`, pinned to cores 1 and 0 as there), with both processes run through
bench/write_lock_probe.py: per process and thread, the write transactions, the time waiting for the database's
write lock (``BEGIN IMMEDIATE``: SQLite's busy handler sleeping while the other process holds it), the time
holding it, the commits (fsync) and the WAL checkpoints; the process's own write-lock queue; and the producer's
CPU by stage.

    .venv/bin/python bench/replay_waits.py [--replay 5000] [--label before]

Appends a table to bench/results/intake.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.bench_intake import Target, replay_files  # noqa: E402
from bench.processes import wait_healthy  # noqa: E402
from bench.results_file import append, machine  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python")
PROBE = str(ROOT / "bench" / "write_lock_probe.py")


class ProbedTarget(Target):
    def start(self) -> None:
        log = self.tmp / "run.log"
        self.process = subprocess.Popen(["taskset", "-c", "0", PYTHON, PROBE, str(self.tmp / "run.json"), "run",
                                         "--port", str(self.port)], env=self.env, stdout=log.open("ab"),
                                        stderr=subprocess.STDOUT)
        wait_healthy(self.port, self.process, timeout=120, log=log)


def replay(target: ProbedTarget, events: int) -> dict[str, Any]:
    files = replay_files(target, events)
    cpu = target.cpu()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    producers = []
    for index, (event_type, path) in enumerate(files):
        out = target.tmp / f"produce-{index}.json"
        subprocess.run(["taskset", "-c", "1", PYTHON, PROBE, str(out), "produce", event_type, str(path)],
                       env=target.env, check=True, capture_output=True)
        producers.append(json.loads(out.read_text()))
    accepted_at = time.perf_counter()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = target.wait_processed(events // 2 * 2)
    server_cpu = target.cpu() - cpu
    return {"events": events // 2 * 2, "intake_s": accepted_at - started, "seconds": done - started,
            "server_cpu_s": server_cpu, "producers": producers,
            "producer_cpu_s": after.ru_utime - children.ru_utime + after.ru_stime - children.ru_stime}


def lock_rows(who: str, threads: dict[str, dict[str, float]], events: int) -> list[str]:
    rows = []
    for thread, row in sorted(threads.items()):
        transactions = row.get("begin_wait_n", 0)
        checkpoints = row.get("checkpoint_n", 0)
        if not transactions and not checkpoints and row.get("thread_cpu_s", 0) < 0.05:
            continue
        rows.append(
            f"| {who} | {thread} | {transactions:,.0f} | {row.get('begin_wait_s', 0):.2f} "
            f"({row.get('begin_waited_n', 0):,.0f} > 1 ms, max {row.get('begin_wait_max_s', 0) * 1000:,.0f} ms) | "
            f"{row.get('process_lock_wait_s', 0):.2f} | {row.get('hold_s', 0):.2f} | {row.get('commit_s', 0):.2f} | "
            f"{checkpoints:,.0f} in {row.get('checkpoint_s', 0):.2f} | "
            f"{row.get('thread_cpu_s', 0) * 1000 / events:.3f} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replay", type=int, default=5000)
    parser.add_argument("--label", default="")
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results" / "intake.md")
    args = parser.parse_args()
    os.sched_setaffinity(0, {1})
    with tempfile.TemporaryDirectory() as tmp:
        target = ProbedTarget(Path(tmp))
        target.start()
        try:
            result = replay(target, args.replay)
        finally:
            target.stop()
        server = json.loads((Path(tmp) / "run.json").read_text())
    events = result["events"]
    consumer = server["threads"].get("intake-consumer", {})
    busy = (f"the consumer worked {consumer.get('batch_s', 0):.1f} s of the {result['seconds']:.1f} s in "
            f"{consumer.get('batch_n', 0):,.0f} batches (largest {consumer.get('events_max_s', 0):,.0f} events); "
            f"the rest it waited for events")
    stages: dict[str, float] = {}
    for producer in result["producers"]:
        for stage, seconds in producer["stages"].items():
            stages[stage] = stages.get(stage, 0.0) + seconds
    load = os.getloadavg()
    lines = [
        f"write-lock waits and the producer's CPU by stage{f' ({args.label})' if args.label else ''}: "
        f"`bench/replay_waits.py --replay {args.replay}`, the replay of bench_intake.py with both processes run "
        f"through bench/write_lock_probe.py",
        f"machine: {machine()}; `safeguard run` on core 0, `safeguard produce` on core 1; load average "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the end (shared machine: seconds move, CPU per event less)",
        f"{events:,} events: intake {events / result['intake_s']:,.0f}/s, all processed in {result['seconds']:.1f} s "
        f"({events / result['seconds']:,.0f} events/s end to end); server CPU "
        f"{result['server_cpu_s'] * 1000 / events:.2f} ms per event, producer CPU (two processes, start-up "
        f"included) {result['producer_cpu_s'] * 1000 / events:.2f} ms per event", busy,
    ]
    table = ["", "| process | thread | write transactions | waiting for SQLite's write lock, s | waiting for the "
             "process's own lock, s | holding the write lock, s | COMMIT (fsync), s | WAL checkpoints, s | "
             "thread CPU, ms per event |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    table += lock_rows("safeguard run", server["threads"], events)
    for index, producer in enumerate(result["producers"]):
        table += lock_rows(f"safeguard produce #{index + 1}", producer["threads"], events)
    table += ["", "| `safeguard produce` stage (both processes) | CPU s | CPU ms per event |", "|---|---:|---:|"]
    for stage, seconds in sorted(stages.items(), key=lambda item: -item[1]):
        table.append(f"| {stage} | {seconds:.2f} | {seconds * 1000 / events:.3f} |")
    section = append(args.results, "Intake benchmark results (bench/bench_intake.py)", lines)
    with args.results.open("a", encoding="utf-8") as handle:
        handle.write("\n".join(table) + "\n")
    print(section + "\n".join(table))


if __name__ == "__main__":
    main()
