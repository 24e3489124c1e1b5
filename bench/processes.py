"""Starting a local `safeguard` server process and waiting on it, shared by the benchmarks and the tests.

A free loopback port, a wait until the process answers /health (failing early, with its log's tail, if it exits),
and a wait for any condition with a deadline instead of a fixed sleep. The tests import this module; it
imports nothing from the tests, so the benchmarks never depend on them.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import httpx

from scripts.services.services import free_port  # the one definition; importable here as it is in the tests

__all__ = ["free_port", "wait_for", "wait_healthy"]

T = TypeVar("T")


def wait_for(condition: Callable[[], T], *, timeout: float, interval: float = 0.1, what: str = "the condition",
             explain: Callable[[], str] | None = None) -> T:
    """Poll `condition` until it returns something true, and return that; after `timeout` seconds raise
    TimeoutError naming `what` (and `explain()`'s text, e.g. a log's tail)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            detail = f"\n{explain()}" if explain is not None else ""
            raise TimeoutError(f"{what} did not happen within {timeout:.0f}s{detail}")
        time.sleep(interval)


def log_tail(log: Path | None, chars: int = 3000) -> str:
    if log is None:
        return "(no log kept)"
    try:
        return log.read_text(errors="replace")[-chars:]
    except OSError as exc:
        return f"(no log at {log}: {exc})"


def wait_healthy(port: int, process: subprocess.Popen[bytes], *, timeout: float = 180,
                 log: Path | None = None) -> None:
    """Wait until the server on 127.0.0.1:port answers 200 on /health. Raises RuntimeError at once if the
    process exits first, TimeoutError after `timeout` seconds (generous: start-up is slow on a loaded machine);
    both carry the tail of `log`."""

    def healthy() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode} before it answered /health\n"
                               f"{log_tail(log)}")
        try:
            return httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(healthy, timeout=timeout, interval=0.1, what=f"/health answering on port {port}",
             explain=lambda: log_tail(log))
