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
import time
from collections.abc import Callable
from datetime import UTC, datetime

from pipeline.adapters.event_queue import CommitWatch, due_event_seqs
from pipeline.adapters.store import Store
from pipeline.service.dispatch import HANDLERS, process, resolve_ahead
from pipeline.service.handlers import Context, record_of
from pipeline.service.retries import RetryPolicy, record_failure, without_tracebacks

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
# Events per transaction when the consumer runs on its own: one commit (one fsync) and one claim for up to
# this many, while a lone event still goes at once (a batch is what is due, never a wait for more).
BATCH = 64
# While a backlog lasts (each batch came back full) the next one is twice as large, up to this: a replay's
# commits (an fsync each) and per-batch work spread over more events. Bounded in size and in time, because a
# batch holds the write lock while it runs (the HTTP intake of the same process waits for it): one that took
# longer than BATCH_HOLD_SECONDS halves the next (not below BATCH); one under half of it may double.
BACKLOG_BATCH = 256
BATCH_HOLD_SECONDS = 0.5


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
                    failed.append((seq, without_tracebacks(error)))
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

    def run_forever(self, stop: threading.Event, poll_seconds: float = 0.2, watch_seconds: float | None = None
                    ) -> None:
        """Batch after batch while a full one comes back (growing to ``BACKLOG_BATCH`` while each takes under
        ``BATCH_HOLD_SECONDS``); otherwise wait for
        ``wake`` (set by this process's intake after each commit that stored new events) or ``poll_seconds``
        (retries falling due). With ``watch_seconds`` (SQLite), the wait also ends as soon as another process's
        commit stored due events (``CommitWatch``, looked at every ``watch_seconds``)."""
        watch = CommitWatch.over(self.store.engine) if watch_seconds else None
        limit = BATCH
        try:
            while not stop.is_set():
                # Cleared before the batch's query: an event committed after the query sets it again, and one
                # committed before is in the batch, so no wake-up is lost and none costs an empty query.
                self.wake.clear()
                if watch is not None:
                    self._look(watch)  # the baseline: a commit from here on, even during the batch, is seen
                started = time.monotonic()
                try:
                    handled = self.run_once(limit)
                    if handled and self.on_committed is not None:
                        self.on_committed()
                except Exception as error:  # noqa: BLE001 - e.g. the database briefly locked; try again
                    log.error("intake consumer loop error (%s)", type(error).__name__)
                    handled = 0
                if handled >= limit:
                    took = time.monotonic() - started
                    if took > BATCH_HOLD_SECONDS:
                        limit = max(limit // 2, BATCH)
                    elif took < BATCH_HOLD_SECONDS / 2:
                        limit = min(2 * limit, BACKLOG_BATCH)
                    continue
                limit = BATCH
                if watch is None or watch_seconds is None:
                    self.wake.wait(poll_seconds)
                else:
                    self._watch(watch, watch_seconds, poll_seconds)
        except BaseException as error:
            # Nothing else restarts this thread: say so loudly (type only) rather than stop processing quietly.
            log.critical("intake consumer stopped (%s): events are accepted but not processed",
                         type(error).__name__)
            raise
        finally:
            if watch is not None:
                watch.close()

    @staticmethod
    def _look(watch: CommitWatch) -> bool:
        """Whether a commit happened since the last look; False when the look failed (the poll still comes)."""
        try:
            return watch.changed()
        except Exception as error:  # noqa: BLE001 - e.g. the file briefly unavailable: the next look tries again
            log.error("intake consumer watch error (%s)", type(error).__name__)
            return False

    def _watch(self, watch: CommitWatch, every_seconds: float, poll_seconds: float) -> None:
        """Wait for ``wake``, another connection's commit that left due events, or ``poll_seconds``."""
        deadline = time.monotonic() + poll_seconds
        while not self.wake.wait(min(every_seconds, max(deadline - time.monotonic(), 0))):
            if time.monotonic() >= deadline:
                return
            try:
                if watch.changed() and self.pending(1):
                    return
            except Exception as error:  # noqa: BLE001 - the poll still comes; the next look tries again
                log.error("intake consumer watch error (%s)", type(error).__name__)
                self.wake.wait(max(deadline - time.monotonic(), 0))  # no tight loop while the error lasts
                return
