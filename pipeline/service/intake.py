"""The durable intake: the one way an event enters the pipeline (HTTP and ``safeguard produce`` alike).

``submit`` validates through the codec, dead-letters anything bad (with field paths and reasons, never
values), recognises a repeated ``event_id`` (same content from the same producer: its current status;
different content, or another producer's id: 409), and otherwise stores the event as ``accepted``. It
returns only after the commit, so an accepted event is on disk. Processing happens afterwards, in the intake
consumer.

On Kafka, ``send_to_topic`` validates the same way, sends the event (with its producer in a header) and,
once the broker acknowledged it, stores the same ``accepted`` row as the intake record, before the 202: so
from its 202 the event answers to its producer and to managers, and the worker processes that row. An
unreachable broker is a 503 the producer retries after ``RETRY_AFTER_SECONDS``; nothing is stored then.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pipeline import codec
from pipeline.adapters.metrics import EVENTS_DEAD_LETTERED
from pipeline.adapters.publisher import BrokerUnavailable, EventSender
from pipeline.domain.events import rule_errors
from pipeline.ports.intake import EventIdTaken, IntakeRow, IntakeStore, StoreWriteFailed
from pipeline.ports.records import DeadLetterRecord
from pipeline.ports.store import EffectWrites, ReferenceReads
from pipeline.service.handlers import DEAD_LETTERS

log = logging.getLogger(__name__)

AVRO_CONTENT_TYPE = "application/avro"
DEAD_LETTER_KEEP_BYTES = 1024 * 1024
RETRY_AFTER_SECONDS = 5
UNAVAILABLE = {"detail": "the event broker is unavailable; send the event again shortly"}


@dataclass(frozen=True)
class Submission:
    event_type: str
    body: bytes
    content_type: str = "application/json"
    producer_id: int | None = None
    source: str = "http"


@dataclass(frozen=True)
class Pending:
    """A valid submission waiting for its transaction: where its answer goes, its row, its decoded record."""

    index: int
    row: IntakeRow
    record: dict[str, Any]


@dataclass
class Prepared:
    """Validated submissions not yet stored: an answer for each refused one (None for the rest, answered once
    stored), the valid ones waiting for their transaction, and the dead letters to keep with them."""

    results: list[IntakeResult | None] = field(default_factory=list)
    pending: list[Pending] = field(default_factory=list)
    dead: list[Refused] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.results)


@dataclass(frozen=True)
class Refused:
    """A submission refused at intake, to be kept as a dead letter (its reason names fields, never values)."""

    source: str
    event_type: str
    reason: str
    payload: bytes
    producer_id: int | None
    event_id: str | None


@dataclass(frozen=True)
class IntakeResult:
    status_code: int  # 202 accepted or known, 404 unknown type, 409 conflict, 422 invalid, 503 broker away
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def accepted(self) -> bool:
        return self.status_code == 202


def _errors(error: codec.CodecError) -> list[dict[str, str]]:
    return [{"field": e.field, "message": e.message} for e in error.errors]


def _is_avro(submission: Submission) -> bool:
    return submission.content_type.split(";")[0].strip().lower() == AVRO_CONTENT_TYPE


def _rejected_event_id(submission: Submission) -> str | None:
    """The event_id of a rejected JSON body that parsed and had a UUID one, so its producer can ask for it."""
    if _is_avro(submission):
        return None
    try:
        parsed = json.loads(submission.body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None
    event_id = parsed.get("event_id") if isinstance(parsed, dict) else None
    if isinstance(event_id, str) and codec.is_uuid(event_id):
        return event_id.lower()
    return None


def context_errors(port: ReferenceReads, event_type: str, record: dict[str, Any]) -> list[dict[str, str]]:
    """What the store knows makes this event impossible to process: a trigger meeting for a child_id the
    pipeline never issued. Refused at intake (never accepted, a dead letter), rather than accepted and held."""
    if event_type == "trigger-meeting-recorded" and not port.is_known_child(record["child_id"]):
        return [{"field": "child_id", "message": "not a child id this pipeline issued"}]
    return []


def publish_dead_letter(port: EffectWrites, letter: DeadLetterRecord, topic: str | None,
                        partition: int | None = None, offset: int | None = None) -> None:
    """An outbox row for the `dead-letters` output topic (schemas/dead-letter.avsc), in the same transaction as
    the dead letter. Its headers carry the reason and where the event came from (topic, and for a Kafka record
    its partition and offset; an HTTP or CLI submission has neither). The record's ``payload`` is left empty:
    the producer's bytes hold personal data, so they stay in the store's dead-letter row (``dead_letter_id``),
    and a Kafka record can be read again at the offset the headers give."""
    headers: dict[str, Any] = {"reason": letter.reason}
    if topic:
        headers["topic"] = topic
    if partition is not None and offset is not None:
        headers["partition"], headers["offset"] = partition, offset
    port.outbox(letter.received_at, DEAD_LETTERS, letter.id, {
        "dead_letter_id": letter.id, "received_at": letter.received_at.isoformat(), "source": letter.source,
        "event_type": letter.event_type, "reason": letter.reason, "payload": "", "_headers": headers,
    })


def keep_dead_letter(port: EffectWrites, refused: Refused) -> DeadLetterRecord:
    """The dead letter of a refused submission, and its record for the `dead-letters` topic, in ``port``'s
    transaction."""
    letter = port.add_dead_letter(datetime.now(UTC), refused.source, refused.event_type, refused.reason,
                                  refused.payload, producer_id=refused.producer_id, event_id=refused.event_id)
    publish_dead_letter(port, letter, letter.event_type)
    return letter


class Intake:
    def __init__(self, store: IntakeStore, max_body_bytes: int = 65536, group_commit_max: int = 256) -> None:
        self.store = store
        self.max_body_bytes = max_body_bytes
        self.group_commit_max = group_commit_max
        self._waiting: queue.SimpleQueue[tuple[Submission, Future[IntakeResult]]] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._writer_lock = threading.Lock()
        # Called in the committing thread after each commit that stored new events: the embedded runtime wakes
        # its consumer with it, with no hop through the request's event loop.
        self.on_stored: Callable[[], None] | None = None
        # Whether committed records are kept for this process's consumer (``codec.hand_over``); a process with no
        # consumer (``safeguard produce``) turns it off.
        self.hand_over_records = True

    def submit(self, submission: Submission) -> IntakeResult:
        return self.submit_many([submission])[0]

    def submit_grouped(self, submission: Submission) -> Future[IntakeResult]:
        """Group commit for concurrent callers (the HTTP intake): submissions that arrive while a commit is
        under way are stored together in the next one, so many requests share one fsync. Each future
        resolves only after the commit that stored its submission."""
        with self._writer_lock:
            if self._writer is None or not self._writer.is_alive():
                self._writer = threading.Thread(target=self._write_groups, name="intake-group-commit", daemon=True)
                self._writer.start()
        future: Future[IntakeResult] = Future()
        self._waiting.put((submission, future))
        return future

    def _write_groups(self) -> None:
        while True:
            group = [self._waiting.get()]
            while len(group) < self.group_commit_max:
                try:
                    group.append(self._waiting.get_nowait())
                except queue.Empty:
                    break
            # A caller that went away (its request cancelled) is dropped before the work is done.
            group = [(submission, future) for submission, future in group if future.set_running_or_notify_cancel()]
            try:
                self._answer(group)
            except BaseException as error:  # noqa: BLE001 - the writer must outlive anything; no caller hangs
                for _, future in group:
                    if not future.done():
                        future.set_exception(error if isinstance(error, Exception) else RuntimeError("intake stopped"))
                if not isinstance(error, Exception):
                    raise

    def _answer(self, group: list[tuple[Submission, Future[IntakeResult]]]) -> None:
        if not group:
            return
        try:
            results = self.submit_many([submission for submission, _ in group])
        except Exception:  # noqa: BLE001 - one submission's trouble must not fail the others: each alone
            for submission, future in group:
                try:
                    future.set_result(self.submit(submission))
                except Exception as error:  # noqa: BLE001 - this caller gets its own error, the rest go on
                    future.set_exception(error)
            return
        for (_, future), result in zip(group, results, strict=True):
            future.set_result(result)

    def submit_many(self, submissions: Iterable[Submission]) -> list[IntakeResult]:
        """Validate each, then store the valid ones and the dead letters in one transaction."""
        return self.store_prepared([self.prepare(submissions)])

    def prepare(self, submissions: Iterable[Submission]) -> Prepared:
        """Validate each submission, with no write: what ``store_prepared`` stores. Apart so that a producer can
        validate the next lines while it waits for the write lock (``safeguard produce``)."""
        prepared = Prepared()
        for submission in submissions:
            decoded = self._decode(submission)
            if isinstance(decoded, IntakeResult):
                if decoded.status_code == 422:
                    prepared.dead.append(self._dead_letter(submission, decoded))
                prepared.results.append(decoded)
                continue
            prepared.pending.append(Pending(len(prepared.results),
                                            self._row(submission.event_type, decoded, submission.producer_id),
                                            decoded))
            prepared.results.append(None)
        return prepared

    def store_prepared(self, batches: Sequence[Prepared]) -> list[IntakeResult]:
        """Store prepared batches in one transaction (one commit, one fsync); the answers, in order."""
        results: list[IntakeResult | None] = []
        pending: list[Pending] = []
        dead: list[Refused] = []
        for batch in batches:
            offset = len(results)
            results.extend(batch.results)
            pending.extend(Pending(item.index + offset, item.row, item.record) for item in batch.pending)
            dead.extend(batch.dead)
        if pending or dead:
            self._store(pending, dead, results)
        return [r for r in results if r is not None]

    def _store(self, pending: list[Pending], dead: list[Refused], results: list[IntakeResult | None]) -> None:
        """One transaction: one query for the batch's ids already stored, one multi-row insert of the new."""
        new: list[Pending] = []
        try:
            with self.store.intake_transaction(dead_letters=bool(dead)) as unit:
                stored = unit.stored_events(item.row.event_id for item in pending)
                for item in pending:
                    existing = stored.get(item.row.event_id)
                    if existing is not None:
                        results[item.index] = self._known(existing, item.row)
                        continue
                    stored[item.row.event_id] = item.row  # the same id again in this batch: known from here on
                    new.append(item)
                    results[item.index] = IntakeResult(202, {"event_id": item.row.event_id, "status": "accepted"})
                unit.insert_events([item.row for item in new])
                for refused in dead:
                    keep_dead_letter(unit.port, refused)
        except EventIdTaken:
            # Another writer stored the same event_id between our check and our insert: answer each alone.
            if len(pending) + len(dead) == 1 and pending:
                item = pending[0]
                with self.store.intake_reads() as reads:
                    found = reads.stored_events([item.row.event_id])
                results[item.index] = self._known(found[item.row.event_id], item.row)
                return
            for item in pending:
                results[item.index] = None
                self._store([item], [], results)
            for refused in dead:
                self._store([], [refused], results)
            return
        if self.hand_over_records:  # committed: the consumer of this process takes the decoded record, not the JSON
            for item in new:
                codec.hand_over(item.row.event_type, item.row.record_json, item.record)
        if new and self.on_stored is not None:
            self.on_stored()

    @staticmethod
    def _known(existing: IntakeRow, row: IntakeRow) -> IntakeResult:
        # Another producer's event_id is never theirs to ask about: a conflict, whatever its content, so its
        # status does not leak. (An event that came in over Kafka has no producer on record.)
        other_producer = None not in (existing.producer_id, row.producer_id) and existing.producer_id != row.producer_id
        if existing.content_hash == row.content_hash and existing.event_type == row.event_type and not other_producer:
            return IntakeResult(202, {"event_id": existing.event_id, "status": existing.status})
        return IntakeResult(409, {"errors": [{"field": "event_id", "message": (
            "this event_id is taken: it was sent before with different content, or by another producer")}]})

    def validate(self, submission: Submission) -> dict[str, Any] | IntakeResult:
        """The record, or the answer for a bad submission (dead-lettered when it is a 422)."""
        decoded = self._decode(submission)
        if isinstance(decoded, IntakeResult) and decoded.status_code == 422:
            refused = self._dead_letter(submission, decoded)
            with self.store.intake_transaction() as unit:
                keep_dead_letter(unit.port, refused)
        return decoded

    def known(self, event_type: str, record: dict[str, Any], producer_id: int | None = None) -> IntakeResult | None:
        """For an event_id already stored: its status (same content, same producer) or a 409 (different content,
        or another producer's id)."""
        with self.store.intake_reads() as reads:
            existing = reads.stored_events([record["event_id"]]).get(record["event_id"])
        if existing is None:
            return None
        return self._known(existing, self._row(event_type, record, producer_id))

    @staticmethod
    def _row(event_type: str, record: dict[str, Any], producer_id: int | None) -> IntakeRow:
        return IntakeRow(event_id=record["event_id"], event_type=event_type, producer_id=producer_id,
                         content_hash=codec.record_hash(event_type, record),
                         record_json=codec.stored_json(event_type, record))

    def send_to_topic(self, sender: EventSender, submission: Submission) -> IntakeResult:
        """The Kafka deployment's intake: validate, send (202 once the broker acknowledged with acks=all), and
        store the intake record; 503 while the broker is unreachable."""
        record = self.validate(submission)
        if isinstance(record, IntakeResult):
            return record
        known = self.known(submission.event_type, record, submission.producer_id)
        if known is not None:
            return known
        try:
            sender.send(submission.event_type, record, submission.producer_id)
        except BrokerUnavailable as error:
            log.warning("the event broker is unavailable (%s): answered 503", error)
            return IntakeResult(503, UNAVAILABLE)
        return self.record_sent(submission.event_type, record, submission.producer_id)

    def record_sent(self, event_type: str, record: dict[str, Any], producer_id: int | None) -> IntakeResult:
        """The intake record of an event the broker acknowledged: ``accepted`` with its producer, unless a
        worker already stored (and perhaps processed) it, in which case its current status."""
        row = self._row(event_type, record, producer_id)
        try:
            with self.store.intake_transaction(dead_letters=False) as unit:
                unit.insert_events([row])
        except EventIdTaken:
            known = self.known(event_type, record, producer_id)
            if known is not None:
                return known
            raise
        except StoreWriteFailed as error:
            # The event is on its topic and will be processed; the producer's retry will find it stored.
            log.warning("an event was sent but its intake record not stored (%s): answered 503", error)
            return IntakeResult(503, UNAVAILABLE)
        return IntakeResult(202, {"event_id": row.event_id, "status": "accepted"})

    def _decode(self, submission: Submission) -> dict[str, Any] | IntakeResult:
        if submission.event_type not in codec.EVENT_TYPES:
            return IntakeResult(404, {"errors": [{"field": "event_type", "message": "unknown event type"}]})
        if len(submission.body) > self.max_body_bytes:
            return IntakeResult(422, {"errors": [{"field": "", "message":
                                                  f"body larger than {self.max_body_bytes} bytes"}]})
        try:
            if _is_avro(submission):
                _, record = codec.decode(submission.body, expected=submission.event_type)
                return self._checked(submission.event_type, record)
            try:
                parsed = json.loads(submission.body)
            except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):  # RecursionError: nested too deep
                return IntakeResult(422, {"errors": [{"field": "", "message": "body is not valid JSON"}]})
            record = codec.from_json(submission.event_type, parsed)
        except codec.CodecError as error:
            return IntakeResult(422, {"errors": _errors(error)})
        return self._checked(submission.event_type, record)

    def _checked(self, event_type: str, record: dict[str, Any]) -> dict[str, Any] | IntakeResult:
        problems = rule_errors(event_type, record)
        if problems:
            return IntakeResult(422, {"errors": [{"field": f, "message": m} for f, m in problems]})
        if event_type == "trigger-meeting-recorded":
            with self.store.intake_reads() as reads:
                errors = context_errors(reads.port, event_type, record)
            if errors:
                return IntakeResult(422, {"errors": errors})
        return record

    @staticmethod
    def _dead_letter(submission: Submission, result: IntakeResult) -> Refused:
        reason = "; ".join(f"{e['field'] or 'body'}: {e['message']}" for e in result.body["errors"])
        EVENTS_DEAD_LETTERED.labels(submission.source).inc()
        # `safeguard produce` reports each refused line itself, with its number: not twice.
        log.log(logging.DEBUG if submission.source == "cli" else logging.WARNING,
                "dead-lettered an invalid %s event from %s: %s", submission.event_type, submission.source, reason)
        return Refused(submission.source, submission.event_type, reason, submission.body[:DEAD_LETTER_KEEP_BYTES],
                       submission.producer_id, _rejected_event_id(submission))
