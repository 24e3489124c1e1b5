"""Benchmark: self-harm events through the public intake to notifications stored, durability as shipped.

The process under test (`safeguard run`, SQLite WAL with synchronous=FULL, as shipped) is pinned to core 0
with `taskset`; this load generator pins itself to core 1. Three measurements:

1. HTTP throughput: N events POSTed by concurrent clients; events/s from the first POST to the moment the
   last event's notifications are stored (and intake-only accepted/s).
2. `safeguard produce` throughput: the same through the CLI intake (batched transactions), end to end.
3. Latency at a steady rate (default 50 events/s for 60 s): per event, from the moment the POST was sent
   to the `created_at` of its first notification; p50/p95/p99/max.

    .venv/bin/python bench/bench_intake.py [--events 20000] [--rate 50] [--duration 60] [--quick]

Appends a dated section with figures, settings and machine to bench/results/intake.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.results_file import append, machine  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SAFEGUARD = str(ROOT / ".venv" / "bin" / "safeguard")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
        self.process = subprocess.Popen(["taskset", "-c", "0", SAFEGUARD, "run", "--port", str(self.port)],
                                        env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(600):
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("safeguard run did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=60)

    def processed(self) -> int:
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=30) as conn:
            return int(conn.execute("SELECT count(*) FROM event WHERE status != 'accepted'").fetchone()[0])

    def wait_processed(self, total: int, timeout: float = 1800) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.processed() >= total:
                return time.perf_counter()
            time.sleep(0.05)
        raise RuntimeError("events were not processed in time")

    @staticmethod
    def event_id(rng: random.Random) -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    @staticmethod
    def child(pupil: dict[str, str]) -> dict[str, Any]:
        return {"nhs_number": pupil["nhs_number"] or None, "given_name": pupil["given_name"],
                "family_name": pupil["family_name"], "date_of_birth": pupil["date_of_birth"],
                "sex": pupil["sex"] or "U", "postcode": pupil["postcode"] or None, "school_name": None}

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
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        codes = list(pool.map(lambda body: http.post("/api/events/self-harm-attendance", content=body).status_code,
                              bodies))
    accepted_at = time.perf_counter()
    assert codes.count(202) == events, f"only {codes.count(202)} accepted"
    done = target.wait_processed(before + events)
    http.close()
    return {"intake_per_s": events / (accepted_at - started), "end_to_end_per_s": events / (done - started)}


def produce_throughput(target: Target, events: int) -> dict[str, float]:
    rng = random.Random(2)
    path = target.tmp / "events.jsonl"
    path.write_text("\n".join(json.dumps(target.event(rng)) for _ in range(events)) + "\n")
    before = target.processed()
    started = time.perf_counter()
    subprocess.run(["taskset", "-c", "1", SAFEGUARD, "produce", "self-harm-attendance", str(path)], env=target.env,
                   check=True, capture_output=True)
    accepted_at = time.perf_counter()
    done = target.wait_processed(before + events)
    return {"intake_per_s": events / (accepted_at - started), "end_to_end_per_s": events / (done - started)}


def latency(target: Target, rate: float, duration: float) -> dict[str, float]:
    rng = random.Random(3)
    headers = {"Authorization": f"Bearer {target.token}", "Content-Type": "application/json"}
    sent: dict[str, float] = {}
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
    return {"count": len(samples), "p50_ms": quantiles[49], "p95_ms": quantiles[94], "p99_ms": quantiles[98],
            "max_ms": samples[-1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 500 events, 10 s of latency")
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results" / "intake.md")
    args = parser.parse_args()
    if args.quick:
        args.events, args.duration = 500, 10.0
    os.sched_setaffinity(0, {1})

    with tempfile.TemporaryDirectory() as tmp:
        target = Target(Path(tmp))
        target.start()
        try:
            http = http_throughput(target, args.events, args.clients)
            produce = produce_throughput(target, args.events)
            lat = latency(target, args.rate, args.duration)
        finally:
            target.stop()

    print(append(args.results, "Intake benchmark results (bench/bench_intake.py)", [
        f"machine: {machine()}; `safeguard run` pinned to core 0, load generator to core 1",
        f"settings: SQLite WAL, synchronous=FULL (as shipped), 2,000 demo pupils, HTTP intake group commit (up to "
        f"256 per transaction), consumer batches of 16, relay batches of 100, {args.clients} concurrent HTTP clients",
        f"HTTP, {args.events:,} events: intake {http['intake_per_s']:,.0f} accepted/s; end to end (intake to "
        f"notifications stored) {http['end_to_end_per_s']:,.0f} events/s (target 2,000)",
        f"`safeguard produce`, {args.events:,} events: intake {produce['intake_per_s']:,.0f}/s; end to end "
        f"{produce['end_to_end_per_s']:,.0f} events/s",
        f"latency at {args.rate:g} events/s for {args.duration:g} s ({lat['count']:,.0f} events), POST sent to "
        f"first notification stored: p50 {lat['p50_ms']:.1f} ms, p95 {lat['p95_ms']:.1f} ms, p99 "
        f"{lat['p99_ms']:.1f} ms, max {lat['max_ms']:.1f} ms (target p99 < 50 ms)",
    ]))


if __name__ == "__main__":
    main()
