"""One Kafka record in, its effects out: the synchronous body of the faust agents.

Decode with the codec; anything undecodable or invalid becomes a dead letter (kept in the store, and an
outbox row for the `dead-letters` topic whose headers carry the reason, topic, partition and offset but no
personal data). A valid event is processed in the same transaction as its event row: the row the HTTP
intake stored when it sent the record (its intake record, which carries the producer), or a new one for a
record sent straight to the topic. A record delivered twice (at-least-once) has its effects once.

A valid event whose handler fails is never a dead letter: it is stored (or kept) ``accepted`` with the
failure recorded, and the workers' retry timer tries it again, then holds it and alerts the front door
(``pipeline.service.retries``).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm.exc import StaleDataError

from pipeline import codec
from pipeline.adapters.faust_codec import Decoded
from pipeline.adapters.metrics import EVENTS_DEAD_LETTERED
from pipeline.adapters.repository import Repository
from pipeline.bootstrap import Services
from pipeline.domain.events import rule_errors
from pipeline.ports import EventRecord, StorePort
from pipeline.service.dispatch import process, resolve_ahead
from pipeline.service.intake import context_errors, publish_dead_letter
from pipeline.service.retries import RetryPolicy, record_failure, without_tracebacks

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivery:
    event_type: str
    topic: str
    partition: int
    offset: int
    value: bytes  # the record's bytes, kept in the store if it is dead-lettered
    decoded: Decoded | None = None  # what the faust codec made of them; None: decode here
    producer_id: int | None = None  # the producer the HTTP intake sent it for (a record header)


def _decoded(delivery: Delivery) -> tuple[str, dict[str, Any]]:
    if delivery.decoded is None:
        return codec.decode(delivery.value, expected=delivery.event_type)
    if delivery.decoded.error is not None:
        raise delivery.decoded.error
    assert delivery.decoded.name is not None and delivery.decoded.record is not None
    return delivery.decoded.name, delivery.decoded.record


def handle_delivery(services: Services, delivery: Delivery) -> str:
    """Returns what happened: processed, duplicate, retrying, held or dead_lettered."""
    return handle_batch(services, [delivery])[0]


CONFLICT = "event_id: already used with different content"


def _transient(error: Exception) -> bool:
    """A deadlock or serialisation failure between workers, another writer storing the same event_id a moment
    ago (the next try finds its row), or a row another writer changed under this one (a stale write): try
    again, it is not the record's fault."""
    return isinstance(error, OperationalError | IntegrityError | StaleDataError) or getattr(
        getattr(error, "orig", None), "sqlstate", None) in ("40P01", "40001")


def handle_batch(services: Services, deliveries: Sequence[Delivery], attempt: int = 1) -> list[str]:
    """Handle records in order, in one transaction with a savepoint each: one commit for the batch, while
    each event's effects and processed mark still stand or fall together. A record that lost a deadlock to
    another worker is tried again; one whose handler fails is rolled back alone and kept for a later try."""
    now = services.clock()
    outcomes: list[str] = ["dead_lettered"] * len(deliveries)
    valid: list[tuple[int, str, dict[str, Any]]] = []
    for index, delivery in enumerate(deliveries):
        try:
            name, record = _decoded(delivery)
            problems = rule_errors(name, record)
            if not problems and name == "trigger-meeting-recorded":
                with services.store.read() as session:
                    port = Repository(session, postgres=services.store.is_postgres)
                    problems = [(e["field"], e["message"]) for e in context_errors(port, name, record)]
            if problems:
                raise codec.CodecError([codec.FieldError(field, message) for field, message in problems])
            valid.append((index, name, record))
        except codec.CodecError as error:
            dead_letter(services, delivery, str(error), now)
    failed: list[tuple[int, Exception]] = []
    if valid:
        try:
            try:
                _process_together(services, deliveries, valid, outcomes, now)
            except Exception as error:  # noqa: BLE001 - rolled back: again, one savepoint per record
                log.info("a batch of %d records failed together (%s); processing them one by one", len(valid),
                         type(error).__name__)
                _process(services, deliveries, valid, outcomes, failed, now)
        except OperationalError:  # the batch's own commit lost a deadlock: the whole batch again
            if attempt >= 5:
                raise
            time.sleep(0.05 * attempt)
            return handle_batch(services, deliveries, attempt + 1)
    retry = [index for index, failure in failed if _transient(failure) and attempt < 5]
    if retry:
        log.warning("retrying %d record(s) after a transient database error", len(retry))
        time.sleep(0.05 * attempt)
        again = handle_batch(services, [deliveries[i] for i in retry], attempt + 1)
        for index, outcome in zip(retry, again, strict=True):
            outcomes[index] = outcome
    records = {index: (name, record) for index, name, record in valid}
    for index, failure in failed:
        if index not in retry:
            name, record = records[index]
            outcomes[index] = _keep_for_retry(services, deliveries[index], name, record, failure, now)
    for index, outcome in enumerate(outcomes):
        if outcome == "conflict":
            dead_letter(services, deliveries[index], CONFLICT, now)
            outcomes[index] = "dead_lettered"
    return outcomes


