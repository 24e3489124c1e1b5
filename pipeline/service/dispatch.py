"""The one table that maps each event type to its handler, and ``process``, which both runtimes call."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from pipeline.adapters.metrics import EVENTS_PROCESSED, PROCESSING_SECONDS
from pipeline.domain.model import Identity
from pipeline.ports import EventRecord, StorePort
from pipeline.service.children import resolve_children_ahead
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


def resolve_ahead(port: StorePort, ctx: Context, batch: Sequence[tuple[str, dict[str, Any]]]) -> None:
    """What a batch's events (event type, record; each one whose handler will run and has no match decision stored)
    ask of the store one by one, asked together before they are handled, in the batch's unit of work: the missing
    episodes they fold into, locked in one go (``episodes_for_update``); the children they will match
    (``CHILD_AHEAD``), resolved together (``resolve_children_ahead``: matched once, new child ids issued together,
    linked pupils read together); then the children of those episodes (linked before, or by this batch's reports),
    locked in one go (``lock_children``: ``reconcile`` locks each) and what the missing pathway reads of each read
    together (``read_children_ahead``). The caller calls ``ctx.forget_ahead()`` when the batch is over."""
    episodes = sorted({record["episode_id"] for name, record in batch if name in EPISODE_AHEAD})
    children: set[str] = set()
    if episodes:
        children.update(row.child_id for row in port.episodes_for_update(episodes) if row.child_id)
    wanted: list[tuple[Identity, bool]] = []
    of_episode: list[bool] = []
    for name, record in batch:
        if name in CHILD_AHEAD and (who := CHILD_AHEAD[name](port, record)) is not None:
            wanted.append(who)
            of_episode.append(name in EPISODE_AHEAD)
    if wanted:
        linked = resolve_children_ahead(port, ctx, wanted)
        children.update(child_id for child_id, episode in zip(linked, of_episode, strict=True) if child_id and episode)
    if children:
        port.lock_children(sorted(children))
        port.read_children_ahead(sorted(children))


def process(port: StorePort, event: EventRecord, ctx: Context, now: datetime,
            record: dict[str, Any] | None = None) -> None:
    """Run the event's handler and mark it processed, all in the caller's unit of work (``event`` is a record
    that unit of work returned, so what is set on it is stored with the rest). ``record``: the event's record when
    the caller has decoded it already (``record_of``)."""
    handler = HANDLERS.get(event.event_type)
    if handler is None:
        raise HandlerError(f"no handler for event type {event.event_type}")
    seconds, processed = _metrics_of(event.event_type)
    with seconds.time():
        handler(port, event, record if record is not None else record_of(event), ctx, now)
    event.processed_at = now
    event.next_attempt_at = event.held_at = None  # an event tried again after a failure is done with
    processed.inc()


_METRICS: dict[str, tuple[Any, Any]] = {}


def _metrics_of(event_type: str) -> tuple[Any, Any]:
    """The processing-time histogram and the processed counter of an event type, looked up once (``labels`` takes
    a lock and builds its key on every call); only handled types get here, so the dict stays small."""
    found = _METRICS.get(event_type)
    if found is None:
        found = _METRICS[event_type] = (PROCESSING_SECONDS.labels(event_type), EVENTS_PROCESSED.labels(event_type))
    return found
