"""The faust codec for event topics: the contract's Avro single-object encoding, through the project's one
codec module (``pipeline.codec``), registered once per event type so a record on a topic must carry that
topic's schema.

Decoding never raises: faust answers a value it cannot decode by acknowledging the message and throwing
into the agent, which would stop the partition. Instead the codec hands the agent a ``Decoded`` that is
either the record or the reason it is not one, and the agent dead-letters the reason with the record's
topic, partition and offset while the partition keeps flowing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from faust.serializers import codecs

from pipeline import codec


@dataclass(frozen=True)
class Decoded:
    """A record from an event topic: its schema name and fields, or the reason it could not be read."""

    name: str | None = None
    record: dict[str, Any] | None = None
    error: codec.CodecError | None = None


class SingleObjectAvro(codecs.Codec):
    def __init__(self, event_type: str, **kwargs: Any) -> None:
        super().__init__(event_type=event_type, **kwargs)
        self.event_type = event_type

    def _dumps(self, obj: Any) -> bytes:
        name, record = obj if isinstance(obj, tuple) else (self.event_type, obj)
        return codec.encode(name, record)

    def _loads(self, s: bytes) -> Decoded:
        try:
            name, record = codec.decode(s, expected=self.event_type)
        except codec.CodecError as error:
            return Decoded(error=error)
        return Decoded(name, record)


def codec_name(event_type: str) -> str:
    return f"safeguard-avro-{event_type}"


def register_codecs() -> None:
    """Register one codec per event type with faust (idempotent)."""
    for event_type in codec.EVENT_TYPES:
        codecs.register(codec_name(event_type), SingleObjectAvro(event_type))
