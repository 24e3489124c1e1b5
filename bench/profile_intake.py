"""Profile: CPU per event by stage, from intake to relay, through the public entry points.

The runtime's parts are driven in this process (pinned to core 0), as `safeguard run` drives them, but one
at a time so each phase's CPU is its own:

1. HTTP intake: the FastAPI app of ``create_app`` served by uvicorn in a thread; a client process pinned to
   core 1 POSTs N self-harm attendances and N missing reports (16 concurrent clients). The process CPU
   (user + system) of the phase is split into validation (the codec's decode and the rules), the store
   (the insert, the commit and its fsync) and the rest (uvicorn, FastAPI, authentication, group commit).
2. `safeguard produce`'s intake: ``Intake.submit_many`` in batches of 500, split the same way; and a real
   `safeguard produce` subprocess of the same size, its whole CPU (interpreter start included).
3. Processing: ``IntakeConsumer.run_once`` until every event is processed, split into claim (finding and
   loading the due rows), decode (the stored JSON back into a record), match, write (ORM flushes, DML
   statements, commits) and route (the rest: the handler's rules, recipients, deadlines, their reads).
4. Relay: ``relay`` until the outbox and the due deliveries are empty.

Each stage's CPU is exclusive (thread CPU time, a stage nested in another is charged to the inner one), so
the rows add up to the phase's total. Timing wrappers cost a little themselves: the total is the figure to
compare with the unwrapped run of bench_intake.py.

    .venv/bin/python bench/profile_intake.py [--events 2000] [--label before]

Appends a table to bench/results/intake.md.
"""

from __future__ import annotations

import argparse
import functools
import inspect
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.bench_intake import SAFEGUARD, Target  # noqa: E402
from bench.processes import free_port  # noqa: E402
from bench.results_file import append, machine  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


class Stages:
    """Exclusive thread-CPU accounting: the innermost open stage of each thread is charged."""

    def __init__(self) -> None:
        self.cpu: dict[str, float] = defaultdict(float)
        self._local = threading.local()
        self._lock = threading.Lock()
        self.by_type: dict[str, list[float]] = defaultdict(list)  # inclusive CPU of each event's handler

    def _stack(self) -> list[list[Any]]:
        stack: list[list[Any]] | None = getattr(self._local, "stack", None)
        if stack is None:
            stack = self._local.stack = []
        return stack

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        stack = self._stack()
        now = time.thread_time()
        if stack:
            self._charge(stack[-1], now)
        stack.append([name, now])
        try:
            yield
        finally:
            now = time.thread_time()
            self._charge(stack.pop(), now)
            if stack:
                stack[-1][1] = now

    def _charge(self, frame: list[Any], now: float) -> None:
        with self._lock:
            self.cpu[frame[0]] += now - frame[1]
        frame[1] = now

    def wrap(self, owner: Any, attribute: str, name: str | Callable[..., str | None]) -> None:
        original = getattr(owner, attribute)

        @functools.wraps(original)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            label = name(*args, **kwargs) if callable(name) else name
            if label is None:
                return original(*args, **kwargs)
            with self.stage(label):
                return original(*args, **kwargs)

        setattr(owner, attribute, wrapped)

    def take(self) -> dict[str, float]:
        with self._lock:
            taken = dict(self.cpu)
            self.cpu.clear()
        return taken


def instrument(stages: Stages) -> None:
    """Timing wrappers around the functions each stage is made of (this process only)."""
    from sqlalchemy.orm import Session
    from sqlalchemy.sql.dml import UpdateBase

    import consumers.intake_consumer as consumer_module
    import pipeline.entrypoints.dependencies as dependencies
    import pipeline.service.dispatch as dispatch
    from pipeline.service.handlers import Context
    from pipeline.service.intake import Intake

    stages.wrap(dependencies, "user_for_token", "authenticate")
    stages.wrap(Intake, "_decode", "validate")
    stages.wrap(Intake, "_store", "store")
    stages.wrap(consumer_module.IntakeConsumer, "pending", "claim")
    from pipeline.adapters.repository import Repository

    # Found and claimed by one query since branch embedded-latency; through the storage port since events-core.
    for name in ("claim_events", "claim_due_events"):
        for owner in (consumer_module, Repository):
            if hasattr(owner, name):
                stages.wrap(owner, name, "claim")
    stages.wrap(dispatch, "record_of", "decode")
    if hasattr(consumer_module, "record_of"):  # the batch's records decoded once, before its reads ahead
        stages.wrap(consumer_module, "record_of", "decode")
    stages.wrap(Context, "match", "match")
    stages.wrap(Session, "flush", "write")
    stages.wrap(Session, "commit", "write")
    stages.wrap(Session, "execute", lambda _session, statement, *a, **k: "write"
                if isinstance(statement, UpdateBase) else None)
    process = consumer_module.process

    def timed_process(repo: Any, event: Any, *args: Any) -> None:
        started = time.thread_time()
        try:
            process(repo, event, *args)
        finally:
            stages.by_type[event.event_type].append(time.thread_time() - started)

    consumer_module.process = timed_process  # type: ignore[assignment]


