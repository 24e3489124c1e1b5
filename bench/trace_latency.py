"""Trace: where one event's latency goes at a steady low rate, and what else held the database meanwhile.

The embedded runtime (`safeguard run`'s own objects: ``build``, ``EmbeddedRuntime``, uvicorn) is served by a
child process pinned to core 0, with timing wrappers (in that process only) around each step of an event's
path and around every other writer:

- per event: the intake group's start, its write-lock wait, its commit (with fsync), the consumer's wake-up,
  the consumer batch's write-lock wait, and the moment ``process`` is called (the notification's
  ``created_at``, where bench_intake.py's latency ends);
- every commit of every thread (relay, sweep, intake, consumer): its duration, and from the WAL index (the
  ``-shm`` file's header) whether it ran a WAL checkpoint (``nBackfill`` jumped) and how many frames it wrote;
- the write lock: who held it and for how long; garbage collections (``gc.callbacks``); a watchdog thread
  that wakes every 2 ms and records when it woke more than 5 ms late (the GIL held by another thread, or the
  core taken by another process); each thread's run-queue wait from /proc (``schedstat``).

The load generator (this process, core 1) sends self-harm attendances at ``--rate`` for ``--duration`` seconds,
as bench_intake.py's latency part does, then prints the latency percentiles, the slowest events' breakdown and
the writers' figures.

    taskset -c 0 .venv/bin/python bench/trace_latency.py [--rate 50] [--duration 30] [--slowest 15]
"""

from __future__ import annotations

import argparse
import gc
import json
import mmap
import os
import random
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.bench_intake import Target  # noqa: E402
from bench.processes import wait_healthy  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


class Recorder:
    """Everything the traced process records, as lists of plain tuples (dumped as JSON at exit)."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.lock = threading.Lock()
        self.data: dict[str, list[Any]] = defaultdict(list)
        self._shm: mmap.mmap | None = None

    def add(self, kind: str, *values: Any) -> None:
        with self.lock:
            self.data[kind].append(values)

    def wal(self) -> tuple[int, int, int]:
        """(mxFrame, nBackfill, salt1) from the WAL index header: frames in the WAL, frames checkpointed, and a
        number that changes whenever the WAL restarts from its beginning."""
        if self._shm is None:
            path = Path(f"{self.db}-shm")
            if not path.exists():
                return (0, 0, 0)
            with path.open("rb") as handle:
                self._shm = mmap.mmap(handle.fileno(), 136, access=mmap.ACCESS_READ)
        header = self._shm[:136]
        return (struct.unpack_from("<I", header, 16)[0], struct.unpack_from("<I", header, 96)[0],
                struct.unpack_from("<I", header, 32)[0])


class TracedLock:
    """The store's write lock, timed: how long each thread waited for it and held it."""

    def __init__(self, inner: Any, recorder: Recorder) -> None:
        self.inner, self.recorder = inner, recorder
        self._local = threading.local()

    def __enter__(self) -> TracedLock:
        asked = time.time()
        self.inner.acquire()
        self._local.got = time.time()
        self._local.asked = asked
        return self

    def __exit__(self, *exc: Any) -> None:
        released = time.time()
        self.inner.release()
        self.recorder.add("lock", threading.current_thread().name, self._local.asked, self._local.got, released)

    def acquire(self, *args: Any, **kwargs: Any) -> bool:
        return bool(self.inner.acquire(*args, **kwargs))

    def release(self) -> None:
        self.inner.release()


