"""Benchmark: the Kafka runtime end to end, durability as shipped (PostgreSQL fsync and synchronous_commit
on, acks=all): events/s with one and with two `safeguard worker` processes, and p50/p99 latency from
produce to notification stored at a steady 50 events/s; beside each figure the CPU milliseconds per event
of the worker process(es) (user + system, from /proc/PID/stat) and the machine's load average.

Starts a real broker and PostgreSQL with scripts/services/services.py (own state directory), loads demo
reference data into a fresh database, and produces Avro records with kafka-python. The broker, the
database and the workers share this machine's two cores; the figures say so.

    SAFEGUARD_SERVICES_DIR=/tmp/svc-mine taskset -c 0 .venv/bin/python bench/bench_kafka.py \
        [--events 5000] [--rate 50] [--duration 30]

The services' state directory is $SAFEGUARD_SERVICES_DIR (default /tmp/safeguard-bench-services), so two
people benchmarking at once do not share a broker.

Appends a dated section to bench/results/kafka.md.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
import yaml  # noqa: E402
from kafka import KafkaProducer  # noqa: E402

from bench.results_file import append, machine  # noqa: E402
from pipeline import codec  # noqa: E402
from pipeline.adapters.kafka import ensure_topics  # noqa: E402

SAFEGUARD = str(ROOT / ".venv" / "bin" / "safeguard")
SERVICES = ROOT / "scripts" / "services" / "services.py"
RUNTIME = yaml.safe_load((ROOT / "config" / "defaults.yaml").read_text())["runtime"]
WORKER_SETTINGS = (f"worker batches of the records waiting, up to {RUNTIME['kafka_batch_max']}"
                   + (f", within {RUNTIME['kafka_batch_within_seconds'] * 1000:g} ms"
                      if "kafka_batch_within_seconds" in RUNTIME else ", no timer") + " (config/defaults.yaml)")


def services_env() -> dict[str, str]:
    env = {**os.environ, "SAFEGUARD_SERVICES_DIR": os.environ.get("SAFEGUARD_SERVICES_DIR")
           or "/tmp/safeguard-bench-services"}
    outputs = []
    for action in ("start", "env"):
        done = subprocess.run([sys.executable, str(SERVICES), action], env=env, capture_output=True, text=True,
                              check=False)
        if done.returncode != 0:  # say why: the script's own output
            raise RuntimeError(f"services.py {action} exited {done.returncode}\n--- stdout ---\n"
                               f"{done.stdout[-4000:]}\n--- stderr ---\n{done.stderr[-4000:]}")
        outputs.append(done.stdout)
    return dict(line.removeprefix("export ").split("=", 1) for line in outputs[-1].splitlines())


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (all its threads) so far, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime (fields 14 and 15)


def pinning() -> str:
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) == os.cpu_count():
        return "broker, PostgreSQL and workers share all cores (nothing pinned)"
    return (f"this script, its producer and the workers pinned to core(s) {','.join(map(str, cores))} "
            f"(taskset); the broker and PostgreSQL, started beforehand, float over all cores")


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def event_for(pupil: dict[str, str], rng: random.Random) -> dict[str, Any]:
    return {"event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "attendance_id": f"ED-{rng.randrange(10**9)}", "hospital_ods_code": "RXX01",
            "arrived_at": datetime.now(UTC),
            "child": {"nhs_number": pupil["nhs_number"] or None, "given_name": pupil["given_name"],
                      "family_name": pupil["family_name"],
                      "date_of_birth": datetime.fromisoformat(pupil["date_of_birth"]).date(),
                      "sex": pupil["sex"] or "U", "postcode": pupil["postcode"] or None, "school_name": None},
            "admitted": False, "risk_summary": "safety plan", "exploitation_screening": "NO_CONCERN",
            "consent": "GIVEN", "shared_without_consent_reason": None, "clinician_contact": "nurse"}


class Run:
    def __init__(self, services: dict[str, str], tmp: Path, workers: int) -> None:
        admin = services["SAFEGUARD_POSTGRES_ADMIN_URL"].replace("+psycopg", "")
        self.name = f"bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.name}" OWNER safeguard')
        self.url = services["SAFEGUARD_DATABASE_URL"].rsplit("/", 1)[0] + "/" + self.name
        self.prefix = f"{self.name}."
        self.bootstrap = services["SAFEGUARD_KAFKA_BOOTSTRAP"]
        self.env = {**os.environ, "SAFEGUARD_DATABASE_URL": self.url, "SAFEGUARD_KAFKA_BOOTSTRAP": self.bootstrap,
                    "SAFEGUARD_KAFKA_TOPIC_PREFIX": self.prefix, "SAFEGUARD_KAFKA_GROUP": self.name,
                    "SAFEGUARD_VAR_DIR": str(tmp / "var"), "SAFEGUARD_LOG_LEVEL": "WARNING"}
        data = tmp / "data"
        subprocess.run([SAFEGUARD, "demo-data", "--out", str(data), "--pupils", "2000"], env=self.env, check=True,
                       capture_output=True)
        for kind in ("schools", "teams", "pupils", "ehe", "involvements"):
            subprocess.run([SAFEGUARD, "load", kind, str(data / f"{kind}.csv")], env=self.env, check=True,
                           capture_output=True)
        with (data / "pupils.csv").open() as handle:
            self.pupils = [row for row in csv.DictReader(handle) if not row["on_roll_to"]]
        ensure_topics(self.bootstrap, 4, self.prefix)
        self.workers = [subprocess.Popen([SAFEGUARD, "worker"], env=self.env, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL) for _ in range(workers)]
        self.producer = KafkaProducer(bootstrap_servers=self.bootstrap, acks="all", linger_ms=5)
        self.db = psycopg.connect(self.url.replace("+psycopg", ""), autocommit=True)
        time.sleep(12)  # let the group settle before measuring

    def worker_cpu(self) -> float:
        return sum(cpu_seconds(worker.pid) for worker in self.workers)

    def processed(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM event WHERE status = 'processed'").fetchone()[0])

    def wait_processed(self, total: int, timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        while self.processed() < total:
            if time.monotonic() > deadline:
                letters = self.db.execute("SELECT count(*) FROM deadletter").fetchone()[0]
                raise RuntimeError(f"{self.processed()} of {total} processed, {letters} dead-lettered")
            time.sleep(0.1)

    def wait_relayed(self, timeout: float = 600) -> float:
        """Until the outbox the drain left is relayed (the worker's relay works it off after the drain's events
        are processed, on the same core): seconds it took. The latency run measures the steady state after it."""
        started = deadline = time.monotonic()
        deadline += timeout
        while self.db.execute("SELECT count(*) FROM outbox WHERE relayed_at IS NULL").fetchone()[0]:
            if time.monotonic() > deadline:
                raise RuntimeError("the outbox was not relayed in time")
            time.sleep(0.2)
        return time.monotonic() - started

    def send(self, record: dict[str, Any]) -> None:
        value = codec.encode("self-harm-attendance", record)
        self.producer.send(self.prefix + "self-harm-attendance", key=record["attendance_id"].encode(), value=value)

    def close(self) -> None:
        for worker in self.workers:
            worker.send_signal(signal.SIGTERM)
        for worker in self.workers:
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
        self.producer.close()
        self.db.close()


def throughput(run: Run, events: int) -> dict[str, float]:
    """Events/s, the workers' CPU ms per event, and the load average at the end."""
    rng = random.Random(1)
    records = [event_for(rng.choice(run.pupils), rng) for _ in range(events)]
    cpu = run.worker_cpu()
    started = time.perf_counter()
    for record in records:
        run.send(record)
    run.producer.flush()
    run.wait_processed(events)
    elapsed = time.perf_counter() - started
    return {"rate": events / elapsed, "cpu_ms": (run.worker_cpu() - cpu) * 1000 / events}