@contextmanager
def statement_cpu(engine: Any, spent: list[float]) -> Iterator[None]:
    """Thread CPU inside the DBAPI cursor's ``execute`` and ``executemany`` while open (SQLite running the
    statements and the sqlite3 module binding their parameters; the commit's WAL write is not among them), added
    to ``spent[0]``: the part of processing no change to the Python around it can remove."""
    from sqlalchemy import event

    started: dict[int, float] = {}

    def before(_conn: Any, cursor: Any, *_args: Any) -> None:
        started[id(cursor)] = time.thread_time()

    def after(_conn: Any, cursor: Any, *_args: Any) -> None:
        spent[0] += time.thread_time() - started.pop(id(cursor))

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        yield
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)


def client(port: int, token: str, bodies_file: Path, clients: int) -> None:
    """The load generator of phase 1 (run as a subprocess on core 1)."""
    lines = [json.loads(line) for line in bodies_file.read_text().splitlines()]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    from concurrent.futures import ThreadPoolExecutor

    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=60,
                      limits=httpx.Limits(max_connections=clients)) as http, ThreadPoolExecutor(clients) as pool:
        codes = list(pool.map(lambda line: http.post(f"/api/events/{line[0]}", content=line[1]).status_code,
                              lines))
    assert codes.count(202) == len(lines), f"only {codes.count(202)} of {len(lines)} accepted"


