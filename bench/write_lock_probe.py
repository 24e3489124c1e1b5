"""Runs a `safeguard` command with SQLite's write lock and the producer's stages measured, for bench/replay_waits.py.

    python bench/write_lock_probe.py OUT.json run --port 8123
    python bench/write_lock_probe.py OUT.json produce self-harm-attendance events.jsonl

Installed before the store is built, so nothing of the product changes but what is timed:

- every DBAPI connection is a ``sqlite3.Connection`` subclass whose cursors time ``BEGIN IMMEDIATE`` (the wait
  for the database's write lock: SQLite's busy handler sleeps inside it while another process holds it),
  ``COMMIT`` (the fsync, and any automatic checkpoint), the hold (the lock taken to the commit returned) and
  ``PRAGMA wal_checkpoint``, by thread;
- the process's own write lock (``Store._write_lock``, which its threads queue on before SQLite's), its waits;
- in `safeguard produce`, thread CPU by stage: start-up (the interpreter to the first line read), decode (the
  codec and the rules), row (content hash and stored JSON), store (the transaction), the rest (reading lines,
  batching, answers).

At exit (SIGTERM included) the figures are written to OUT.json.
"""

from __future__ import annotations

import atexit
import functools
import inspect
import json
import signal
import sqlite3
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

STARTED_CPU = time.process_time()  # the interpreter's own start-up is before this: /proc gives the whole
_lock = threading.Lock()
figures: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))


def _add(thread: str, key: str, seconds: float) -> None:
    with _lock:
        row = figures[thread]
        row[key + "_s"] += seconds
        row[key + "_n"] += 1
        row[key + "_max_s"] = max(row[key + "_max_s"], seconds)
        if key == "begin_wait" and seconds > 0.001:
            row["begin_waited_n"] += 1


class ProbeCursor(sqlite3.Cursor):
    def execute(self, sql: str, *args: Any) -> Any:  # type: ignore[override]
        head = sql[:24].upper()
        if not (head.startswith("BEGIN IMMEDIATE") or head.startswith("COMMIT") or head.startswith("ROLLBACK")
                or head.startswith("PRAGMA WAL_CHECKPOINT")):
            return super().execute(sql, *args)
        thread = threading.current_thread().name
        started = time.perf_counter()
        try:
            return super().execute(sql, *args)
        finally:
            ended = time.perf_counter()
            connection: Any = self.connection
            if head.startswith("BEGIN"):
                _add(thread, "begin_wait", ended - started)
                connection.locked_at = ended
            elif head.startswith("PRAGMA"):
                _add(thread, "checkpoint", ended - started)
            else:
                if head.startswith("COMMIT"):
                    _add(thread, "commit", ended - started)
                locked_at = getattr(connection, "locked_at", None)
                if locked_at is not None:
                    _add(thread, "hold", ended - locked_at)
                    connection.locked_at = None


class ProbeConnection(sqlite3.Connection):
    locked_at: float | None = None

    def cursor(self, factory: Any = ProbeCursor) -> Any:  # type: ignore[override]
        return super().cursor(factory)

    def execute(self, sql: str, *args: Any) -> Any:  # type: ignore[override]
        return self.cursor().execute(sql, *args)

    def commit(self) -> None:  # SQLAlchemy ends its transactions through these, not by statements
        if self.in_transaction:
            self.cursor().execute("COMMIT")

    def rollback(self) -> None:
        if self.in_transaction:
            self.cursor().execute("ROLLBACK")


