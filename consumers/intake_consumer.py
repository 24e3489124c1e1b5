"""The embedded runtime's consumer: takes accepted events from the intake table, oldest first.

Each event is processed in its own transaction together with its processed-event mark, so a crash
mid-event leaves it ``accepted`` and it is processed (once) after restart. An event whose handler fails
stays ``accepted``: it is tried again later with a growing delay and, after the last try, held and the
front door alerted (``pipeline.service.retries``); the consumer moves on. On Kafka the workers run the
same consumer over failed events only (``retries_only``): the agents bring new ones.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from pipeline.adapters.event_queue import due_event_seqs
from pipeline.adapters.store import Store
from pipeline.service.dispatch import HANDLERS, process, resolve_ahead
from pipeline.service.handlers import Context, record_of
from pipeline.service.retries import RetryPolicy, record_failure

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
# Events per transaction when the consumer runs on its own: one commit (one fsync) and one claim for up to
# this many, while a lone event still goes at once (a batch is what is due, never a wait for more).
BATCH = 64


def system_clock() -> datetime:
    return datetime.now(UTC)


class IntakeConsumer:
    def __init__(self, store: Store, ctx: Context, clock: Clock = system_clock, *, retries_only: bool = False) -> None:
        self.store = store
        self.ctx = ctx
        self.clock = clock
        self.retries_only = retries_only
        self.retry = RetryPolicy.from_policy(ctx.policy)
        self.wake = threading.Event()
        self.on_committed: Callable[[], None] | None = None  # e.g. wake the relay: new notifications may be due

    def pending(self, limit: int) -> list[int]:
        with self.store.read_connection() as connection:
            return due_event_seqs(connection, self.clock(), limit, retries_only=self.retries_only)

    def run_once(self, limit: int = BATCH) -> int:
        """Process up to ``limit`` accepted events; returns how many were handled.

        The batch shares one transaction (one commit, one fsync), and is found and claimed in it by one query.
        First all together: the common case, with the fewest statements. If anything in it fails, the whole
        transaction rolls back and the batch runs again with each event in its own savepoint, so an event's
        effects and its processed mark still commit or roll back together, and only the failing event is put
        back for a later try while the rest commit.
        """
        seqs: list[int] = []
        try:
            return self._run_due(limit, seqs)
        except Exception as error:  # noqa: BLE001 - find which event it was, one savepoint each
            if not seqs:
                raise  # nothing was claimed: the claim itself failed (e.g. the database briefly locked)
            log.warning("a batch of %d events failed (%s); processing them one by one", len(seqs),
                        type(error).__name__)
            return self._run_isolated(seqs)

    def _run_due(self, limit: int, seqs: list[int]) -> int:
        try:
            with self.store.unit_of_work() as repo:
                events = repo.claim_due_events(self.clock(), limit, retries_only=self.retries_only)
                seqs.extend(event.seq for event in events if event.seq is not None)
                # Each handled event's record decoded once, here; what they will ask of the store asked together.
                records = [record_of(event) if event.event_type in HANDLERS else None for event in events]
                resolve_ahead(repo, self.ctx, [(event.event_type, record) for event, record in zip(events, records,
                                                                                                    strict=True)
                                               if record is not None and event.match_outcome is None])
                for event, record in zip(events, records, strict=True):
                    process(repo, event, self.ctx, self.clock(), record)
        finally:
            self.ctx.forget_ahead()
        return len(events)

    def _run_isolated(self, seqs: list[int]) -> int:
        failed: list[tuple[int, Exception]] = []
        handled = 0
        with self.store.unit_of_work() as repo:
            events = {event.seq: event for event in repo.claim_events(seqs)}
            for seq in seqs:
                event = events.get(seq)
                if event is None:
                    continue  # another consumer took it
                try:
                    with repo.savepoint():
                        process(repo, event, self.ctx, self.clock())
                    handled += 1
                except Exception as error:  # noqa: BLE001 - one bad event must never stop the pipeline
                    failed.append((seq, error))
        for failed_seq, failure in failed:
            self._failed(failed_seq, failure)
        return handled + len(failed)

    def _failed(self, seq: int, error: Exception) -> None:
        with self.store.unit_of_work() as repo:
            claimed = repo.claim_events([seq])
            if not claimed:
                return  # processed meanwhile, or held: nothing to record
            event = claimed[0]
            record_failure(repo, event, error, self.retry, self.clock())

    def run_forever(self, stop: threading.Event, poll_seconds: float = 0.2) -> None:
        """Batch after batch while a full one comes back; otherwise wait for ``wake`` (set by this process's
        intake after each commit that stored new events) or ``poll_seconds`` (other processes' events, retries
        falling due)."""
        while not stop.is_set():
            # Cleared before the batch's query: an event committed after the query sets it again, and one
            # committed before is in the batch, so no wake-up is lost and none costs an empty query.
            self.wake.clear()
            try:
                handled = self.run_once()
                if handled and self.on_committed is not None:
                    self.on_committed()
            except Exception as error:  # noqa: BLE001 - e.g. the database briefly locked; try again
                log.error("intake consumer loop error (%s)", type(error).__name__)
                handled = 0
            if handled < BATCH:
                self.wake.wait(poll_seconds)
