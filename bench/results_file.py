"""What every benchmark writes down: the machine, the commit, the date, and its figures, appended."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def machine() -> str:
    def field(path: str, key: str) -> str:
        return next((line.split(":", 1)[1].strip() for line in Path(path).read_text().splitlines()
                     if line.startswith(key)), "?")

    return (f"{os.cpu_count()} cores ({field('/proc/cpuinfo', 'model name')}), "
            f"{field('/proc/meminfo', 'MemTotal')} RAM, Python {platform.python_version()}")


def append(results: Path, title: str, lines: list[str]) -> str:
    """Append a dated section headed with the commit; returns the text written."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=ROOT).stdout.strip()
    section = f"\n## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit {commit}\n\n" + "".join(
        f"- {line}\n" for line in lines)
    if not results.exists():
        results.write_text(f"# {title}\n")
    with results.open("a", encoding="utf-8") as handle:
        handle.write(section)
    return section
