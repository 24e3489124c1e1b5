"""One Kafka record in, its effects out: the synchronous body of the faust agents.

Decode with the codec; anything undecodable or invalid becomes a dead letter (kept in the store, and an
outbox row for the `dead-letters` topic whose headers carry the reason, topic, partition and offset but no
personal data). A valid event is written as its processed-event row and processed in the same
transaction, so a record delivered twice (at-least-once) has its effects once.
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
from sqlmodel import col, select

from pipeline import codec
from pipeline.adapters import tables as t
from pipeline.adapters.faust_codec import Decoded
from pipeline.adapters.metrics import EVENTS_DEAD_LETTERED
from pipeline.adapters.repository import Repository, new_id
from pipeline.bootstrap import Services
from pipeline.domain.events import rule_errors
from pipeline.service.dispatch import process
from pipeline.service.intake import publish_dead_letter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivery:
    event_type: str
    topic: str
    partition: int
    offset: int
    value: bytes  # the record's bytes, kept in the store if it is dead-lettered
    decoded: Decoded | None = None  # what the faust codec made of them; None: decode here


def _decoded(delivery: Delivery) -> tuple[str, dict[str, Any]]:
    if delivery.decoded is None:
        return codec.decode(delivery.value, expected=delivery.event_type)
    if delivery.decoded.error is not None:
        raise delivery.decoded.error
    assert delivery.decoded.name is not None and delivery.decoded.record is not None
    return delivery.decoded.name, delivery.decoded.record


def handle_delivery(services: Services, delivery: Delivery) -> str:
    """Returns what happened: processed, duplicate or dead_lettered."""
    return handle_batch(services, [delivery])[0]


def _transient(error: Exception) -> bool:
    """A deadlock or serialisation failure between workers: try again, it is not the record's fault."""
    return isinstance(error, OperationalError) or getattr(getattr(error, "orig", None), "sqlstate", None) in (
        "40P01", "40001")


def handle_batch(services: Services, deliveries: Sequence[Delivery], attempt: int = 1) -> list[str]:
    """Handle records in order, in one transaction with a savepoint each: one commit for the batch, while
    each event's effects and processed mark still stand or fall together. A record whose handler fails is
    rolled back alone and dead-lettered; one that lost a deadlock to another worker is tried again."""
    now = services.clock()
    outcomes: list[str] = ["dead_lettered"] * len(deliveries)
    valid: list[tuple[int, str, dict[str, Any]]] = []
    for index, delivery in enumerate(deliveries):
        try:
            name, record = _decoded(delivery)
            problems = rule_errors(name, record)
            if problems:
                raise codec.CodecError([codec.FieldError(field, message) for field, message in problems])
            valid.append((index, name, record))
        except codec.CodecError as error:
            dead_letter(services, delivery, str(error), now)
    failed: list[tuple[int, Exception]] = []
    if valid:
        try:
            try:
                _process_together(services, valid, outcomes, now)
            except Exception as error:  # noqa: BLE001 - rolled back: again, one savepoint per record
                log.info("a batch of %d records failed together (%s); processing them one by one", len(valid),
                         type(error).__name__)
                _process(services, valid, outcomes, failed, now)
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
    for index, failure in failed:
        if index not in retry:
            dead_letter(services, deliveries[index], f"handler failed: {type(failure).__name__}", now)
    return outcomes


def _new_event(name: str, record: dict[str, Any], now: datetime) -> t.Event:
    return t.Event(event_id=record["event_id"], event_type=name, content_hash=codec.record_hash(name, record),
                   record_json=json.dumps(codec.to_json(name, record)), received_at=now)


def _process_together(services: Services, valid: list[tuple[int, str, dict[str, Any]]], outcomes: list[str],
                      now: datetime) -> None:
    """The common case: every record of the batch in one transaction, no savepoints; raises (and rolls back
    everything) if any record fails, and the caller then runs ``_process``."""
    decided: dict[int, str] = {}
    with services.store.transaction() as session:
        repo = Repository(session, postgres=services.store.is_postgres)
        ids = [record["event_id"] for _, _, record in valid]
        seen = set(session.exec(select(t.Event.event_id).where(col(t.Event.event_id).in_(ids))).all())
        for index, name, record in valid:
            if record["event_id"] in seen:
                decided[index] = "duplicate"  # redelivered, or twice in this batch: its effects stand
                continue
            seen.add(record["event_id"])
            row = _new_event(name, record, now)
            session.add(row)
            session.flush()
            process(repo, row, services.ctx, now)
            decided[index] = "processed"
    for index, outcome in decided.items():
        outcomes[index] = outcome


def _process(services: Services, valid: list[tuple[int, str, dict[str, Any]]], outcomes: list[str],
             failed: list[tuple[int, Exception]], now: datetime) -> None:
    with services.store.transaction() as session:
        repo = Repository(session, postgres=services.store.is_postgres)
        for index, name, record in valid:
            try:
                with session.begin_nested():
                    known = session.exec(select(t.Event.seq).where(t.Event.event_id == record["event_id"]))
                    if known.first() is not None:
                        outcomes[index] = "duplicate"
                        continue
                    row = _new_event(name, record, now)
                    session.add(row)
                    session.flush()
                    process(repo, row, services.ctx, now)
                outcomes[index] = "processed"
            except IntegrityError:
                outcomes[index] = "duplicate"  # another worker stored this event_id first: its effects stand
            except Exception as error:  # noqa: BLE001 - a handler bug must not stop the partition
                failed.append((index, error))


def dead_letter(services: Services, delivery: Delivery, reason: str, now: datetime) -> None:
    EVENTS_DEAD_LETTERED.labels("kafka").inc()
    log.warning("dead-lettered a record from %s[%d]@%d: %s", delivery.topic, delivery.partition, delivery.offset,
                reason)
    with services.store.transaction() as session:
        letter = t.DeadLetter(id=new_id(), received_at=now, source="kafka", event_type=delivery.event_type,
                              reason=reason, payload=delivery.value[:1024 * 1024])
        session.add(letter)
        publish_dead_letter(Repository(session), letter, delivery.topic, delivery.partition, delivery.offset)