def serve(db: str, port: int, out: str) -> None:
    """The traced runtime (child process): as `safeguard run`, with the wrappers in place."""
    from sqlalchemy.orm import Session

    import consumers.intake_consumer as consumer_module
    from pipeline.bootstrap import build, configure_logging
    from pipeline.runtimes import embedded
    from pipeline.runtimes.embedded import EmbeddedRuntime
    from pipeline.service.intake import Intake
    from pipeline.settings import Settings

    recorder = Recorder(Path(db))
    settings = Settings(public_url=f"http://127.0.0.1:{port}")
    configure_logging(settings)
    services = build(settings)
    store = services.store
    if store._write_lock is not None:  # noqa: SLF001 - the trace times the store's own lock
        store._write_lock = TracedLock(store._write_lock, recorder)  # type: ignore[assignment]  # noqa: SLF001

    original_commit = Session.commit

    def commit(session: Session) -> None:
        before = recorder.wal()
        started, cpu = time.time(), time.thread_time()
        try:
            original_commit(session)
        finally:
            recorder.add("commit", threading.current_thread().name, started, time.time(),
                         time.thread_time() - cpu, before, recorder.wal())

    Session.commit = commit  # type: ignore[method-assign]

    original_submit_many = Intake.submit_many

    def submit_many(intake: Intake, submissions: Any) -> Any:
        started = time.time()
        results = original_submit_many(intake, submissions)
        ids = [result.body.get("event_id") for result in results]
        recorder.add("intake", started, time.time(), ids)
        return results

    Intake.submit_many = submit_many  # type: ignore[method-assign]

    original_run_once = consumer_module.IntakeConsumer.run_once

    def run_once(consumer: Any, limit: int = consumer_module.BATCH) -> int:
        started = time.time()
        handled = original_run_once(consumer, limit)
        if handled:
            recorder.add("batch", started, time.time(), handled)
        return handled

    consumer_module.IntakeConsumer.run_once = run_once  # type: ignore[method-assign]

    original_process = consumer_module.process

    def process(repo: Any, event: Any, ctx: Any, now: Any, *record: Any) -> None:
        # ``*record``: the batch path hands each event's decoded record on; a wrapper without it made every traced
        # batch fail with a TypeError and go event by event (the isolated path), which is not what a run does.
        recorder.add("process", event.event_id, now.timestamp(), time.time())
        original_process(repo, event, ctx, now, *record)

    consumer_module.process = process  # type: ignore[assignment]

    try:
        from pipeline.adapters import wal_checkpoint
    except ImportError:  # code from before the background checkpoints
        wal_checkpoint = None  # type: ignore[assignment]
    if wal_checkpoint is not None:
        original_checkpoint = wal_checkpoint.WalCheckpointer._checkpoint

        def checkpoint(checkpointer: Any, mode: str) -> Any:
            started = time.time()
            state = original_checkpoint(checkpointer, mode)
            recorder.add("checkpoint", mode, started, time.time(), state.log_frames, state.checkpointed_frames)
            return state

        wal_checkpoint.WalCheckpointer._checkpoint = checkpoint  # type: ignore[method-assign]

    runtime = EmbeddedRuntime(services)
    accepted = services.on_accepted

    def on_accepted() -> None:
        recorder.add("wake", time.time())
        accepted()

    services.on_accepted = on_accepted
    stored = getattr(services.intake, "on_stored", None)
    if stored is not None:
        def on_stored() -> None:
            recorder.add("wake", time.time())
            stored()

        services.intake.on_stored = on_stored
    for name in ("relay_once", "sweep_once"):
        original = getattr(runtime, name)

        def timed(original: Any = original, name: str = name) -> None:
            started = time.time()
            original()
            recorder.add(name, started, time.time())

        setattr(runtime, name, timed)

    gc_started: dict[int, float] = {}

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            gc_started[threading.get_ident()] = time.time()
        else:
            started = gc_started.pop(threading.get_ident(), time.time())
            recorder.add("gc", threading.current_thread().name, info["generation"], started, time.time(),
                         info.get("collected", 0))

    gc.callbacks.append(on_gc)

    def watchdog() -> None:
        while True:
            asked = time.time()
            time.sleep(0.002)
            late = time.time() - asked - 0.002
            if late > 0.005:
                recorder.add("stall", asked + 0.002, late)

    threading.Thread(target=watchdog, name="watchdog", daemon=True).start()

    def schedstat() -> dict[str, list[int]]:
        stats = {}
        names = {thread.native_id: thread.name for thread in threading.enumerate()}
        for task in Path("/proc/self/task").iterdir():
            try:
                name = names.get(int(task.name), (task / "comm").read_text().strip())
                values = [int(v) for v in (task / "schedstat").read_text().split()]
            except OSError:
                continue
            stats[f"{name}/{task.name}"] = values
        return stats

    embedded_threading = embedded.threading  # the names threads get, for the schedstat table
    assert embedded_threading is threading
    recorder.add("schedstat_start", time.time(), schedstat())

    def dump(*_: Any) -> None:
        recorder.add("schedstat_end", time.time(), schedstat())
        with recorder.lock:
            Path(out).write_text(json.dumps(recorder.data))

    signal.signal(signal.SIGUSR1, dump)
    runtime.serve("127.0.0.1", port)


@contextmanager
def traced_server(target: Target, out: Path) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(["taskset", "-c", "0", sys.executable, __file__, "--serve", str(target.db),
                                str(target.port), str(out)], env=target.env)
    try:
        wait_healthy(target.port, process, timeout=120)
        target.process = process  # type: ignore[assignment]
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


