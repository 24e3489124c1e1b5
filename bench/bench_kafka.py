"""Benchmark: the Kafka runtime end to end, durability as shipped (PostgreSQL fsync and synchronous_commit
on, acks=all): events/s with one and with two `safeguard worker` processes, and p50/p99 latency from
produce to notification stored at a steady 50 events/s; beside each figure the CPU milliseconds per event
of the worker process(es) (user + system, from /proc/PID/stat) and the machine's load average.

Latency is measured two ways: to the notification's ``created_at`` (the clock the worker read when it started
the event's batch: handling began) and to the moment the notification's transaction committed (stored: a
trigger on the benchmark database's notification table calls ``pg_notify`` with the event id, which PostgreSQL
delivers to this script's listening connection only once the transaction committed). Before the latency run,
the worker's CPU while idle (no events; its timers and the Kafka clients' polling) is measured for 5 s, and the
CPU of this script (producer and listener) per event sent is reported too. Once the workers started, this script
moves off their cores (``taskset -c 0`` on two cores: the workers on core 0, the producer and listener on core 1),
as a hospital's producer is another machine: ``--producer-cpus`` names the cores, and ``--producer-with-workers``
keeps it on the workers' core(s), competing with them, as every run before 2026-12-03 did.

Starts a real broker and PostgreSQL with scripts/services/services.py (own state directory), loads demo
reference data into a fresh database, and produces Avro records with kafka-python. The broker, the
database and the workers share this machine's two cores; the figures say so.

    SAFEGUARD_SERVICES_DIR=/tmp/svc-mine taskset -c 0 .venv/bin/python bench/bench_kafka.py \
        [--events 5000] [--rate 50] [--duration 30] [--latency-only] [--producer-cpus 1 | --producer-with-workers]

The services' state directory is $SAFEGUARD_SERVICES_DIR (default /tmp/safeguard-bench-services), so two
people benchmarking at once do not share a broker.

Appends a dated section to bench/results/kafka.md.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import random
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
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


def _all_cores() -> None:
    os.sched_setaffinity(0, range(os.cpu_count() or 1))


def services_dir() -> str:
    """The services' state directory: $SAFEGUARD_SERVICES_DIR, else the benchmarks' own."""
    return os.environ.get("SAFEGUARD_SERVICES_DIR") or "/tmp/safeguard-bench-services"


def services_env() -> dict[str, str]:
    """Start the broker and PostgreSQL if they are not running, on every core whatever this script is pinned to
    (started from a ``taskset -c 0`` run they used to inherit its core, and took it from the worker being measured);
    their environment."""
    env = {**os.environ, "SAFEGUARD_SERVICES_DIR": services_dir()}
    outputs = []
    for action in ("start", "env"):
        done = subprocess.run([sys.executable, str(SERVICES), action], env=env, capture_output=True, text=True,
                              check=False, preexec_fn=_all_cores)
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


def services_pinned() -> str:
    """Whether the running broker and PostgreSQL (started before this run, perhaps pinned) float over every core."""
    state_dir = Path(services_dir())
    pids: dict[str, int] = {}
    with contextlib.suppress(OSError, ValueError, KeyError):
        pids["the broker"] = int(json.loads((state_dir / "state.json").read_text())["kafka"]["pid"])
    with contextlib.suppress(OSError, ValueError, IndexError):
        postmaster = state_dir / "postgres" / "data" / "postmaster.pid"
        pids["PostgreSQL"] = int(postmaster.read_text().split()[0])
    pinned = []
    for name, pid in pids.items():
        with contextlib.suppress(OSError):
            cores = os.sched_getaffinity(pid)
            if len(cores) < (os.cpu_count() or 1):
                pinned.append(f"{name} pinned to core(s) {','.join(map(str, sorted(cores)))}")
    return "; ".join(pinned) or "the broker and PostgreSQL float over all cores"


def pinning(producer_cpus: set[int] | None = None) -> str:
    cores = sorted(os.sched_getaffinity(0))
    if producer_cpus:
        return (f"the workers pinned to core(s) {','.join(map(str, cores))} (taskset), this script and its producer "
                f"moved to core(s) {','.join(map(str, sorted(producer_cpus)))} once the workers started; "
                f"{services_pinned()}")
    if len(cores) == os.cpu_count():
        return "broker, PostgreSQL and workers share all cores (nothing pinned)"
    return (f"this script, its producer and the workers pinned to core(s) {','.join(map(str, cores))} "
            f"(taskset); {services_pinned()}")


def own_cpu() -> float:
    """This process's user + system CPU so far (all threads: the producer's sender thread, the listener)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def missing_for(pupil: dict[str, str], rng: random.Random) -> dict[str, Any]:
    """A police missing report of the pupil (a new episode), as ``bench/bench_intake.py`` sends them."""
    now = datetime.now(UTC)
    return {"event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "episode_id": f"EP-{rng.randrange(10**12)}", "force_code": "NS01", "reported_at": now,
            "last_seen_at": now - timedelta(hours=2), "child": child_of(pupil),
            "risk_grade": rng.choice(["LOW", "MEDIUM", "HIGH"]), "missing_from": rng.choice(["HOME", "CARE"]),
            "exploitation_flags": []}