def latency(run: Run, rate: float, duration: float) -> dict[str, float]:
    rng = random.Random(2)
    base = run.processed()
    cpu = run.worker_cpu()
    sent: dict[str, float] = {}
    start = time.time()
    for index in range(int(rate * duration)):
        wait = start + index / rate - time.time()
        if wait > 0:
            time.sleep(wait)
        record = event_for(rng.choice(run.pupils), rng)
        sent[record["event_id"]] = time.time()
        run.send(record)
        run.producer.flush()
    run.wait_processed(base + len(sent))
    cpu_ms = (run.worker_cpu() - cpu) * 1000 / len(sent)
    rows = run.db.execute("SELECT event_id, min(created_at) FROM notification GROUP BY event_id").fetchall()
    samples = sorted((created.replace(tzinfo=UTC).timestamp() - sent[event_id]) * 1000
                     for event_id, created in rows if event_id in sent)
    q = statistics.quantiles(samples, n=100)
    return {"count": len(samples), "p50": q[49], "p99": q[98], "max": samples[-1], "cpu_ms": cpu_ms}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results" / "kafka.md")
    args = parser.parse_args()
    services = services_env()
    figures: dict[int, dict[str, float]] = {}
    lat: dict[str, float] = {}
    loads: list[str] = [f"at start {load_average()}"]
    for workers in (1, 2):
        with tempfile.TemporaryDirectory() as tmp:
            run = Run(services, Path(tmp), workers)
            try:
                figures[workers] = throughput(run, args.events)
                loads.append(f"after {workers} worker(s) drained {load_average()}")
                if workers == 1:
                    settled = run.wait_relayed()
                    loads.append(f"after the drain's outbox was relayed ({settled:.0f} s) {load_average()}")
                    lat = latency(run, args.rate, args.duration)
                    loads.append(f"after the latency run {load_average()}")
            finally:
                run.close()
    print(append(args.results, "Kafka runtime benchmark results (bench/bench_kafka.py)", [
        f"machine: {machine()}; {pinning()}",
        "settings: Kafka 3.9.2 KRaft single node, 4 partitions, acks=all; PostgreSQL 15 with fsync and "
        f"synchronous_commit on; 2,000 demo pupils; {WORKER_SETTINGS}",
        f"load average (1, 5, 15 min): {'; '.join(loads)}",
        f"throughput, {args.events:,} events produced then drained: 1 worker {figures[1]['rate']:,.0f} events/s "
        f"({figures[1]['cpu_ms']:.2f} worker CPU ms/event); 2 workers {figures[2]['rate']:,.0f} events/s "
        f"({figures[2]['cpu_ms']:.2f} CPU ms/event, both workers) (target 1,000 per worker)",
        f"latency at {args.rate:g} events/s for {args.duration:g} s, 1 worker ({lat['count']:,.0f} events), started "
        "once the drain's outbox was relayed, "
        f"produce to notification stored: p50 {lat['p50']:.1f} ms, p99 {lat['p99']:.1f} ms, "
        f"max {lat['max']:.1f} ms ({lat['cpu_ms']:.2f} worker CPU ms/event, timers included) "
        f"(target p99 < 100 ms)",
    ]))


if __name__ == "__main__":
    main()
