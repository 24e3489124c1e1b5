"""The one table that maps each event type to its handler, and ``process``, which both runtimes call."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, cast

from pipeline.adapters.metrics import EVENTS_PROCESSED, PROCESSING_SECONDS
from pipeline.ports import EventRecord, StorePort
from pipeline.service.handlers import Context, handle_self_harm, record_of
from pipeline.service.missing import handle_episode_event, handle_trigger_meeting

Handler = Callable[[StorePort, EventRecord, dict[str, Any], Context, datetime], None]

# The missing pathway's handlers are still typed for the SQL adapter (pipeline/service/missing.py is being
# ported to the storage port separately); the casts go when they take the port.
HANDLERS: dict[str, Handler] = {
    "self-harm-attendance": handle_self_harm,
    "missing-reported": cast(Handler, handle_episode_event),
    "missing-updated": cast(Handler, handle_episode_event),
    "missing-found": cast(Handler, handle_episode_event),
    "return-interview-recorded": cast(Handler, handle_episode_event),
    "trigger-meeting-recorded": cast(Handler, handle_trigger_meeting),
}


class HandlerError(Exception):
    """A valid event that cannot be processed (kept accepted, tried again, then held; never stops the pipeline)."""


class RejectedEvent(Exception):
    """An event the rules refuse for good: it names something the pipeline never issued (a trigger meeting's
    child_id). Trying again cannot help, so it is dead-lettered at once, as input that is not acceptable."""


def process(port: StorePort, event: EventRecord, ctx: Context, now: datetime) -> None:
    """Run the event's handler and mark it processed, all in the caller's unit of work (``event`` is a record
    that unit of work returned, so what is set on it is stored with the rest)."""
    handler = HANDLERS.get(event.event_type)
    if handler is None:
        raise HandlerError(f"no handler for event type {event.event_type}")
    with PROCESSING_SECONDS.labels(event.event_type).time():
        handler(port, event, record_of(event), ctx, now)
    event.processed_at = now
    event.next_attempt_at = event.held_at = None  # an event tried again after a failure is done with
    EVENTS_PROCESSED.labels(event.event_type).inc()