def process_cpu() -> float:
    times = os.times()
    return times.user + times.system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=2000, help="events of each type per phase")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--label", default="")
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results" / "intake.md")
    parser.add_argument("--client", nargs=3, help=argparse.SUPPRESS)  # the token travels in BENCH_TOKEN
    args = parser.parse_args()
    if args.client:
        client(int(args.client[0]), os.environ["BENCH_TOKEN"], Path(args.client[1]), int(args.client[2]))
        return
    os.sched_setaffinity(0, {0})

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        target = Target(tmp)
        os.environ.update(target.env)
        import uvicorn

        from consumers.intake_consumer import IntakeConsumer
        from pipeline.bootstrap import build
        from pipeline.entrypoints.api import create_app
        from pipeline.runtimes.memory import freeze_start_up_objects
        from pipeline.service.intake import Submission
        from pipeline.service.relay import relay
        from pipeline.settings import Settings

        services = build(Settings())
        services.ctx.warm_up(services.store)
        freeze_start_up_objects()  # as both runtimes do after start-up (the collector's settings too)
        services.ready.set()
        stages = Stages()
        instrument(stages)
        rng = random.Random(7)
        n = args.events

        def events() -> list[tuple[str, bytes]]:
            mixed = [("self-harm-attendance", json.dumps(target.event(rng)).encode()) for _ in range(n)]
            mixed += [("missing-reported", json.dumps(target.missing_report(rng)).encode())
                      for _ in range(n)]
            rng.shuffle(mixed)
            return mixed

        rows: list[tuple[str, str, float]] = []

        # 1. HTTP intake
        http_events = events()
        bodies = tmp / "http.jsonl"
        bodies.write_text("\n".join(json.dumps([kind, body.decode()]) for kind, body in http_events))
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(create_app(services), host="127.0.0.1", port=port, log_config=None,
                                               access_log=False))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        stages.take()
        cpu, wall = process_cpu(), time.perf_counter()
        # The token in the environment: a random token may begin with "-", which argparse takes for an option.
        subprocess.run(["taskset", "-c", "1", sys.executable, __file__, "--client", str(port), str(bodies),
                        str(args.clients)], check=True, env={**os.environ, "BENCH_TOKEN": target.token})
        cpu, wall = process_cpu() - cpu, time.perf_counter() - wall
        server.should_exit = True
        thread.join()
        split = stages.take()
        total = len(http_events)
        http_rest = cpu - sum(split.get(name, 0) for name in ("authenticate", "validate", "store", "write"))
        rows += [("intake, HTTP", "uvicorn, FastAPI, group commit, the rest", http_rest / total),
                 ("intake, HTTP", "authenticate (token lookup)", split.get("authenticate", 0) / total),
                 ("intake, HTTP", "validate (codec decode, rules)", split.get("validate", 0) / total),
                 ("intake, HTTP", "store (insert, commit, fsync)",
                  (split.get("store", 0) + split.get("write", 0)) / total),
                 ("intake, HTTP", f"total ({total / wall:,.0f} accepted/s)", cpu / total)]

        # 2. the produce intake, in process and as the real CLI
        produce_events = events()
        stages.take()
        cpu = time.thread_time()
        for start in range(0, len(produce_events), 500):
            services.intake.submit_many([Submission(kind, body, source="cli")
                                         for kind, body in produce_events[start:start + 500]])
        cpu = time.thread_time() - cpu
        split = stages.take()
        total = len(produce_events)
        rows += [("intake, produce", "validate (codec decode, rules)", split.get("validate", 0) / total),
                 ("intake, produce", "store (insert, commit, fsync)",
                  (split.get("store", 0) + split.get("write", 0)) / total),
                 ("intake, produce", "total", cpu / total)]
        cli_events = events()
        for kind in ("self-harm-attendance", "missing-reported"):
            (tmp / f"{kind}.jsonl").write_bytes(b"\n".join(body for k, body in cli_events if k == kind) + b"\n")
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        wall = time.perf_counter()
        for kind in ("self-harm-attendance", "missing-reported"):
            subprocess.run(["taskset", "-c", "1", SAFEGUARD, "produce", kind, str(tmp / f"{kind}.jsonl")],
                           env=target.env, check=True, capture_output=True)
        wall = time.perf_counter() - wall
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cli_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        rows.append(("intake, produce", f"`safeguard produce` process, start-up included ({len(cli_events) / wall:,.0f}"
                     " accepted/s)", cli_cpu / len(cli_events)))

        # 3. processing
        consumer = IntakeConsumer(services.store, services.ctx, services.clock)
        stages.take()
        cpu = time.thread_time()
        processed = 0
        in_statements = [0.0]
        with stages.stage("route"), statement_cpu(services.store.engine, in_statements):
            while handled := consumer.run_once():
                processed += handled
        cpu = time.thread_time() - cpu
        split = stages.take()
        for name, what in (("claim", "claim (due rows, load events)"), ("decode", "decode (stored JSON to record)"),
                           ("match", "match"), ("route", "route (rules, recipients, deadlines, their reads)"),
                           ("write", "write (flush, DML, commit, fsync)")):
            rows.append(("processing", what, split.get(name, 0) / processed))
        rows.append(("processing", f"total ({processed:,} events)", cpu / processed))
        rows.append(("processing", "of which SQLite running the statements (inclusive, every stage; the sqlite3 "
                     "module's binding included, the commit not)", in_statements[0] / processed))
        for kind, spent in sorted(stages.by_type.items()):
            rows.append(("processing", f"of which the handler and its processed mark, {kind} only (inclusive, "
                         "without the batch's claim and commit)", sum(spent) / len(spent)))

        # 4. relay
        stages.take()
        cpu = time.thread_time()
        with stages.stage("relay"):
            while relay(services.store, services.delivery, services.publisher, services.clock()):
                pass
        cpu = time.thread_time() - cpu
        split = stages.take()
        rows += [("relay", "relay (outbox, deliveries), excluding writes", split.get("relay", 0) / processed),
                 ("relay", "write (flush, DML, commit, fsync)", split.get("write", 0) / processed),
                 ("relay", "total, per event processed", cpu / processed)]
        services.store.dispose()

    from consumers.intake_consumer import IntakeConsumer

    load = os.getloadavg()
    table = ["", "| phase | stage | CPU ms per event |", "|---|---|---:|"]
    table += [f"| {phase} | {stage} | {seconds * 1000:.3f} |" for phase, stage, seconds in rows]
    print("\n".join(table))
    label = f" ({args.label})" if args.label else ""
    section = append(args.results, "Intake benchmark results", [
        f"profile{label}: CPU per event by stage, `bench/profile_intake.py --events {n}` ({2 * n:,} events per "
        f"phase, self-harm and missing reports mixed half and half)",
        f"machine: {machine()}; this process pinned to core 0, HTTP client and `safeguard produce` to core 1; "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the end (the machine is shared by five "
        "engineers' sessions: wall-clock rates move with their load, CPU per event much less)",
        f"settings: SQLite WAL, synchronous=FULL (as shipped), 2,000 demo pupils, consumer batches of "
        f"{inspect.signature(IntakeConsumer.run_once).parameters['limit'].default}, relay batches of 100; "
        "CPU is thread CPU, exclusive by stage, with timing wrappers in place",
    ])
    with args.results.open("a", encoding="utf-8") as handle:
        handle.write("\n".join(table) + "\n")  # a blank line before the table, or it is not one
    print(section)


if __name__ == "__main__":
    main()
