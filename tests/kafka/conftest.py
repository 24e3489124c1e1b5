"""Kafka tier: a real broker and a real PostgreSQL (started once per run), a worker as a child process,
and per-test topics (a prefix), consumer group and database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer
from sqlmodel import func, select

from pipeline import codec
from pipeline.adapters import tables as t
from pipeline.adapters.store import Store
from pipeline.service.reference import load
from tests.support.services import run_services
from tests.support.world import REFERENCE

CLI = [sys.executable, "-m", "pipeline.entrypoints.cli"]


@dataclass
class Deployment:
    env: dict[str, str]
    prefix: str
    store: Store
    tmp: Path
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def bootstrap(self) -> str:
        return self.env["SAFEGUARD_KAFKA_BOOTSTRAP"]

    def start_worker(self, command: list[str] | None = None, env: dict[str, str] | None = None
                     ) -> subprocess.Popen[bytes]:
        log = (self.tmp / f"worker-{len(self.workers)}.log").open("ab")
        process = subprocess.Popen(command or [*CLI, "worker"], env={**self.env, **(env or {})}, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        self.workers.append(process)
        return process

    def add_user(self, role: str, email: str, *extra: str) -> str:
        """A user of this deployment's database; its API token."""
        added = subprocess.run([*CLI, "users", "add", "--role", role, "--email", email, *extra], env=self.env,
                               capture_output=True, text=True, check=True)
        return added.stdout.split()[-1]

    def start_api(self) -> str:
        """`safeguard api` on a free port, once healthy; its base URL."""
        import socket

        import httpx

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        log = (self.tmp / f"api-{port}.log").open("ab")
        api = subprocess.Popen([*CLI, "api", "--port", str(port)], env=self.env, start_new_session=True,
                               stdout=log, stderr=subprocess.STDOUT)
        self.workers.append(api)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    return base
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and api.poll() is None, "the API did not start"
            time.sleep(0.2)

    def broker(self, action: str) -> None:
        """``stop-kafka`` or ``start-kafka`` (same port and data) through scripts/services/services.py; a
        failure carries the script's output."""
        run_services(action, timeout=300)

    def producer(self) -> KafkaProducer:
        return KafkaProducer(bootstrap_servers=self.bootstrap, acks="all")

    def send(self, producer: KafkaProducer, event_type: str, event: dict[str, Any] | bytes, key: bytes = b"k") -> Any:
        """The record sent; its future (``flush`` does not raise for a record the broker refused: ``.get()`` does)."""
        value = event if isinstance(event, bytes) else codec.encode(event_type, codec.from_json(event_type, event))
        return producer.send(self.prefix + event_type, key=key, value=value)

    def count(self, model: type, *where: Any) -> int:
        with self.store.read() as session:
            return int(session.exec(select(func.count()).select_from(model).where(*where)).one())

    def wait_for(self, condition: Callable[[], bool], timeout: float = 90,
                 progress: Callable[[], object] | None = None) -> None:
        """Until ``condition`` holds; on a timeout, the failure says where things stood: the stored events by
        status, ``progress()`` if given, and the tail of each process's log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.25)
        try:
            with self.store.read() as session:
                by_status = select(t.Event.status, func.count()).group_by(t.Event.status)
                statuses: object = dict(session.exec(by_status).all())
        except Exception as error:  # noqa: BLE001 - the timeout is the failure to report, not this
            statuses = f"unread ({type(error).__name__})"
        logs = "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(self.tmp.glob("*.log")))
        raise AssertionError(f"timed out waiting after {timeout} s; events stored by status: {statuses}"
                             f"{f'; {progress()}' if progress else ''}; logs:\n{logs}")

    def records(self, topic: str, timeout_ms: int = 8000) -> list[Any]:
        consumer = KafkaConsumer(self.prefix + topic, bootstrap_servers=self.bootstrap,
                                 auto_offset_reset="earliest", consumer_timeout_ms=timeout_ms,
                                 group_id=f"reader-{uuid.uuid4().hex[:8]}")
        try:
            return list(consumer)
        finally:
            consumer.close()


@pytest.fixture
def deployment(real_services: dict[str, str], postgres_url: str, tmp_path: Path) -> Iterator[Deployment]:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    env = {**os.environ, "SAFEGUARD_KAFKA_BOOTSTRAP": real_services["SAFEGUARD_KAFKA_BOOTSTRAP"],
           "SAFEGUARD_DATABASE_URL": postgres_url, "SAFEGUARD_KAFKA_TOPIC_PREFIX": prefix,
           "SAFEGUARD_KAFKA_GROUP": f"workers-{prefix.rstrip('.')}", "SAFEGUARD_VAR_DIR": str(tmp_path / "var"),
           "SAFEGUARD_LOG_LEVEL": "WARNING"}
    env.pop("SAFEGUARD_CONFIG", None)
    store = Store(postgres_url)
    store.migrate()
    from datetime import UTC, datetime

    with store.unit_of_work() as port:
        for kind, text in REFERENCE.items():
            load(port, kind, text, datetime.now(UTC))
    from pipeline.adapters.kafka import ensure_topics

    ensure_topics(env["SAFEGUARD_KAFKA_BOOTSTRAP"], 4, prefix)
    deployment = Deployment(env, prefix, store, tmp_path)
    try:
        yield deployment
    finally:
        for process in deployment.workers:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        store.dispose()
