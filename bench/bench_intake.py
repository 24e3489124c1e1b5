"""Benchmark: self-harm events through the public intake to notifications stored, durability as shipped.

The process under test (`safeguard run`, SQLite WAL with synchronous=FULL, as shipped) is pinned to core 0
with `taskset`; this load generator pins itself to core 1. Four measurements:

1. HTTP throughput: N events POSTed by concurrent clients; events/s from the first POST to the moment the
   last event's notifications are stored (and intake-only accepted/s).
2. `safeguard produce` throughput: the same through the CLI intake (batched transactions), end to end.
3. Latency at a steady rate (default 50 events/s for 60 s): per event, from the moment the POST was sent
   to the `created_at` of its first notification; p50/p95/p99/max.

4. Replay (``--parts replay``): a year of a large region's events, self-harm attendances and missing reports
   half each (default 250,000), through `safeguard produce` into the running `safeguard run`, timed from the
   first line sent until every event is processed.

Beside each figure, CPU milliseconds per event of `safeguard run` (from /proc), and of the producer.

    .venv/bin/python bench/bench_intake.py [--events 20000] [--rate 50] [--duration 60] [--quick]
        [--parts http,produce,latency,replay] [--replay 250000]

Appends a dated section with figures, settings and machine to bench/results/intake.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.processes import free_port, wait_for, wait_healthy  # noqa: E402
from bench.results_file import append, machine  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SAFEGUARD = str(ROOT / ".venv" / "bin" / "safeguard")


class Target:
    """A fresh database with demo reference data, and `safeguard run` pinned to core 0."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.db = tmp / "bench.db"
        self.env = {**os.environ, "SAFEGUARD_DATABASE_URL": f"sqlite:///{self.db}", "SAFEGUARD_LOG_LEVEL": "WARNING"}
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        data = tmp / "data"
        self.run(SAFEGUARD, "demo-data", "--out", str(data), "--pupils", "2000")
        for kind in ("schools", "teams", "pupils", "ehe", "involvements"):
            self.run(SAFEGUARD, "load", kind, str(data / f"{kind}.csv"))
        with (data / "pupils.csv").open() as handle:
            self.pupils = [row for row in csv.DictReader(handle) if not row["on_roll_to"]]
        self.token = self.run(SAFEGUARD, "users", "add", "--role", "producer", "--email",
                              "bench@hospital.example").strip().splitlines()[-1]

    def run(self, *args: str) -> str:
        return subprocess.run(args, env=self.env, capture_output=True, text=True, check=True).stdout

    def start(self) -> None:
        log = self.tmp / "run.log"
        self.process = subprocess.Popen(["taskset", "-c", "0", SAFEGUARD, "run", "--port", str(self.port)],
                                        env=self.env, stdout=log.open("ab"), stderr=subprocess.STDOUT)
        wait_healthy(self.port, self.process, timeout=120, log=log)

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=60)

    def processed(self) -> int:
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=30) as conn:
            return int(conn.execute("SELECT count(*) FROM event WHERE status != 'accepted'").fetchone()[0])

    def wait_processed(self, total: int, timeout: float = 1800) -> float:
        wait_for(lambda: self.processed() >= total, timeout=timeout, interval=0.05, what=f"{total} events processed")
        return time.perf_counter()

    @staticmethod
    def event_id(rng: random.Random) -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    @staticmethod
    def child(pupil: dict[str, str]) -> dict[str, Any]:
        return {"nhs_number": pupil["nhs_number"] or None, "given_name": pupil["given_name"],
                "family_name": pupil["family_name"], "date_of_birth": pupil["date_of_birth"],
                "sex": pupil["sex"] or "U", "postcode": pupil["postcode"] or None, "school_name": None}

    def cpu(self) -> float:
        """CPU seconds (user + system) `safeguard run` has used so far."""
        assert self.process is not None
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def missing_report(self, rng: random.Random) -> dict[str, Any]:
        now = datetime.now(UTC)
        return {"event_id": self.event_id(rng), "episode_id": f"EP-{rng.randrange(10**12)}", "force_code": "NS01",
                "reported_at": now.isoformat(), "last_seen_at": (now - timedelta(hours=2)).isoformat(),
                "child": self.child(rng.choice(self.pupils)), "risk_grade": rng.choice(["LOW", "MEDIUM", "HIGH"]),
                "missing_from": rng.choice(["HOME", "CARE"]), "exploitation_flags": []}

    def event(self, rng: random.Random) -> dict[str, Any]:
        pupil = rng.choice(self.pupils)
        return {
            "event_id": self.event_id(rng),
            "attendance_id": f"ED-{rng.randrange(10**9)}", "hospital_ods_code": "RXX01",
            "arrived_at": datetime.now(UTC).isoformat(),
            "child": self.child(pupil),
            "admitted": False, "risk_summary": "Discharged with a safety plan.",
            "exploitation_screening": "NO_CONCERN", "consent": "GIVEN", "shared_without_consent_reason": None,
            "clinician_contact": "ED safeguarding nurse",
        }


