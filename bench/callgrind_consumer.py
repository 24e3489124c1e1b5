"""Instructions per processed event (valgrind callgrind): the consumer's cost, with none of the machine's noise.

CPU milliseconds per event move by a third between identical runs on a shared two-core machine; instruction
counts do not (two runs of the same code differ by under 0.3 %). This script runs itself under
``valgrind --tool=callgrind --instr-atstart=no``:

- the child builds the embedded runtime's objects as ``safeguard run`` does (demo reference data, the matcher
  warmed up, ``freeze_start_up_objects()``), processes ``--warm-up`` events, stores ``--events`` more
  (self-harm attendances and missing reports alternating), then signals the parent;
- the parent turns instrumentation on (``callgrind_control -i on``) and the child processes the stored events,
  ``--batch`` at a time (``IntakeConsumer.run_once(limit=...)``: 1 is what a low rate makes, 64 what a backlog
  makes), then waits for the parent to turn instrumentation off again before it shuts down (the store's
  disposal and the interpreter's finalisation are not the processing's: measured before 2026-12-03 22:30, they
  added about 0.35 M per event at 128 events);
- the parent reads the program's total instructions and appends them per event to the results file.

Compare two commits by running the script of one tree with ``PYTHONPATH`` pointing at the other's code.

    .venv/bin/python bench/callgrind_consumer.py [--events 100] [--batch 1] [--label before] [--results F]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parent.parent))  # after PYTHONPATH: another tree's code to measure
from bench.results_file import append, machine  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def child(events: int, warm_up: int, batch: int, ready: Path, done: Path) -> None:
    """Runs under callgrind: the set-up uninstrumented, then the processing once the parent turned it on."""
    from bench.bench_intake import Target

    stopped = done.with_name("stopped")
    with tempfile.TemporaryDirectory() as tmp_name:
        target = Target(Path(tmp_name))
        os.environ.update(target.env)
        from pipeline.bootstrap import build
        from pipeline.runtimes.embedded import EmbeddedRuntime
        from pipeline.runtimes.memory import freeze_start_up_objects
        from pipeline.service.intake import Submission
        from pipeline.settings import Settings

        services = build(Settings())
        services.ctx.warm_up(services.store)
        runtime = EmbeddedRuntime(services)
        freeze_start_up_objects()  # as both runtimes do after start-up
        rng = random.Random(7)
        submissions = [Submission(*(("missing-reported", json.dumps(target.missing_report(rng)).encode())
                                    if i % 2 else
                                    ("self-harm-attendance", json.dumps(target.event(rng)).encode())),
                                  source="cli") for i in range(warm_up + events)]
        for submission in submissions[:warm_up]:
            services.intake.submit_many([submission])
            runtime.consumer.run_once()
        for submission in submissions[warm_up:]:
            services.intake.submit_many([submission])
        ready.write_text("ready")
        time.sleep(3)  # the parent turns instrumentation on meanwhile
        processed = 0
        while processed < events:
            handled = runtime.consumer.run_once(limit=batch)
            if not handled:
                raise SystemExit(f"only {processed} of {events} events were processed")
            processed += handled
        done.write_text(str(processed))
        parent, deadline = os.getppid(), time.monotonic() + 300
        while not stopped.exists():  # the parent turns instrumentation off meanwhile
            if os.getppid() != parent or time.monotonic() > deadline:
                raise SystemExit("the parent never turned instrumentation off")
            time.sleep(0.05)
        services.store.dispose()


def _wait_for(signal: Path, process: subprocess.Popen[str], failure: str) -> None:
    """Until the child writes ``signal``; SystemExit with ``failure`` and its error output if it ends first."""
    while not signal.exists():
        if process.poll() is not None:
            _, errors = process.communicate()
            raise SystemExit(f"{failure} ({process.returncode}):\n{errors[-2000:]}")
        time.sleep(0.5)


def measure(events: int, warm_up: int, batch: int) -> int:
    """The instructions the child's processing took."""
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        ready, done, out = tmp / "ready", tmp / "done", tmp / "callgrind.out"
        process = subprocess.Popen(
            ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}", sys.executable,
             __file__, "--child", str(events), str(warm_up), str(batch), str(ready), str(done)],
            env={**os.environ, "PYTHONHASHSEED": "0"}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            _wait_for(ready, process, "the child ended before its events were stored")
            subprocess.run(["callgrind_control", "-i", "on", str(process.pid)], check=True, capture_output=True)
            _wait_for(done, process, "the child failed")
            subprocess.run(["callgrind_control", "-i", "off", str(process.pid)], check=True, capture_output=True)
        finally:
            (tmp / "stopped").write_text("stopped")  # the child shuts down, whatever happened here
        try:
            _, errors = process.communicate(timeout=600)
        except subprocess.TimeoutExpired:
            process.kill()
            raise SystemExit("the child did not shut down within 10 minutes") from None
        if process.returncode != 0 or not done.exists():
            raise SystemExit(f"the child failed ({process.returncode}):\n{errors[-2000:]}")
        # "totals:", not "summary:", which callgrind writes as 0 when instrumentation is off at the end.
        totals = next(line for line in out.read_text().splitlines() if line.startswith("totals:"))
        return int(re.split(r"\s+", totals.split(":", 1)[1].strip())[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100, help="events measured (after the warm-up)")
    parser.add_argument("--warm-up", type=int, default=20)
    parser.add_argument("--batch", type=int, default=1, help="events per consumer batch (run_once's limit)")
    parser.add_argument("--label", default="")
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results" / "intake.md")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        events, warm_up, batch, ready, done = args.child
        child(int(events), int(warm_up), int(batch), Path(ready), Path(done))
        return
    instructions = measure(args.events, args.warm_up, args.batch)
    import pipeline

    per_event = instructions / args.events / 1e6
    label = f" ({args.label})" if args.label else ""
    print(f"{per_event:.3f} M instructions per event{label}")
    print(append(args.results, "Intake benchmark results", [
        f"callgrind{label}: {per_event:.3f} M instructions per processed event, {args.events} events "
        f"(self-harm attendances and missing reports alternating) {args.batch} per batch, "
        f"`bench/callgrind_consumer.py --events {args.events} --batch {args.batch}`; the code measured: "
        f"{Path(pipeline.__file__).parent.parent}",
        f"machine: {machine()}; instruction counts do not depend on the machine's load",
        "settings: as `safeguard run` (SQLite WAL, synchronous=FULL, 2,000 demo pupils, start-up objects frozen); "
        "PYTHONHASHSEED=0; only the processing instrumented",
    ]))


if __name__ == "__main__":
    main()