def child_of(pupil: dict[str, str]) -> dict[str, Any]:
    """The child's identity as a sending system knows it: the pupil's, from the demo roll."""
    return {"nhs_number": pupil["nhs_number"] or None, "given_name": pupil["given_name"],
            "family_name": pupil["family_name"],
            "date_of_birth": datetime.fromisoformat(pupil["date_of_birth"]).date(),
            "sex": pupil["sex"] or "U", "postcode": pupil["postcode"] or None, "school_name": None}


def event_for(pupil: dict[str, str], rng: random.Random) -> dict[str, Any]:
    return {"event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "attendance_id": f"ED-{rng.randrange(10**9)}", "hospital_ods_code": "RXX01",
            "arrived_at": datetime.now(UTC), "child": child_of(pupil),
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

    def listen_stored(self) -> StoredListener:
        """From now on, the moment each event's first notification is committed (see the module docstring)."""
        self.db.execute("""
            CREATE FUNCTION bench_stored() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN PERFORM pg_notify('bench_stored', coalesce(NEW.event_id, '')); RETURN NULL; END $$""")
        self.db.execute("CREATE TRIGGER bench_stored AFTER INSERT ON notification FOR EACH ROW "
                        "EXECUTE FUNCTION bench_stored()")
        return StoredListener(self.url.replace("+psycopg", ""))

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
        """A self-harm attendance, keyed by its attendance; a missing report (``missing_for``), by its episode."""
        kind, key = ("missing-reported", record["episode_id"]) if "episode_id" in record else \
            ("self-harm-attendance", record["attendance_id"])
        self.producer.send(self.prefix + kind, key=key.encode(), value=codec.encode(kind, record))

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


class StoredListener:
    """A connection LISTENing on ``bench_stored``, in a thread: when each payload (an event id) first arrived."""

    def __init__(self, url: str) -> None:
        self.stored: dict[str, float] = {}
        self._stop = False
        self._conn = psycopg.connect(url, autocommit=True)
        self._conn.execute("LISTEN bench_stored")
        self._thread = threading.Thread(target=self._listen, daemon=True)
        self._thread.start()

    def _listen(self) -> None:
        while not self._stop:
            for notice in self._conn.notifies(timeout=0.5):
                self.stored.setdefault(notice.payload, time.time())

    def close(self) -> None:
        self._stop = True
        self._thread.join()
        self._conn.close()


def throughput(run: Run, events: int, mixed: bool = False) -> dict[str, float]:
    """Events/s, the workers' CPU ms per event, and the load average at the end. With ``mixed``, every second
    event is a missing report (a new episode) instead of a self-harm attendance."""
    rng = random.Random(1)
    records = [(missing_for if mixed and i % 2 else event_for)(rng.choice(run.pupils), rng) for i in range(events)]
    cpu = run.worker_cpu()
    started = time.perf_counter()
    for record in records:
        run.send(record)
    run.producer.flush()
    run.wait_processed(events)
    elapsed = time.perf_counter() - started
    return {"rate": events / elapsed, "cpu_ms": (run.worker_cpu() - cpu) * 1000 / events}


def idle_cpu(run: Run, seconds: float = 5.0) -> float:
    """The workers' CPU ms per second with no events to handle."""
    cpu, started = run.worker_cpu(), time.monotonic()
    time.sleep(seconds)
    return (run.worker_cpu() - cpu) * 1000 / (time.monotonic() - started)


def percentiles(samples: list[float]) -> dict[str, float]:
    samples = sorted(samples)
    q = statistics.quantiles(samples, n=100)
    return {"count": len(samples), "p50": q[49], "p99": q[98], "max": samples[-1]}


def latency(run: Run, rate: float, duration: float) -> dict[str, Any]:
    rng = random.Random(2)
    base = run.processed()
    listener = run.listen_stored()
    idle = idle_cpu(run)
    cpu, mine = run.worker_cpu(), own_cpu()
    sent: dict[str, float] = {}
    start = time.time()
    try:
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
        bench_ms = (own_cpu() - mine) * 1000 / len(sent)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not sent.keys() <= listener.stored.keys():
            time.sleep(0.05)
    finally:
        listener.close()
    rows = run.db.execute("SELECT event_id, min(created_at) FROM notification GROUP BY event_id").fetchall()
    handled = [(created.replace(tzinfo=UTC).timestamp() - sent[event_id]) * 1000
               for event_id, created in rows if event_id in sent]
    stored = [(listener.stored[event_id] - at) * 1000 for event_id, at in sent.items() if event_id in listener.stored]
    if len(stored) != len(handled):
        raise RuntimeError(f"{len(handled)} events have notifications, {len(stored)} were heard committed")
    return {"handled": percentiles(handled), "stored": percentiles(stored), "cpu_ms": cpu_ms, "idle_cpu": idle,
            "bench_cpu_ms": bench_ms}


def latency_line(lat: dict[str, Any], rate: float, duration: float, started: str) -> str:
    handled, stored = lat["handled"], lat["stored"]
    return (f"latency at {rate:g} events/s for {duration:g} s, 1 worker ({stored['count']:,.0f} events), {started}: "
            f"produce to notification stored (committed): p50 {stored['p50']:.1f} ms, p99 {stored['p99']:.1f} ms, "
            f"max {stored['max']:.1f} ms (target p99 < 100 ms); produce to handling started (the notification's "
            f"created_at): p50 {handled['p50']:.1f} ms, p99 {handled['p99']:.1f} ms, max {handled['max']:.1f} ms; "
            f"{lat['cpu_ms']:.2f} worker CPU ms/event, timers included; the worker idle before it "
            f"{lat['idle_cpu']:.1f} CPU ms/s; this script (producer, listener) {lat['bench_cpu_ms']:.2f} CPU ms/event")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--latency-only", action="store_true",
                        help="only the latency run, on a fresh database with one worker (no drain before it)")
    parser.add_argument("--producer-cpus", type=lambda text: {int(core) for core in text.split(",")},
                        help="cores this script (producer, listener) moves to once the workers started, e.g. 1 "
                             "(default: the cores the workers are not pinned to, if any)")
    parser.add_argument("--producer-with-workers", action="store_true",
                        help="keep this script on the workers' core(s) (the measurement before 2026-12-03)")
    parser.add_argument("--mixed", action="store_true",
                        help="the drain's events half missing reports (a new episode each), half self-harm attendances")
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results" / "kafka.md")
    args = parser.parse_args()
    services = services_env()
    figures: dict[int, dict[str, float]] = {}
    lat: dict[str, Any] = {}
    loads: list[str] = [f"at start {load_average()}"]
    workers_cpus = os.sched_getaffinity(0)
    if args.producer_with_workers:
        args.producer_cpus = None
    elif args.producer_cpus is None:
        args.producer_cpus = set(range(os.cpu_count() or 1)) - workers_cpus or None
    for workers in ((1,) if args.latency_only else (1, 2)):
        with tempfile.TemporaryDirectory() as tmp:
            os.sched_setaffinity(0, workers_cpus)  # the workers inherit it
            run = Run(services, Path(tmp), workers)
            if args.producer_cpus:
                os.sched_setaffinity(0, args.producer_cpus)
            try:
                if not args.latency_only:
                    figures[workers] = throughput(run, args.events, args.mixed)
                    loads.append(f"after {workers} worker(s) drained {load_average()}")
                if workers == 1:
                    if not args.latency_only:
                        settled = run.wait_relayed()
                        loads.append(f"after the drain's outbox was relayed ({settled:.0f} s) {load_average()}")
                    lat = latency(run, args.rate, args.duration)
                    loads.append(f"after the latency run {load_average()}")
            finally:
                run.close()
    os.sched_setaffinity(0, workers_cpus)
    lines = [
        f"machine: {machine()}; {pinning(args.producer_cpus)}",
        "settings: Kafka 3.9.2 KRaft single node, 4 partitions, acks=all; PostgreSQL 15 with fsync and "
        f"synchronous_commit on; 2,000 demo pupils; {WORKER_SETTINGS}",
        f"load average (1, 5, 15 min): {'; '.join(loads)}",
    ]
    if not args.latency_only:
        lines.append(
            f"throughput, {args.events:,} events "
            f"({'self-harm attendances and missing reports, half each' if args.mixed else 'self-harm attendances'}) "
            f"produced then drained: 1 worker {figures[1]['rate']:,.0f} events/s "
            f"({figures[1]['cpu_ms']:.2f} worker CPU ms/event); 2 workers {figures[2]['rate']:,.0f} events/s "
            f"({figures[2]['cpu_ms']:.2f} CPU ms/event, both workers) (target 1,000 per worker)")
    lines.append(latency_line(lat, args.rate, args.duration,
                              "on a fresh database (--latency-only)" if args.latency_only
                              else "started once the drain's outbox was relayed"))
    print(append(args.results, "Kafka runtime benchmark results (bench/bench_kafka.py)", lines))


if __name__ == "__main__":
    main()
