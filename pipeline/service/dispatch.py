"""The one table that maps each event type to its handler, and ``process``, which both runtimes call."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from pipeline.adapters.metrics import EVENTS_PROCESSED, PROCESSING_SECONDS
from pipeline.domain.model import Identity
from pipeline.ports import EventRecord, StorePort
from pipeline.service.errors import HandlerError, RejectedEvent  # noqa: F401 - RejectedEvent re-exported
from pipeline.service.handlers import Context, handle_self_harm, record_of, self_harm_child
from pipeline.service.missing import handle_episode_event, handle_trigger_meeting, missing_report_child

Handler = Callable[[StorePort, EventRecord, dict[str, Any], Context, datetime], None]

HANDLERS: dict[str, Handler] = {
    "self-harm-attendance": handle_self_harm,
    "missing-reported": handle_episode_event,
    "missing-updated": handle_episode_event,
    "missing-found": handle_episode_event,
    "return-interview-recorded": handle_episode_event,
    "trigger-meeting-recorded": handle_trigger_meeting,
}


# The event types whose handler may match the event's child, and who that is (identity, urgent) for a record,
# or None if its handler will not match (the episode has its child): a batch resolves them together before
# handling its events (``children.resolve_children_ahead``).
CHILD_AHEAD: dict[str, Callable[[StorePort, dict[str, Any]], tuple[Identity, bool] | None]] = {
    "self-harm-attendance": self_harm_child,
    "missing-reported": missing_report_child,
}


# The event types whose handler folds the event into its missing episode (``episode_for_update`` first): a batch
# locks their episodes together before handling its events.
EPISODE_AHEAD = frozenset(name for name, handler in HANDLERS.items() if handler is handle_episode_event)


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
