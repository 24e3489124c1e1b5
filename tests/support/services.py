"""The tests' one way to run scripts/services/services.py (start, env, stop-kafka, start-kafka): in the test
services directory ($SAFEGUARD_TEST_SERVICES_DIR), with a bounded time, and a failure that carries the tail
of the script's stdout and stderr, so a broker that would not restart says why in the test report."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SERVICES_SCRIPT = Path(__file__).resolve().parent.parent.parent / "scripts" / "services" / "services.py"
OUTPUT_TAIL = 4000


def services_dir() -> str:
    return os.environ.get("SAFEGUARD_TEST_SERVICES_DIR", f"/tmp/safeguard-test-services-{os.getuid()}")


class ServicesScriptFailed(RuntimeError):
    """services.py exited non-zero or ran out of time; the message holds its output's tail."""


def _tail(text: str | bytes | None) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return (text or "").strip()[-OUTPUT_TAIL:] or "(nothing)"


def run_services(action: str, timeout: float = 300) -> str:
    """Run `services.py ACTION` for the tests' services; its stdout. Raises ServicesScriptFailed with the
    tails of stdout and stderr when it fails or does not finish within `timeout` seconds."""
    env = {**os.environ, "SAFEGUARD_SERVICES_DIR": services_dir()}
    command = [sys.executable, str(SERVICES_SCRIPT), action]
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise ServicesScriptFailed(
            f"services.py {action} did not finish within {timeout:.0f}s\n--- stdout ---\n{_tail(exc.stdout)}\n"
            f"--- stderr ---\n{_tail(exc.stderr)}") from None
    if done.returncode != 0:
        raise ServicesScriptFailed(
            f"services.py {action} exited {done.returncode}\n--- stdout ---\n{_tail(done.stdout)}\n"
            f"--- stderr ---\n{_tail(done.stderr)}")
    return done.stdout