def http_throughput(target: Target, events: int, clients: int) -> dict[str, float]:
    rng = random.Random(1)
    bodies = [json.dumps(target.event(rng)).encode() for _ in range(events)]
    headers = {"Authorization": f"Bearer {target.token}", "Content-Type": "application/json"}
    http = httpx.Client(base_url=f"http://127.0.0.1:{target.port}", headers=headers, timeout=60,
                        limits=httpx.Limits(max_connections=clients))
    before = target.processed()
    cpu = target.cpu()
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        codes = list(pool.map(lambda body: http.post("/api/events/self-harm-attendance", content=body).status_code,
                              bodies))
    accepted_at = time.perf_counter()
    assert codes.count(202) == events, f"only {codes.count(202)} accepted"
    done = target.wait_processed(before + events)
    http.close()
    return {"intake_per_s": events / (accepted_at - started), "end_to_end_per_s": events / (done - started),
            "server_cpu_ms": (target.cpu() - cpu) * 1000 / events}


def produce(target: Target, files: list[tuple[str, Path]], events: int) -> dict[str, float]:
    """`safeguard produce` of each file in turn (pinned to core 1), timed until every event is processed."""
    before = target.processed()
    cpu = target.cpu()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    for event_type, path in files:
        subprocess.run(["taskset", "-c", "1", SAFEGUARD, "produce", event_type, str(path)], env=target.env,
                       check=True, capture_output=True)
    accepted_at = time.perf_counter()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = target.wait_processed(before + events)
    producer_cpu = after.ru_utime - children.ru_utime + after.ru_stime - children.ru_stime
    return {"intake_per_s": events / (accepted_at - started), "end_to_end_per_s": events / (done - started),
            "seconds": done - started, "server_cpu_ms": (target.cpu() - cpu) * 1000 / events,
            "producer_cpu_ms": producer_cpu * 1000 / events}


def produce_throughput(target: Target, events: int) -> dict[str, float]:
    rng = random.Random(2)
    path = target.tmp / "events.jsonl"
    path.write_text("\n".join(json.dumps(target.event(rng)) for _ in range(events)) + "\n")
    return produce(target, [("self-harm-attendance", path)], events)


