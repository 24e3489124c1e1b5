"""Benchmark: a large council's nightly reference load through `safeguard load`, as its cron job runs it.

Demo data of N pupils (`safeguard demo-data`), then each `safeguard load` in turn into a fresh SQLite file (as
shipped: WAL, synchronous=FULL), each a process of its own pinned to one core with taskset: schools, teams, the
pupils (first load), the same pupils again (the usual night: nothing changed), ehe and involvements. Wall time and
peak memory (``/usr/bin/time``) of each, appended to bench/results/reference_load.md.

    .venv/bin/python bench/bench_reference_load.py [--pupils 100000] [--core 0]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.results_file import append, machine  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SAFEGUARD = str(ROOT / ".venv" / "bin" / "safeguard")


def timed(core: int, env: dict[str, str], *args: str) -> tuple[float, int, str]:
    """Seconds, peak resident kB and the last line of output of one pinned `safeguard` run."""
    result = subprocess.run(["taskset", "-c", str(core), "/usr/bin/time", "-f", "%e %M", SAFEGUARD, *args],
                            capture_output=True, text=True, env=env, check=True)
    seconds, peak = result.stderr.strip().splitlines()[-1].split()
    return float(seconds), int(peak), result.stdout.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pupils", type=int, default=100_000)
    parser.add_argument("--core", type=int, default=0)
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results" / "reference_load.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        env = {**os.environ, "SAFEGUARD_DATABASE_URL": f"sqlite:///{tmp / 'load.db'}"}
        env.pop("SAFEGUARD_CONFIG", None)
        subprocess.run([SAFEGUARD, "demo-data", "--out", str(tmp / "demo"), "--pupils", str(args.pupils)],
                       env=env, check=True, capture_output=True)
        rows = []
        for label, kind in (("schools", "schools"), ("teams", "teams"), ("pupils, first load", "pupils"),
                            ("pupils, again (nothing changed)", "pupils"), ("ehe", "ehe"),
                            ("involvements", "involvements")):
            seconds, peak, said = timed(args.core, env, "load", kind, str(tmp / "demo" / f"{kind}.csv"))
            rows.append(f"| {label} | {said.split(' (into')[0]} | {seconds:.1f} | {peak / 1024:.0f} |")
            print(rows[-1], flush=True)
    table = ["", "| load | what it said | seconds | peak MB |", "|---|---|---:|---:|", *rows]
    append(args.results, "Reference loads (`safeguard load`, a large council's nightly files)", [
        f"`bench/bench_reference_load.py --pupils {args.pupils:,}`: demo data, each `safeguard load` a process of "
        f"its own pinned to core {args.core}, into a fresh SQLite file (WAL, synchronous=FULL, as shipped)",
        f"machine: {machine()}",
    ])
    with args.results.open("a", encoding="utf-8") as handle:
        handle.write("\n".join(table) + "\n")


if __name__ == "__main__":
    main()
