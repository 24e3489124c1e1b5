"""`safeguard produce EVENT_TYPE FILE`: each JSON line becomes one event through the durable intake.

Lines are stored in batches, one transaction each, so a large file is durable batch by batch: a line counts as
accepted only once its batch is committed (on disk). Bad lines are dead-lettered and reported by line number
with the reason (never the values); they never stop the run.

Into a running embedded runtime (`safeguard run` on the same SQLite database) the write lock is seldom free:
the runtime holds it while it works through a backlog, and SQLite's busy handler only polls for it. So the file
is read and validated in a thread of its own (``Intake.prepare``) while the main thread waits for the lock, and
each transaction stores everything validated by then (up to ``MAX_BATCH`` lines): the longer the wait, the
larger the batch, and the runtime has a whole batch to work through as soon as it commits. A batch whose
transaction the database refused (still locked after SQLite's busy timeout) stored nothing and is tried again.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline import codec
from pipeline.settings import Settings

if TYPE_CHECKING:
    from pipeline.bootstrap import Services
    from pipeline.service.intake import IntakeResult, Prepared

CHUNK = 250  # lines validated at a time by the reading thread
MAX_BATCH = 2_000  # lines stored in one transaction at most (the runtime works through them before it lets go)
READ_AHEAD = 40  # validated chunks kept waiting for the write lock at most (10,000 lines)
STORE_TRIES = 20  # a transaction refused by the database (locked past the busy timeout) is tried again
RETRY_PAUSE_SECONDS = 1.0


def _numbered_lines(handle: Iterator[bytes]) -> Iterator[tuple[int, bytes]]:
    for number, line in enumerate(handle, start=1):
        line = line.strip()
        if line:
            yield number, line


def produce_file(settings: Settings, event_type: str, file: Path) -> int:
    if event_type not in codec.EVENT_TYPES:
        print(f"unknown event type; use one of {', '.join(codec.EVENT_TYPES)}", file=sys.stderr)
        return 2
    if not file.is_file():
        print(f"no such file: {file}", file=sys.stderr)
        return 2
    from pipeline.bootstrap import build

    services = build(settings)
    if services.event_sender is not None:
        accepted, rejected = _send_to_kafka(services, event_type, file)
    else:
        try:
            accepted, rejected = _store_pipelined(services, event_type, file)
        except _Stopped as stopped:
            print(f"{stopped.accepted} accepted, {stopped.rejected} rejected before the database refused a batch "
                  f"{STORE_TRIES} times ({stopped.reason}); the lines after line {stopped.last_stored} were not "
                  f"stored: send the file again (lines already stored are answered as accepted, once)",
                  file=sys.stderr)
            return 1
    print(f"{accepted} accepted, {rejected} rejected")
    return 1 if rejected else 0


class _Stopped(Exception):
    def __init__(self, accepted: int, rejected: int, last_stored: int, reason: str) -> None:
        super().__init__(reason)
        self.accepted, self.rejected, self.last_stored, self.reason = accepted, rejected, last_stored, reason


def _report(numbers: list[int], results: list[IntakeResult]) -> tuple[int, int]:
    """Counts of accepted and rejected lines, each rejected line's reasons on stderr (fields, never values)."""
    accepted = rejected = 0
    for number, result in zip(numbers, results, strict=True):
        if result.accepted:
            accepted += 1
            continue
        rejected += 1
        if "detail" in result.body:  # e.g. the broker unavailable: not a fault of the line
            print(f"line {number}: {result.body['detail']}", file=sys.stderr)
        for error in result.body.get("errors", []):
            print(f"line {number}: {error['field'] or 'line'}: {error['message']}", file=sys.stderr)
    return accepted, rejected


def _send_to_kafka(services: Services, event_type: str, file: Path) -> tuple[int, int]:
    from pipeline.entrypoints.api import send_to_kafka
    from pipeline.service.intake import Submission

    accepted = rejected = 0
    with file.open("rb") as handle:
        lines = _numbered_lines(handle)
        while batch := list(islice(lines, CHUNK)):
            results = [send_to_kafka(services, Submission(event_type, line, "application/json", None, "cli"))
                       for _, line in batch]
            counts = _report([number for number, _ in batch], results)
            accepted, rejected = accepted + counts[0], rejected + counts[1]
    return accepted, rejected


class _Reader(threading.Thread):
    """Reads and validates the file chunk by chunk into ``chunks``; None at the end (or an error, re-raised by the
    storing thread)."""

    def __init__(self, services: Services, event_type: str, file: Path) -> None:
        super().__init__(name="produce-reader", daemon=True)
        self.intake = services.intake
        self.event_type = event_type
        self.file = file
        self.chunks: queue.Queue[tuple[list[int], Prepared] | BaseException | None] = queue.Queue(READ_AHEAD)
        self.stop = threading.Event()

    def run(self) -> None:
        from pipeline.service.intake import Submission

        try:
            with self.file.open("rb") as handle:
                lines = _numbered_lines(handle)
                while not self.stop.is_set() and (chunk := list(islice(lines, CHUNK))):
                    prepared = self.intake.prepare(
                        Submission(self.event_type, line, "application/json", None, "cli") for _, line in chunk)
                    self._put(([number for number, _ in chunk], prepared))
            self._put(None)
        except BaseException as error:  # noqa: BLE001 - handed to the storing thread, which re-raises it
            self._put(error)

    def _put(self, item: tuple[list[int], Prepared] | BaseException | None) -> None:
        while not self.stop.is_set():
            try:
                self.chunks.put(item, timeout=0.5)
                return
            except queue.Full:
                continue


def _store_pipelined(services: Services, event_type: str, file: Path) -> tuple[int, int]:
    from pipeline.ports.intake import StoreWriteFailed

    intake = services.intake
    intake.hand_over_records = False  # no consumer in this process takes them
    reader = _Reader(services, event_type, file)
    reader.start()
    accepted = rejected = last_stored = 0
    done = False
    try:
        while not done:
            batch: list[tuple[list[int], Prepared]] = []
            item = reader.chunks.get()
            size = 0
            while True:  # whatever is validated by now, up to MAX_BATCH lines
                if item is None:
                    done = True
                    break
                if isinstance(item, BaseException):
                    raise item
                batch.append(item)
                size += len(item[1])
                if size + CHUNK > MAX_BATCH:
                    break
                try:
                    item = reader.chunks.get_nowait()
                except queue.Empty:
                    break
            if not batch:
                continue
            for attempt in range(1, STORE_TRIES + 1):
                try:
                    results = intake.store_prepared([prepared for _, prepared in batch])
                    break
                except StoreWriteFailed as error:
                    if attempt == STORE_TRIES:
                        raise _Stopped(accepted, rejected, last_stored, str(error)) from error
                    print(f"the database refused a batch ({error}); trying it again", file=sys.stderr)
                    time.sleep(RETRY_PAUSE_SECONDS)
            numbers = [number for chunk_numbers, _ in batch for number in chunk_numbers]
            counts = _report(numbers, results)
            accepted, rejected = accepted + counts[0], rejected + counts[1]
            last_stored = numbers[-1]
    finally:
        reader.stop.set()
    return accepted, rejected
