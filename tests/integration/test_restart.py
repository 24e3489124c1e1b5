"""A restart loses nothing: `safeguard run` as a real child process, SIGKILLed mid-burst and again while
escalations are due, then stopped with SIGTERM. Afterwards every accepted event has one set of effects and
every due ladder step fired exactly once."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import yaml
from sqlmodel import select

from pipeline.adapters import tables as t
from pipeline.adapters.store import Store
from tests.support.world import AMELIA, REFERENCE, attendance

CLI = [sys.executable, "-m", "pipeline.entrypoints.cli"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Runner:
    def __init__(self, tmp: Path) -> None:
        config = tmp / "config.yaml"
        config.write_text(yaml.safe_dump({
            "timescales": {
                "self_harm_acknowledgement": "PT4S",
                "self_harm_acknowledgement_ladder": [
                    {"after": "PT0S", "notify": ["dsl", "deputy_dsl"], "action": "reminder"},
                    {"after": "PT2S", "notify": ["SCIES"], "action": "escalation"},
                ],
            },
            "runtime": {"sweep_interval_seconds": 1, "relay_interval_seconds": 1},
        }))
        self.env = {**os.environ, "SAFEGUARD_DATABASE_URL": f"sqlite:///{tmp / 'restart.db'}",
                    "SAFEGUARD_CONFIG": str(config), "SAFEGUARD_LOG_LEVEL": "WARNING"}
        self.tmp = tmp
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str, stdin: str | None = None) -> str:
        result = subprocess.run([*CLI, *args], env=self.env, capture_output=True, text=True, input=stdin,
                                timeout=120, check=True)
        return result.stdout

    def load(self, kind: str, path: Path) -> None:
        """`safeguard load` in this process, with the child's environment: the reference data is set-up here,
        not what is tested, and a new interpreter per file costs seconds."""
        from typer.testing import CliRunner

        from pipeline.entrypoints.cli import app

        result = CliRunner().invoke(app, ["load", kind, str(path)], env=self.env)
        assert result.exit_code == 0, result.stderr

    def start(self) -> None:
        self.process = subprocess.Popen([*CLI, "run", "--port", str(self.port)], env=self.env,
                                        stdout=(self.tmp / "run.log").open("ab"), stderr=subprocess.STDOUT,
                                        start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("safeguard run did not become healthy: " + (self.tmp / "run.log").read_text()[-2000:])

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def terminate(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=20)

    def cleanup(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)


def post_burst(port: int, token: str, events: list[dict[str, object]], accepted: list[str]) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {token}"},
                      timeout=5) as client:
        for event in events:
            try:
                response = client.post("/api/events/self-harm-attendance", json=event)
            except httpx.HTTPError:
                return  # the server was killed under us
            if response.status_code == 202:
                accepted.append(str(event["event_id"]))


def test_sigkill_mid_burst_and_mid_escalation_loses_and_repeats_nothing(tmp_path: Path) -> None:
    runner = Runner(tmp_path)
    for kind in ("schools", "teams", "pupils", "ehe", "involvements"):
        (tmp_path / f"{kind}.csv").write_text(REFERENCE[kind])
        runner.load(kind, tmp_path / f"{kind}.csv")
    token = runner.cli("users", "add", "--role", "producer", "--email", "h@test.example").strip().splitlines()[-1]
    events = [attendance(AMELIA) for _ in range(240)]
    accepted: list[str] = []
    try:
        runner.start()
        sender = threading.Thread(target=post_burst, args=(runner.port, token, events[:160], accepted))
        sender.start()
        while len(accepted) < 60:
            time.sleep(0.01)
        runner.kill()  # mid-burst
        sender.join(timeout=30)
        first_burst = len(accepted)
        assert 60 <= first_burst < 160

        runner.start()
        post_burst(runner.port, token, events[160:], accepted)
        time.sleep(3.5)  # some ladders are due now, some not yet
        runner.kill()  # mid-escalation
        runner.start()
        store = Store(runner.env["SAFEGUARD_DATABASE_URL"])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with store.read() as session:
                pending = session.exec(select(t.Event).where(t.Event.status == "accepted")).all()
                open_steps = session.exec(select(t.Deadline).where(t.Deadline.escalation_level < 2)).all()
                unrelayed = session.exec(select(t.Outbox).where(t.Outbox.relayed_at == None)).all()  # noqa: E711
            if not pending and not open_steps and not unrelayed:
                break
            time.sleep(0.5)
        assert runner.terminate() == 0  # SIGTERM stops it cleanly
    finally:
        runner.cleanup()

    with store.read() as session:
        rows = session.exec(select(t.Event)).all()
        notifications = session.exec(select(t.Notification)).all()
        deadlines = session.exec(select(t.Deadline)).all()
        audit = session.exec(select(t.AuditEntry).where(t.AuditEntry.action == "escalated")).all()
    by_id = Counter(row.event_id for row in rows)
    assert set(accepted) <= set(by_id) and all(count == 1 for count in by_id.values())
    assert all(row.status == "processed" for row in rows)
    alerts = Counter((n.event_id, n.recipient_role) for n in notifications if n.kind == "alert")
    assert set(alerts.values()) == {1} and len(alerts) == 2 * len(rows)  # DSL and deputy, once each
    assert len(deadlines) == len(rows)
    assert all(d.escalation_level == 2 and d.next_step_at is None for d in deadlines)
    fired = Counter((n.deadline_id, n.kind, n.recipient_role) for n in notifications if n.kind != "alert")
    assert set(fired.values()) == {1} and len(fired) == 3 * len(deadlines)  # dsl+deputy reminder, SCIES
    assert Counter(a.subject_id for a in audit if a.subject_id in {d.id for d in deadlines}) == \
        {d.id: 2 for d in deadlines}
    log = (tmp_path / "run.log").read_text()
    assert "Amelia" not in log and "Hartley" not in log
    json.dumps(accepted)  # the accepted ids are plain strings
