"""The one table that maps each event type to its handler, and ``process``, which both runtimes call."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from pipeline.adapters import tables as t
from pipeline.adapters.metrics import EVENTS_PROCESSED, PROCESSING_SECONDS
from pipeline.adapters.repository import Repository
from pipeline.service.handlers import Context, handle_self_harm, record_of
from pipeline.service.missing import handle_episode_event, handle_trigger_meeting

Handler = Callable[[Repository, t.Event, dict[str, Any], Context, datetime], None]

HANDLERS: dict[str, Handler] = {
    "self-harm-attendance": handle_self_harm,
    "missing-reported": handle_episode_event,
    "missing-updated": handle_episode_event,
    "missing-found": handle_episode_event,
    "return-interview-recorded": handle_episode_event,
    "trigger-meeting-recorded": handle_trigger_meeting,
}


class HandlerError(Exception):
    """A valid event that cannot be processed (kept accepted, tried again, then held; never stops the pipeline)."""


def process(repo: Repository, event: t.Event, ctx: Context, now: datetime) -> None:
    """Run the event's handler and mark it processed, all in the caller's transaction."""
    handler = HANDLERS.get(event.event_type)
    if handler is None:
        raise HandlerError(f"no handler for event type {event.event_type}")
    with PROCESSING_SECONDS.labels(event.event_type).time():
        handler(repo, event, record_of(event), ctx, now)
    event.processed_at = now
    event.next_attempt_at = event.held_at = None  # an event tried again after a failure is done with
    repo.session.add(event)
    EVENTS_PROCESSED.labels(event.event_type).inc()
