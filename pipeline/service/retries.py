"""An accepted event is never only a dead letter: what happens when its handler fails.

The event stays ``accepted`` with the failure's type recorded (never its text, which may carry personal
data) and is tried again after a growing delay. After the last try it is held: an urgent alert goes to
the front door (the producer believes it was delivered, so someone in the partnership must know) and a
``processing_failed`` audit entry records it for admins. ``safeguard events retry`` runs held events again
once the fault is fixed, each inside a locked transaction, so it is processed once.

Both runtimes use this: the embedded intake consumer, and on Kafka the agents (which store a failing
record as a held-for-retry event) and the workers' retry timer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from pipeline.domain.calendar import Duration, parse_timescale
from pipeline.domain.missing import PATHWAY as MISSING
from pipeline.domain.model import FRONT_DOOR, Contact, EventStatus, PlannedNotification
from pipeline.domain.policy import Policy
from pipeline.domain.self_harm import PATHWAY as SELF_HARM
from pipeline.ports import SYSTEM, EventRecord, StorePort, UnitsOfWork
from pipeline.service.dispatch import RejectedEvent, process
from pipeline.service.handlers import Context, store_notification
from pipeline.service.intake import publish_dead_letter

log = logging.getLogger(__name__)

PROCESSING_FAILED = "processing_failed"


@dataclass(frozen=True)
class RetryPolicy:
    """``runtime.handler_retries`` in the config: tries in all, and the delay before the second (doubling
    each time, up to ``max_delay``)."""

    attempts: int = 5
    first_delay: timedelta = timedelta(seconds=10)
    max_delay: timedelta = timedelta(minutes=15)

    @classmethod
    def from_policy(cls, policy: Policy) -> RetryPolicy:
        raw = policy.setting("runtime", "handler_retries", default=None) or {}
        attempts = raw.get("attempts", cls.attempts)
        if not isinstance(attempts, int) or isinstance(attempts, bool) or attempts < 1:
            raise ValueError("runtime.handler_retries.attempts must be a whole number of at least 1")
        delays = []
        for name, default in (("first_delay", cls.first_delay), ("max_delay", cls.max_delay)):
            value = raw.get(name)
            timescale = parse_timescale(value) if value is not None else Duration(default)
            if not isinstance(timescale, Duration):
                raise ValueError(f"runtime.handler_retries.{name} must be an ISO-8601 duration")
            delays.append(timescale.delta)
        return cls(attempts, delays[0], delays[1])

    def delay(self, failures: int) -> timedelta:
        """The wait after the ``failures``-th failure."""
        return min(self.first_delay * 2 ** max(failures - 1, 0), self.max_delay)


def pathway_of(event_type: str) -> str:
    return SELF_HARM if event_type == "self-harm-attendance" else MISSING


def without_tracebacks(error: Exception) -> Exception:
    """``error`` with its traceback, and those of the exceptions it was raised from or during, let go: a failure
    kept for ``record_failure`` (which records only its type, and a refusal's text) would otherwise hold the frames
    of the code that caught it, and with them the list it is kept in: a reference cycle per failed event, left to
    the garbage collector's pauses."""
    seen: set[int] = set()
    waiting: list[BaseException | None] = [error]
    while waiting:
        link = waiting.pop()
        if link is None or id(link) in seen:
            continue
        seen.add(id(link))
        link.__traceback__ = None
        waiting += (link.__cause__, link.__context__)
    return error


def record_failure(port: StorePort, event: EventRecord, error: BaseException, retry: RetryPolicy,
                   now: datetime) -> bool:
    """Count one failed try of ``event`` (in the caller's transaction); True when it is now held.

    A ``RejectedEvent`` is not tried again: the event is dead-lettered with the refusal as its reason.
    """
    if isinstance(error, RejectedEvent):
        _reject(port, event, error, now)
        return True
    event.attempts = (event.attempts or 0) + 1
    event.error = type(error).__name__
    if event.attempts < retry.attempts:
        event.next_attempt_at = now + retry.delay(event.attempts)
        log.warning("event %s failed in its handler (%s), try %d of %d; trying again at %s", event.event_id,
                    event.error, event.attempts, retry.attempts, event.next_attempt_at.isoformat())
        return False
    event.next_attempt_at, event.held_at = None, now
    log.error("event %s failed in its handler (%s) %d times; held, front door alerted; after the fix, "
              "`safeguard events retry %s` runs it again (`safeguard events held` lists every held one)",
              event.event_id, event.error, event.attempts, event.event_id)
    port.audit(now, SYSTEM, PROCESSING_FAILED, event.event_id,
               f"handler failed ({event.error}) {event.attempts} times; held until `safeguard events retry`")
    _alert_front_door(port, event, now)
    return True


def _reject(port: StorePort, event: EventRecord, error: RejectedEvent, now: datetime) -> None:
    log.error("event %s refused by its handler; dead-lettered", event.event_id)
    event.status, event.error, event.next_attempt_at = EventStatus.DEAD_LETTERED, type(error).__name__, None
    letter = port.add_dead_letter(now, "handler", event.event_type, str(error), event.record_json.encode(),
                                  producer_id=event.producer_id, event_id=event.event_id)
    publish_dead_letter(port, letter, event.event_type)


def _alert_front_door(port: StorePort, event: EventRecord, now: datetime) -> None:
    """An urgent alert, with nothing about the child: which event, what kind, since when, how often tried."""
    assert event.held_at is not None
    item = PlannedNotification(
        key=f"{PROCESSING_FAILED}:{event.event_id}", recipient_role=FRONT_DOOR, recipient_ref=FRONT_DOOR,
        contact=port.directory().team(FRONT_DOOR) or Contact(None), urgency="URGENT",
        reason="an accepted event could not be processed; it is held until it is run again",
        content={"problem": PROCESSING_FAILED, "event_id": event.event_id, "event_type": event.event_type,
                 "received_at": event.received_at.isoformat(), "attempts": event.attempts, "error": event.error},
    )
    store_notification(port, event.event_id, item, pathway_of(event.event_type), now,
                       dedupe_key=f"{PROCESSING_FAILED}:{event.event_id}:{event.held_at.isoformat()}")


@dataclass(frozen=True)
class RetryOutcome:
    event_id: str
    outcome: str  # processed | failed | already_processed | not_held | not_found

    @property
    def ok(self) -> bool:
        return self.outcome in ("processed", "already_processed")


def retry_events(store: UnitsOfWork, ctx: Context, clock: Callable[[], datetime],
                 event_ids: Sequence[str] | None = None) -> list[RetryOutcome]:
    """Run held events again (``event_ids``, or every held one), one transaction each.

    An event waiting for its next automatic try may be named too. One that was processed meanwhile is
    left alone, and a new event not yet tried is left to the consumer; a try that fails again keeps the
    event held and records the failure.
    """
    if event_ids is None:
        with store.unit_of_work() as port:
            event_ids = port.held_event_ids()
    return [_retry_one(store, ctx, clock, event_id.strip().lower()) for event_id in event_ids]


def _retry_one(store: UnitsOfWork, ctx: Context, clock: Callable[[], datetime], event_id: str) -> RetryOutcome:
    with store.unit_of_work() as port:
        found = port.events_by_id([event_id])
        if not found:
            return RetryOutcome(event_id, "not_found")
        event = found[0]
        if event.status != EventStatus.ACCEPTED or event.processed_at is not None:
            return RetryOutcome(event_id, "already_processed")
        if event.held_at is None and not event.attempts:
            return RetryOutcome(event_id, "not_held")
        now = clock()
        try:
            with port.savepoint():
                process(port, event, ctx, now)
                port.audit(now, SYSTEM, "retried", event.event_id, f"processed on try {event.attempts + 1}")
        except Exception as error:  # noqa: BLE001 - reported, and the event stays held
            event = port.events_by_id([event_id], lock=False)[0]  # as it was before the try
            if event.held_at is None:  # named while waiting for its next automatic try: counted as one
                record_failure(port, event, error, RetryPolicy.from_policy(ctx.policy), now)
                return RetryOutcome(event_id, "failed")
            event.attempts += 1
            event.error = type(error).__name__
            port.audit(now, SYSTEM, PROCESSING_FAILED, event.event_id,
                       f"run again and failed ({event.error}); still held")
            log.error("event %s failed again in its handler (%s); still held", event.event_id, event.error)
            return RetryOutcome(event_id, "failed")
        return RetryOutcome(event_id, "processed")


def held_events(store: UnitsOfWork) -> list[EventRecord]:
    """Every held event, oldest first."""
    with store.unit_of_work() as port:
        ids = port.held_event_ids()
        by_id = {event.event_id: event for event in port.events_by_id(ids, lock=False)}
    return [by_id[event_id] for event_id in ids if event_id in by_id]
