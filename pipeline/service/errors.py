"""The ways a handler can refuse or fail an event, apart from the dispatch table, so handlers can raise them
without importing ``pipeline.service.dispatch`` (which imports the handlers): no import cycle."""

from __future__ import annotations


class HandlerError(Exception):
    """A valid event that cannot be processed (kept accepted, tried again, then held; never stops the pipeline)."""


class RejectedEvent(Exception):
    """An event the rules refuse for good: it names something the pipeline never issued (a trigger meeting's
    child_id). Trying again cannot help, so it is dead-lettered at once, as input that is not acceptable."""
