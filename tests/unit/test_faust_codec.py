"""The faust codec for event topics: the project's one Avro codec, and decoding that never raises."""

from __future__ import annotations

import pytest
from faust.serializers import codecs

from pipeline import codec
from pipeline.adapters.faust_codec import Decoded, codec_name, register_codecs
from tests.support.world import AMELIA, attendance

pytestmark = pytest.mark.unit
TOPIC = "self-harm-attendance"


def test_a_record_round_trips_through_the_registered_codec() -> None:
    register_codecs()
    faust_codec = codecs.get_codec(codec_name(TOPIC))
    record = codec.from_json(TOPIC, attendance(AMELIA))
    data = faust_codec.dumps(record)
    assert data == codec.encode(TOPIC, record)  # the contract's single-object encoding, byte for byte
    decoded = faust_codec.loads(data)
    assert decoded == Decoded(TOPIC, record)


@pytest.mark.parametrize("data", [b"Amelia Hartley 9990000018 not avro", b"\xc3\x01" + b"\x01" * 8 + b"\x00", b""])
def test_undecodable_bytes_give_the_reason_instead_of_raising(data: bytes) -> None:
    register_codecs()
    decoded = codecs.get_codec(codec_name(TOPIC)).loads(data)
    assert decoded.record is None and isinstance(decoded.error, codec.CodecError)
    assert "Amelia" not in str(decoded.error) and "9990000018" not in str(decoded.error)


def test_a_record_of_another_event_type_on_this_topic_is_refused() -> None:
    register_codecs()
    found = {"event_id": "0f8fad5b-d9cb-469f-a165-70867728950e", "episode_id": "EP-1",
             "found_at": "2026-11-24T20:00:00+00:00", "returned_to": "PLACEMENT", "safe_and_well_at": None}
    other = codec.encode("missing-found", codec.from_json("missing-found", found))
    assert codecs.get_codec(codec_name(TOPIC)).loads(other).error is not None
