"""Test-only: `safeguard worker` with a fault in the self-harm handler, for the Kafka handler-failure test.

The handler raises for an attendance whose id starts with ``FAULTY-`` while the file named by the first
argument exists (deleting it is "the fix"). It lives under tests/, which is not installed: production never
reaches it.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from pipeline.adapters import tables as t
from pipeline.adapters.repository import Repository
from pipeline.entrypoints.cli import main
from pipeline.service import dispatch
from pipeline.service.handlers import Context

FAULTY_PREFIX = "FAULTY-"


def install_fault(flag: Path) -> None:
    original = dispatch.HANDLERS["self-harm-attendance"]

    def faulty(repo: Repository, event: t.Event, record: dict[str, Any], ctx: Context, now: datetime) -> None:
        if record["attendance_id"].startswith(FAULTY_PREFIX) and flag.exists():
            raise RuntimeError("a fault injected by the test")
        original(repo, event, record, ctx, now)

    dispatch.HANDLERS["self-harm-attendance"] = faulty


if __name__ == "__main__":
    install_fault(Path(sys.argv[1]))
    sys.argv = ["safeguard", "worker"]
    main()