def _claim(repo: StorePort, existing: EventRecord | None, name: str, record: dict[str, Any], delivery: Delivery,
           now: datetime) -> EventRecord | str:
    """The event row to process for this record, or what the record is instead: a ``duplicate`` (its event
    was processed), ``retrying`` (its event failed before: the retry timer runs it), or a ``conflict`` (its
    event_id was stored with different content)."""
    if existing is None:
        # Buffered, not written: the batch's new events are inserted together at the next write point (the commit
        # or the record's savepoint), as they are by then, processed mark included. A second writer of the same
        # event_id then fails that write, and the caller goes record by record.
        return repo.store_event(name, record["event_id"], json.dumps(codec.to_json(name, record)),
                                codec.record_hash(name, record), now, producer_id=delivery.producer_id)
    if existing.event_type != name or existing.content_hash != codec.record_hash(name, record):
        return "conflict"
    if existing.status != "accepted" or existing.processed_at is not None:
        return "duplicate"
    if existing.attempts or existing.held_at is not None:
        return "retrying"
    return existing  # the HTTP intake's record of it, waiting for this


def _run(repo: StorePort, event: EventRecord, name: str, record: dict[str, Any], services: Services,
         now: datetime) -> None:
    """The event's handler, given the record the faust codec decoded (``codec.hand_over``), so the handler does
    not decode the stored JSON a second time."""
    codec.hand_over(name, event.record_json, record)
    process(repo, event, services.ctx, now)


def _process_together(services: Services, deliveries: Sequence[Delivery], valid: list[tuple[int, str, dict[str, Any]]],
                      outcomes: list[str], now: datetime) -> None:
    """The common case: every record of the batch in one transaction, no savepoints; raises (and rolls back
    everything) if any record fails, and the caller then runs ``_process``."""
    decided: dict[int, str] = {}
    try:
        with services.store.transaction() as session:
            repo = services.store.repository(session)
            ids = [record["event_id"] for _, _, record in valid]
            known: dict[str, EventRecord] = {e.event_id: e for e in repo.batch_events(ids)}
            _resolve_ahead(services, repo, known, valid)
            for index, name, record in valid:
                claimed = _claim(repo, known.get(record["event_id"]), name, record, deliveries[index], now)
                if isinstance(claimed, str):
                    decided[index] = claimed
                    continue
                known[claimed.event_id] = claimed
                _run(repo, claimed, name, record, services, now)
                decided[index] = "processed"
    finally:
        services.ctx.forget_ahead()
    for index, outcome in decided.items():
        outcomes[index] = outcome


def _resolve_ahead(services: Services, repo: Repository, known: dict[str, EventRecord],
                   valid: list[tuple[int, str, dict[str, Any]]]) -> None:
    """What the batch's records that will be handled (their event is new, or waits with no decision stored) ask
    of the store one by one, asked together first: the missing episodes they fold into, locked in one go
    (``episodes_for_update``), the children they will match (``CHILD_AHEAD``), resolved together
    (``resolve_children_ahead``): one insert of the new child ids and one read of the linked pupils; then the
    children of those episodes (linked before, or by this batch's reports), locked in one go (``lock_children``:
    ``reconcile`` locks each) and what the missing pathway reads of each read together (``read_children_ahead``):
    ``dispatch.resolve_ahead``."""
    handled: list[tuple[str, dict[str, Any]]] = []
    seen: set[str] = set()
    for _, name, record in valid:
        event_id = record["event_id"]
        if event_id in seen:
            continue
        seen.add(event_id)
        existing = known.get(event_id)
        if existing is not None and not (existing.status == "accepted" and existing.processed_at is None
                                         and existing.match_outcome is None and not existing.attempts
                                         and existing.held_at is None):
            continue
        handled.append((name, record))
    resolve_ahead(repo, services.ctx, handled)


def _process(services: Services, deliveries: Sequence[Delivery], valid: list[tuple[int, str, dict[str, Any]]],
             outcomes: list[str], failed: list[tuple[int, Exception]], now: datetime) -> None:
    with services.store.transaction() as session:
        repo = services.store.repository(session)
        for index, name, record in valid:
            try:
                with repo.savepoint():
                    found = repo.events_by_id([record["event_id"]])
                    claimed = _claim(repo, found[0] if found else None, name, record, deliveries[index], now)
                    if not isinstance(claimed, str):
                        _run(repo, claimed, name, record, services, now)
                outcomes[index] = claimed if isinstance(claimed, str) else "processed"
            except Exception as error:  # noqa: BLE001 - a handler bug must not stop the partition
                failed.append((index, without_tracebacks(error)))


def _keep_for_retry(services: Services, delivery: Delivery, name: str, record: dict[str, Any], error: Exception,
                    now: datetime) -> str:
    """Store (or keep) the failing event ``accepted`` with its failure counted: ``retrying`` or ``held``."""
    with services.store.unit_of_work() as repo:
        found = repo.events_by_id([record["event_id"]])
        claimed = _claim(repo, found[0] if found else None, name, record, delivery, now)
        if isinstance(claimed, str) and claimed != "retrying":
            return claimed  # processed by another worker meanwhile, or a conflict
        event = found[0] if isinstance(claimed, str) else claimed
        held = record_failure(repo, event, error, RetryPolicy.from_policy(services.ctx.policy), now)
    return "held" if held else "retrying"


def dead_letter(services: Services, delivery: Delivery, reason: str, now: datetime) -> None:
    EVENTS_DEAD_LETTERED.labels("kafka").inc()
    log.warning("dead-lettered a record from %s[%d]@%d: %s", delivery.topic, delivery.partition, delivery.offset,
                reason)
    with services.store.unit_of_work() as port:
        letter = port.add_dead_letter(now, "kafka", delivery.event_type, reason, delivery.value[:1024 * 1024],
                                      producer_id=delivery.producer_id)
        publish_dead_letter(port, letter, delivery.topic, delivery.partition, delivery.offset)