def replay_files(target: Target, events: int) -> list[tuple[str, Path]]:
    """A replay's input: ``events`` self-harm attendances and missing reports, half each, one file per type."""
    rng = random.Random(4)
    files = []
    for event_type, make in (("self-harm-attendance", target.event), ("missing-reported", target.missing_report)):
        path = target.tmp / f"replay-{event_type}.jsonl"
        path.write_text("\n".join(json.dumps(make(rng)) for _ in range(events // 2)) + "\n")
        files.append((event_type, path))
    return files


def replay(target: Target, events: int) -> dict[str, float]:
    """A replay: ``events`` self-harm attendances and missing reports, half each, through `safeguard produce`."""
    return produce(target, replay_files(target, events), events // 2 * 2)


def latency(target: Target, rate: float, duration: float) -> dict[str, float]:
    rng = random.Random(3)
    headers = {"Authorization": f"Bearer {target.token}", "Content-Type": "application/json"}
    sent: dict[str, float] = {}
    cpu = target.cpu()
    with httpx.Client(base_url=f"http://127.0.0.1:{target.port}", headers=headers, timeout=30) as http:
        start = time.time()
        count = int(rate * duration)
        for index in range(count):
            wait = start + index / rate - time.time()
            if wait > 0:
                time.sleep(wait)
            event = target.event(rng)
            sent[event["event_id"]] = time.time()
            assert http.post("/api/events/self-harm-attendance", content=json.dumps(event)).status_code == 202
    target.wait_processed(target.processed() + 0)
    time.sleep(1)
    server_cpu_ms = (target.cpu() - cpu) * 1000 / len(sent)
    with sqlite3.connect(f"file:{target.db}?mode=ro", uri=True) as conn:
        created = dict(conn.execute("SELECT event_id, min(created_at) FROM notification GROUP BY event_id"))
        processed = dict(conn.execute("SELECT event_id, processed_at FROM event"))
    samples = []
    for event_id, at in sent.items():
        stamp = created.get(event_id) or processed.get(event_id)
        if stamp is not None:
            stored = datetime.fromisoformat(stamp).replace(tzinfo=UTC).timestamp()
            samples.append((stored - at) * 1000)
    samples.sort()
    quantiles = statistics.quantiles(samples, n=100)
    return {"count": len(samples), "server_cpu_ms": server_cpu_ms, "p50_ms": quantiles[49], "p95_ms": quantiles[94],
            "p99_ms": quantiles[98],
            "max_ms": samples[-1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--replay", type=int, default=250_000, help="events in the replay (half self-harm, half "
                        "missing reports)")
    parser.add_argument("--parts", default="http,produce,latency",
                        help="which measurements, comma-separated: http, produce, latency, replay")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 500 events, 10 s of latency")
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results" / "intake.md")
    args = parser.parse_args()
    if args.quick:
        args.events, args.duration, args.replay = 500, 10.0, 1000
    parts = set(args.parts.split(","))
    os.sched_setaffinity(0, {1})

    lines = [f"machine: {machine()}; `safeguard run` pinned to core 0, load generator and `safeguard produce` to "
             f"core 1; CPU ms per event is `safeguard run`'s own CPU (user + system) over the run, divided by the "
             f"events (and, for produce, the producer process's CPU, start-up included, beside it)",
             f"settings: SQLite WAL, synchronous=FULL (as shipped), 2,000 demo pupils, HTTP intake group commit (up "
             f"to 256 per transaction), produce: lines validated in a thread of their own and stored in one "
             f"transaction whenever the write lock is free (up to 2,000 lines), consumer batches of 64 growing to "
             f"256 through a backlog, relay batches of 500, {args.clients} concurrent HTTP clients"]
    with tempfile.TemporaryDirectory() as tmp:
        target = Target(Path(tmp))
        target.start()
        try:
            if "http" in parts:
                http = http_throughput(target, args.events, args.clients)
                lines.append(f"HTTP, {args.events:,} self-harm events: intake {http['intake_per_s']:,.0f} accepted/s; "
                             f"end to end (intake to notifications stored) {http['end_to_end_per_s']:,.0f} events/s "
                             f"(target 2,000); server CPU {http['server_cpu_ms']:.2f} ms per event")
            if "produce" in parts:
                prod = produce_throughput(target, args.events)
                lines.append(f"`safeguard produce`, {args.events:,} self-harm events: intake "
                             f"{prod['intake_per_s']:,.0f}/s; end to end {prod['end_to_end_per_s']:,.0f} events/s "
                             f"(target 5,000); server CPU {prod['server_cpu_ms']:.2f} ms per event, producer CPU "
                             f"{prod['producer_cpu_ms']:.2f} ms per event")
            if "latency" in parts:
                lat = latency(target, args.rate, args.duration)
                lines.append(f"latency at {args.rate:g} events/s for {args.duration:g} s ({lat['count']:,.0f} "
                             f"events), POST sent to first notification stored: p50 {lat['p50_ms']:.1f} ms, p95 "
                             f"{lat['p95_ms']:.1f} ms, p99 {lat['p99_ms']:.1f} ms, max {lat['max_ms']:.1f} ms "
                             f"(target p99 < 20 ms); server CPU {lat['server_cpu_ms']:.2f} ms per event")
            if "replay" in parts:
                rep = replay(target, args.replay)
                lines.append(f"replay through `safeguard produce`, {args.replay:,} events (self-harm attendances "
                             f"and missing reports, half each): all processed in {rep['seconds']:,.0f} s (target "
                             f"250,000 in 120 s); intake {rep['intake_per_s']:,.0f}/s, end to end "
                             f"{rep['end_to_end_per_s']:,.0f} events/s; server CPU {rep['server_cpu_ms']:.2f} ms per "
                             f"event, producer CPU {rep['producer_cpu_ms']:.2f} ms per event")
        finally:
            target.stop()
    load = os.getloadavg()
    lines.append(f"load average at the end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}: the machine is shared by five "
                 "engineers' sessions, so events/s move from run to run; CPU ms per event much less")
    print(append(args.results, "Intake benchmark results (bench/bench_intake.py)", lines))


if __name__ == "__main__":
    main()