class DiskProbe:
    """The disk's own fsync latency meanwhile: every 100 ms, 4 KiB overwritten in a side file beside the database
    and fdatasync'd (what SQLite does for a commit under synchronous=FULL), from the load generator's core."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "probe.bin"
        self.samples: list[tuple[float, float]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        fd = os.open(self.path, os.O_CREAT | os.O_RDWR)
        os.write(fd, b"\0" * 65536)
        os.fsync(fd)
        index = 0
        while not self.stop.wait(0.1):
            os.pwrite(fd, os.urandom(4096), (index % 16) * 4096)
            started = time.time()
            os.fdatasync(fd)
            self.samples.append((started, (time.time() - started) * 1000))
            index += 1
        os.close(fd)


def pct(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100)[q - 1]


def analyse(data: dict[str, list[Any]], sent: dict[str, float], slowest: int,
            probe: list[tuple[float, float]]) -> None:
    group_of: dict[str, tuple[float, float]] = {}
    for started, ended, ids in data["intake"]:
        for event_id in ids:
            if event_id:
                group_of[event_id] = (started, ended)
    processed = {event_id: (now, at) for event_id, now, at in data["process"]}
    wakes = sorted(at for (at,) in data.get("wake", []))
    locks = data["lock"]
    commits = data["commit"]

    def first_after(times: list[float], moment: float) -> float | None:
        import bisect

        index = bisect.bisect_left(times, moment)
        return times[index] if index < len(times) else None

    rows = []
    for event_id, sent_at in sent.items():
        if event_id not in processed or event_id not in group_of:
            continue
        group_start, group_end = group_of[event_id]
        created = processed[event_id][0]
        # The intake wakes the consumer inside the group's call, just after its commit (on main: the route,
        # after the answer): the first wake-up from the group's start on.
        wake = first_after(wakes, group_start) or group_end
        rows.append({"id": event_id, "total": (created - sent_at) * 1000, "to_intake": (group_start - sent_at) * 1000,
                     "intake": (group_end - group_start) * 1000, "to_wake": max(0.0, wake - group_end) * 1000,
                     "to_process": (created - max(wake, group_end)) * 1000, "sent": sent_at,
                     "group": (group_start, group_end), "created": created})
    totals = sorted(row["total"] for row in rows)
    print(f"events traced: {len(rows)}; latency p50 {pct(totals, 50):.1f} p95 {pct(totals, 95):.1f} "
          f"p99 {pct(totals, 99):.1f} max {totals[-1]:.1f} ms")
    for part in ("to_intake", "intake", "to_wake", "to_process"):
        values = sorted(row[part] for row in rows)
        print(f"  {part:>10}: p50 {pct(values, 50):6.2f}  p95 {pct(values, 95):6.2f}  p99 {pct(values, 99):7.2f}  "
              f"max {values[-1]:7.2f} ms")

    if probe:
        values = sorted(ms for _, ms in probe)
        print(f"the disk meanwhile (4 KiB + fdatasync every 100 ms from core 1, n {len(values)}): p50 "
              f"{pct(values, 50):.2f}  p95 {pct(values, 95):.2f}  p99 {pct(values, 99):.2f}  max {values[-1]:.2f} ms")
    by_thread: dict[str, list[float]] = defaultdict(list)
    checkpoints = []
    frames: dict[str, list[int]] = defaultdict(list)
    for thread, started, ended, _cpu, before, after in commits:
        by_thread[thread].append((ended - started) * 1000)
        if after[1] > before[1] or (after[2] != before[2] and after[0] < before[0]):
            checkpoints.append((thread, started, ended, before, after))
        if after[2] == before[2] and after[0] >= before[0]:
            frames[thread].append(after[0] - before[0])
    print("commits by thread (ms): ")
    for thread, values in sorted(by_thread.items()):
        values.sort()
        print(f"  {thread:>22}: n {len(values):5d}  p50 {pct(values, 50):6.2f}  p99 {pct(values, 99):7.2f}  "
              f"max {values[-1]:7.2f}  WAL frames per commit mean "
              f"{statistics.mean(frames[thread]) if frames[thread] else 0:.1f}")
    print(f"commits that ran a WAL checkpoint or restarted the WAL: {len(checkpoints)}")
    for thread, started, ended, before, after in checkpoints[:12]:
        print(f"  {thread}: {(ended - started) * 1000:.1f} ms, WAL (frames, backfilled, salt) {before} -> {after}")
    held: dict[str, list[float]] = defaultdict(list)
    waited: dict[str, list[float]] = defaultdict(list)
    for thread, asked, got, released in locks:
        held[thread].append((released - got) * 1000)
        waited[thread].append((got - asked) * 1000)
    print("write lock by thread (ms): ")
    for thread in sorted(held):
        h, w = sorted(held[thread]), sorted(waited[thread])
        print(f"  {thread:>22}: n {len(h):5d}  held p50 {pct(h, 50):6.2f} p99 {pct(h, 99):7.2f} max {h[-1]:7.2f}; "
              f"waited p50 {pct(w, 50):6.2f} p99 {pct(w, 99):7.2f} max {w[-1]:7.2f}")
    gcs = data["gc"]
    print(f"garbage collections: {len(gcs)}; by generation: "
          + ", ".join(f"gen {g}: n {sum(1 for c in gcs if c[1] == g)}, max "
                      f"{max([(c[3] - c[2]) * 1000 for c in gcs if c[1] == g] or [0]):.2f} ms" for g in (0, 1, 2)))
    stalls = data["stall"]
    print(f"watchdog woken > 5 ms late: {len(stalls)} times; worst "
          + ", ".join(f"{late * 1000:.0f}" for _, late in sorted(stalls, key=lambda s: -s[1])[:10]) + " ms")
    by_mode: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for mode, started, ended, log_frames, _done in data.get("checkpoint", []):
        by_mode[mode].append(((ended - started) * 1000, log_frames))
    for mode, values in sorted(by_mode.items()):
        durations = sorted(v[0] for v in values)
        print(f"background checkpoints {mode}: n {len(values)}, p50 {pct(durations, 50):.2f} "
              f"max {durations[-1]:.2f} ms, log frames max {max(v[1] for v in values)}")
    for name in ("relay_once", "sweep_once"):
        values = sorted((e - s) * 1000 for s, e in data[name])
        if values:
            print(f"{name}: n {len(values)}, p50 {pct(values, 50):.2f} max {values[-1]:.2f} ms")
    start, end = data["schedstat_start"][0], data["schedstat_end"][0]
    span = end[0] - start[0]
    print(f"per thread over {span:.0f} s: CPU ms, run-queue wait ms (waiting for the core)")
    for name, values in sorted(end[1].items()):
        before = start[1].get(name, [0, 0, 0])
        cpu, wait = (values[0] - before[0]) / 1e6, (values[1] - before[1]) / 1e6
        if cpu > 5:
            print(f"  {name:>28}: cpu {cpu:8.0f}  run-queue wait {wait:7.0f}")

    print(f"\nslowest {slowest} events (ms): total = to_intake + intake + to_wake + to_process; and what overlapped")
    for row in sorted(rows, key=lambda r: -r["total"])[:slowest]:
        lo, hi = row["sent"], row["created"]
        overlapping = []
        for thread, started, ended, _cpu, before, after in commits:
            if started < hi and ended > lo and (ended - started) > 0.004:
                mark = " CHECKPOINT" if after[1] > before[1] else ""
                overlapping.append(f"{thread} commit {(ended - started) * 1000:.0f}{mark}")
        for thread, asked, got, released in locks:
            if got < hi and released > lo and got - asked > 0.004:
                overlapping.append(f"{thread} lock-wait {(got - asked) * 1000:.0f}")
        for _thread, gen, started, ended, _ in gcs:
            if started < hi and ended > lo and gen > 0:
                overlapping.append(f"gc{gen} {(ended - started) * 1000:.1f}")
        for at, late in stalls:
            if lo < at < hi:
                overlapping.append(f"stall {late * 1000:.0f}")
        for mode, started, ended, _frames, _done in data.get("checkpoint", []):
            if started < hi and ended > lo:
                overlapping.append(f"background {mode} {(ended - started) * 1000:.0f}")
        for started, ms in probe:
            if started < hi and started + ms / 1000 > lo and ms > 10:
                overlapping.append(f"disk probe fdatasync {ms:.0f}")
        print(f"  {row['total']:7.1f} = {row['to_intake']:6.1f} + {row['intake']:6.1f} + {row['to_wake']:5.1f} + "
              f"{row['to_process']:6.1f}  | " + "; ".join(overlapping))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--slowest", type=int, default=15)
    parser.add_argument("--keep", type=Path, help="keep the raw trace (JSON) here")
    parser.add_argument("--serve", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(*args.serve[:1], int(args.serve[1]), args.serve[2])
        return
    os.sched_setaffinity(0, {1})
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        target = Target(tmp)
        out = tmp / "trace.json"
        sent: dict[str, float] = {}
        probe = DiskProbe(tmp)
        with traced_server(target, out) as process:
            probe.thread.start()
            rng = random.Random(3)
            headers = {"Authorization": f"Bearer {target.token}", "Content-Type": "application/json"}
            with httpx.Client(base_url=f"http://127.0.0.1:{target.port}", headers=headers, timeout=30) as http:
                start = time.time()
                for index in range(int(args.rate * args.duration)):
                    wait = start + index / args.rate - time.time()
                    if wait > 0:
                        time.sleep(wait)
                    event = target.event(rng)
                    sent[event["event_id"]] = time.time()
                    assert http.post("/api/events/self-harm-attendance",
                                     content=json.dumps(event)).status_code == 202
            time.sleep(1.5)
            probe.stop.set()
            process.send_signal(signal.SIGUSR1)
            for _ in range(100):
                if out.exists():
                    break
                time.sleep(0.1)
            time.sleep(0.5)
        data = json.loads(out.read_text())
        if args.keep:
            args.keep.write_text(json.dumps({"trace": data, "sent": sent}))
    analyse(data, sent, args.slowest, probe.samples)
    load = os.getloadavg()
    print(f"load average at the end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