class TimedLock:
    """The process's write lock, its waits timed by thread."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __enter__(self) -> bool:
        started = time.perf_counter()
        taken = self.inner.__enter__()
        _add(threading.current_thread().name, "process_lock_wait", time.perf_counter() - started)
        return bool(taken)

    def __exit__(self, *exc: Any) -> None:
        self.inner.__exit__(*exc)


stage_cpu: dict[str, float] = defaultdict(float)
_local = threading.local()


def _thread_stack() -> list[list[Any]]:
    stack: list[list[Any]] | None = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
    return stack


def _staged(owner: Any, attribute: str, name: str) -> None:
    original = getattr(owner, attribute)

    @functools.wraps(original)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        _stack = _thread_stack()
        now = time.thread_time()
        if _stack:
            stage_cpu[_stack[-1][0]] += now - _stack[-1][1]
        _stack.append([name, now])
        try:
            return original(*args, **kwargs)
        finally:
            now = time.thread_time()
            frame = _stack.pop()
            stage_cpu[frame[0]] += now - frame[1]
            if _stack:
                _stack[-1][1] = now

    static = isinstance(inspect.getattr_static(owner, attribute), staticmethod)
    setattr(owner, attribute, staticmethod(wrapped) if static else wrapped)


def install() -> None:
    original_run = threading.Thread.run

    def run(self: threading.Thread) -> None:
        try:
            original_run(self)
        finally:
            _add(self.name, "thread_cpu", time.thread_time())

    threading.Thread.run = run  # type: ignore[method-assign]
    import sqlite3.dbapi2  # what SQLAlchemy's pysqlite dialect connects through

    probed = functools.partial(sqlite3.dbapi2.connect, factory=ProbeConnection)
    sqlite3.connect = sqlite3.dbapi2.connect = probed  # type: ignore[assignment]
    from pipeline.adapters import store as store_module

    original_init = store_module.Store.__init__

    def init(self: Any, url: str) -> None:
        original_init(self, url)
        if self._write_lock is not None:
            self._write_lock = TimedLock(self._write_lock)

    store_module.Store.__init__ = init  # type: ignore[method-assign]
    import consumers.intake_consumer as consumer_module

    run_once = consumer_module.IntakeConsumer.run_once

    def timed_run_once(consumer: Any, *args: Any, **kwargs: Any) -> int:
        started = time.perf_counter()
        handled = run_once(consumer, *args, **kwargs)
        if handled:  # a batch's wall time; the rest of the consumer's time it had nothing to do (or a poll)
            _add(threading.current_thread().name, "batch", time.perf_counter() - started)
            _add(threading.current_thread().name, "events", handled)
        return handled

    consumer_module.IntakeConsumer.run_once = timed_run_once  # type: ignore[method-assign]
    from pipeline.service.intake import Intake

    for attribute, name in (("_decode", "decode"), ("_row", "row"), ("_store", "store")):
        _staged(Intake, attribute, name)
    import producers.cli_producer as producer

    original_produce = producer.produce_file

    def produce_file(*args: Any, **kwargs: Any) -> int:
        _stack = _thread_stack()
        stage_cpu["start-up (imports, build, to the first line)"] = time.process_time()
        _stack.append(["the rest (reading lines, batching, answers, waiting)", time.thread_time()])
        try:
            return original_produce(*args, **kwargs)
        finally:
            frame = _stack.pop()
            stage_cpu[frame[0]] += time.thread_time() - frame[1]

    producer.produce_file = produce_file  # type: ignore[assignment]
    if hasattr(producer, "_Reader"):  # since branch replay the lines are read and validated in a thread of their own
        _staged(producer._Reader, "run", "reading lines, making submissions (the reading thread)")


def write(out: Path) -> None:
    with _lock:
        figures[threading.current_thread().name]["thread_cpu_s"] += time.thread_time()
        data = {"threads": {name: dict(row) for name, row in figures.items()}, "stages": dict(stage_cpu),
                "process_cpu_s": time.process_time()}
    out.write_text(json.dumps(data, indent=1))


def main() -> None:
    out = Path(sys.argv[1])
    install()
    atexit.register(write, out)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0)) if sys.argv[2] != "run" else None
    sys.argv = ["safeguard", *sys.argv[2:]]
    from pipeline.entrypoints.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
