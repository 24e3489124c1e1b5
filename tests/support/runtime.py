"""`safeguard run` as a real child process on SQLite, for the tests that kill it, restart it or change its data
under it (tests/integration/test_restart.py, test_delivery_restart.py, test_reference_reload.py).

Waits are on conditions with generous deadlines (bench/processes.py), never fixed sleeps: these tests run on a
shared, loaded machine.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import yaml

from bench.processes import free_port, wait_healthy
from pipeline.adapters.store import Store
from tests.support.world import REFERENCE

CLI = [sys.executable, "-m", "pipeline.entrypoints.cli"]
REFERENCE_KINDS = ("schools", "teams", "pupils", "ehe", "involvements")
START_TIMEOUT = 180.0  # seconds until /health answers: an interpreter's imports are slow on a loaded machine
STOP_TIMEOUT = 60.0


class Runner:
    """One database and configuration, and `safeguard run` on it, started, killed and restarted at will."""

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
        self.log = tmp / "run.log"
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

    def prepare(self) -> tuple[str, Store]:
        """The test world's reference data loaded and a producer added: the producer's token, and the store."""
        for kind in REFERENCE_KINDS:
            (self.tmp / f"{kind}.csv").write_text(REFERENCE[kind])
            self.load(kind, self.tmp / f"{kind}.csv")
        token = self.cli("users", "add", "--role", "producer", "--email", "h@test.example").strip().splitlines()[-1]
        return token, Store(self.env["SAFEGUARD_DATABASE_URL"])

    def start(self) -> None:
        self.process = subprocess.Popen([*CLI, "run", "--port", str(self.port)], env=self.env,
                                        stdout=self.log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)
        wait_healthy(self.port, self.process, timeout=START_TIMEOUT, log=self.log)

    def kill(self) -> None:
        """SIGKILL, a real crash: no handler runs, nothing is flushed."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=STOP_TIMEOUT)

    def terminate(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=STOP_TIMEOUT)

    def cleanup(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=STOP_TIMEOUT)
