"""The one Avro codec: golden bytes and fingerprints from the `avro` reference package, round trips, errors."""

from __future__ import annotations

import contextlib
import io
import json
import string
from datetime import UTC, date, datetime, timedelta
from typing import Any

import avro.io
import avro.schema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline import codec

pytestmark = pytest.mark.unit

GOLDEN_RECORD: dict[str, Any] = {
    "event_id": "6f1c2a9e-8d7b-4c3a-9f2e-1a2b3c4d5e6f", "attendance_id": "ED-0001", "hospital_ods_code": "RXX01",
    "arrived_at": datetime(2026, 11, 24, 20, 0, tzinfo=UTC),
    "child": {"nhs_number": None, "given_name": "Test", "family_name": "Child", "date_of_birth": date(2013, 5, 14),
              "sex": "F", "postcode": "NS1 2AB", "school_name": None},
    "admitted": False, "risk_summary": "safety plan", "exploitation_screening": "NO_CONCERN", "consent": "GIVEN",
    "shared_without_consent_reason": None, "clinician_contact": "nurse",
}
# Produced once with the `avro` package's DatumWriter (not by the code under test) and pinned here.
GOLDEN_BODY_HEX = (
    "4836663163326139652d386437622d346333612d396632652d3161326233633464356536660e45442d303030310a5258583031"
    "80c0a5fce4c2b00600020854657374020a4368696c6402bef7010202020e4e53312032414200001673616665747920706c616e"
    "0200000a6e75727365"
)
# CRC-64-AVRO of the spec's Parsing Canonical Form, computed with the `avro` package's Rabin function.
GOLDEN_FINGERPRINT_HEX = "641f4b351f5d945b"
# The same record as a producer on version 1 (schemas/history/, the child's names and date of birth still
# required) writes it: still read, into the current schema.
V1_GOLDEN_BODY_HEX = (
    "4836663163326139652d386437622d346333612d396632652d3161326233633464356536660e45442d303030310a5258583031"
    "80c0a5fce4c2b0060008546573740a4368696c64bef70102020e4e53312032414200001673616665747920706c616e0200000a"
    "6e75727365"
)
V1_GOLDEN_FINGERPRINT_HEX = "2660805db9e88c8a"


def avro_body(name: str, record: dict[str, Any]) -> bytes:
    schema = avro.schema.parse(codec.schema_path(name).read_text())
    buffer = io.BytesIO()
    avro.io.DatumWriter(schema).write(record, avro.io.BinaryEncoder(buffer))
    return buffer.getvalue()


def test_golden_body_is_what_the_reference_implementation_writes() -> None:
    assert avro_body("self-harm-attendance", GOLDEN_RECORD).hex() == GOLDEN_BODY_HEX
    assert codec.encode_body("self-harm-attendance", GOLDEN_RECORD).hex() == GOLDEN_BODY_HEX


def test_single_object_encoding_golden_bytes() -> None:
    encoded = codec.encode("self-harm-attendance", GOLDEN_RECORD)
    assert encoded.hex() == "c301" + GOLDEN_FINGERPRINT_HEX + GOLDEN_BODY_HEX
    name, decoded = codec.decode(encoded)
    assert name == "self-harm-attendance" and decoded == GOLDEN_RECORD


def test_a_version_1_producers_bytes_are_still_read() -> None:
    encoded = bytes.fromhex("c301" + V1_GOLDEN_FINGERPRINT_HEX + V1_GOLDEN_BODY_HEX)
    assert codec.decode(encoded, expected="self-harm-attendance") == ("self-harm-attendance", GOLDEN_RECORD)


def test_a_child_with_no_names_date_of_birth_or_sex_is_accepted() -> None:
    child = {"nhs_number": None, "given_name": None, "family_name": None, "date_of_birth": None, "sex": None,
             "postcode": None, "school_name": None}
    record = codec.from_json("self-harm-attendance", {**valid(), "child": child})
    assert record["child"]["given_name"] is None and record["child"]["date_of_birth"] is None
    assert codec.decode(codec.encode("self-harm-attendance", record))[1] == record
    omitted = codec.from_json("missing-reported", {
        "event_id": "0f8fad5b-d9cb-469f-a165-70867728950e", "episode_id": "E1", "force_code": "NS",
        "reported_at": "2026-11-24T20:00:00+00:00", "last_seen_at": "2026-11-24T19:00:00+00:00",
        "child": {"family_name": "Smith"}, "risk_grade": "LOW", "missing_from": "HOME", "exploitation_flags": []})
    assert omitted["child"]["given_name"] is None and omitted["child"]["family_name"] == "Smith"


def test_fingerprint_matches_the_avro_package() -> None:
    from fastavro.schema import to_parsing_canonical_form

    raw = json.loads(codec.schema_path("self-harm-attendance").read_text())
    pcf = to_parsing_canonical_form(raw).encode()
    assert avro.schema._crc_64_fingerprint(pcf).hex() == GOLDEN_FINGERPRINT_HEX
    assert codec.fingerprint("self-harm-attendance").hex() == GOLDEN_FINGERPRINT_HEX
    # Without logical types the two packages agree on the canonical form itself, so the whole
    # fingerprint comes from `avro` end to end.
    plain = {"type": "record", "name": "Plain", "namespace": "uk.gov.safeguard", "doc": "ignored",
             "fields": [{"name": "a", "type": "string"}, {"name": "b", "type": ["null", "long"], "default": None}]}
    assert codec.fingerprint_of(plain) == avro.schema.parse(json.dumps(plain)).fingerprint("CRC-64-AVRO")


def test_every_schema_has_a_distinct_fingerprint() -> None:
    names = (*codec.EVENT_TYPES, *codec.OUTPUT_TYPES)
    assert len({codec.fingerprint(name) for name in names}) == len(names)


names = st.text(alphabet=string.ascii_letters + " '-", min_size=1, max_size=20)
# Any storable text: every character but NUL (refused with a 422; PostgreSQL cannot store it in text).
texts = st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",))
instants = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
                        timezones=st.sampled_from([UTC])).map(lambda d: d.replace(microsecond=d.microsecond))


@given(given_name=names, family=names, born=st.dates(min_value=date(2000, 1, 1), max_value=date(2030, 1, 1)),
       arrived=instants, offset=st.integers(min_value=-12, max_value=14), nhs=st.none() | st.from_regex(
           r"\A[0-9]{10}\Z"), admitted=st.booleans(), summary=st.text(texts, max_size=200),
       screening=st.sampled_from(["NOT_SCREENED", "NO_CONCERN", "CONCERN"]),
       consent=st.sampled_from(["GIVEN", "REFUSED", "NOT_SOUGHT"]), reason=st.none() | st.text(texts, max_size=50))
def test_self_harm_round_trip(given_name: str, family: str, born: date, arrived: datetime, offset: int,
                              nhs: str | None, admitted: bool, summary: str, screening: str, consent: str,
                              reason: str | None) -> None:
    from datetime import timezone

    local = arrived.astimezone(timezone(timedelta(hours=offset)))
    plain = {
        "event_id": "0b7e1d1e-2f0c-4b8a-9a57-1f5c9f0e6a11", "attendance_id": "A", "hospital_ods_code": "R",
        "arrived_at": local.isoformat(),
        "child": {"nhs_number": nhs, "given_name": given_name, "family_name": family,
                  "date_of_birth": born.isoformat(), "sex": "U", "postcode": None, "school_name": None},
        "admitted": admitted, "risk_summary": summary, "exploitation_screening": screening, "consent": consent,
        "shared_without_consent_reason": reason, "clinician_contact": "c",
    }
    record = codec.from_json("self-harm-attendance", plain)
    name, decoded = codec.decode(codec.encode("self-harm-attendance", record))
    assert name == "self-harm-attendance"
    back = codec.to_json(name, decoded)
    assert datetime.fromisoformat(back["arrived_at"]) == local
    assert {k: v for k, v in back.items() if k != "arrived_at"} == {k: v for k, v in plain.items() if k != "arrived_at"}
    assert codec.record_hash(name, decoded) == codec.record_hash(name, record)


@given(flags=st.lists(st.sampled_from(["CSE", "CCE", "COUNTY_LINES", "TRAFFICKING"]), max_size=4),
       grade=st.sampled_from(["NO_APPARENT_RISK", "LOW", "MEDIUM", "HIGH"]), seen=instants)
def test_missing_reported_round_trip(flags: list[str], grade: str, seen: datetime) -> None:
    plain = {"event_id": "0b7e1d1e-2f0c-4b8a-9a57-1f5c9f0e6a11", "episode_id": "E1", "force_code": "NS",
             "reported_at": (seen + timedelta(hours=2)).isoformat(), "last_seen_at": seen.isoformat(),
             "child": {"nhs_number": None, "given_name": "A", "family_name": "B", "date_of_birth": "2012-01-01",
                       "sex": "M", "postcode": None, "school_name": None},
             "risk_grade": grade, "missing_from": "HOME", "exploitation_flags": flags}
    record = codec.from_json("missing-reported", plain)
    assert codec.to_json("missing-reported", codec.decode(codec.encode("missing-reported", record))[1]) == plain


SECRET = "Zebedee-Quixote-9990000018"


def valid() -> dict[str, Any]:
    return codec.to_json("self-harm-attendance", GOLDEN_RECORD)


@pytest.mark.parametrize("change,field,message", [
    ({"arrived_at": "2026-11-24T20:00:00"}, "arrived_at", "offset"),
    ({"consent": SECRET}, "consent", "must be one of"),
    ({"admitted": SECRET}, "admitted", "true or false"),
    ({"risk_summary": None}, "risk_summary", "must be a string"),
    ({"event_id": SECRET}, "event_id", "UUID"),
    ({"extra": SECRET}, "", "field the schema does not know"),
    ({SECRET: 1}, "", "field the schema does not know"),  # a made-up name is never echoed either
    ({"child": {**codec.to_json("self-harm-attendance", GOLDEN_RECORD)["child"], SECRET: True}}, "child",
     "field the schema does not know"),
    ({"risk_summary": "\ud800" + SECRET}, "risk_summary", "valid Unicode"),
    ({"risk_summary": SECRET + "\x00"}, "risk_summary", "NUL"),
    ({"arrived_at": "0001-01-01T00:00:00+01:00"}, "arrived_at", "out of range"),
    ({"arrived_at": "9999-12-31T23:59:59-01:00"}, "arrived_at", "out of range"),
    ({"arrived_at": "1066-10-14T09:00:00+00:00"}, "arrived_at", "out of range"),
    ({"child": {**codec.to_json("self-harm-attendance", GOLDEN_RECORD)["child"], "date_of_birth": "0001-01-01"}},
     "child.date_of_birth", "out of range"),
    ({"event_id": "{0f8fad5b-d9cb-469f-a165-70867728950e}"}, "event_id", "UUID"),
    ({"event_id": "0f8fad5bd9cb469fa16570867728950e"}, "event_id", "UUID"),
    ({"event_id": "urn:uuid:0f8fad5b-d9cb-469f-a165-70867728950e"}, "event_id", "UUID"),
    ({"event_id": "\udc00"}, "event_id", "UUID"),
    ({"child": {"given_name": SECRET, "sex": SECRET}}, "child.sex", "must be one of"),
    ({"child": SECRET}, "child", "object"),
])
def test_invalid_json_names_the_field_never_the_value(change: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(codec.CodecError) as caught:
        codec.from_json("self-harm-attendance", {**valid(), **change})
    assert any(e.field == field and message in e.message for e in caught.value.errors), caught.value.errors
    assert SECRET not in str(caught.value) and all(SECRET not in e.message for e in caught.value.errors)


def test_one_uuid_in_upper_case_is_the_same_event_id() -> None:
    upper = {**valid(), "event_id": valid()["event_id"].upper()}
    assert codec.from_json("self-harm-attendance", upper)["event_id"] == valid()["event_id"].lower()


def test_a_trigger_meeting_child_id_is_the_pipelines_opaque_id_never_an_nhs_number_or_upn() -> None:
    meeting = {"event_id": "0f8fad5b-d9cb-469f-a165-70867728950e", "child_id": "9990000018",
               "held_at": "2026-11-24T10:00:00+00:00", "outcome": "plan agreed"}
    for child_id in ("9990000018", "A999219425003"):
        with pytest.raises(codec.CodecError) as caught:
            codec.from_json("trigger-meeting-recorded", {**meeting, "child_id": child_id})
        assert [e.field for e in caught.value.errors] == ["child_id"] and child_id not in str(caught.value)


def test_missing_field_and_all_errors_reported_together() -> None:
    broken = valid()
    del broken["clinician_contact"]
    broken["consent"] = "MAYBE"
    with pytest.raises(codec.CodecError) as caught:
        codec.from_json("self-harm-attendance", broken)
    assert {e.field for e in caught.value.errors} == {"clinician_contact", "consent"}


@pytest.mark.parametrize("data", [
    b"", b"\x00\x01garbage", b"\xc3\x01" + b"\xff" * 8 + b"\x00",
    b"\xc3\x01" + bytes.fromhex(GOLDEN_FINGERPRINT_HEX) + bytes.fromhex(GOLDEN_BODY_HEX)[:20],
    b"\xc3\x01" + bytes.fromhex(GOLDEN_FINGERPRINT_HEX) + bytes.fromhex(GOLDEN_BODY_HEX) + b"\x00",
])
def test_bad_bytes_are_a_codec_error(data: bytes) -> None:
    with pytest.raises(codec.CodecError):
        codec.decode(data)


def test_decode_refuses_another_event_types_bytes() -> None:
    with pytest.raises(codec.CodecError):
        codec.decode(codec.encode("self-harm-attendance", GOLDEN_RECORD), expected="missing-reported")


@given(st.binary(max_size=300))
def test_random_bytes_never_raise_anything_but_codec_error(data: bytes) -> None:
    with contextlib.suppress(codec.CodecError):  # any other exception type fails the test
        codec.decode(b"\xc3\x01" + bytes.fromhex(GOLDEN_FINGERPRINT_HEX) + data)


UPDATED = {"event_id": "0b7e1d1e-2f0c-4b8a-9a57-1f5c9f0e6a11", "episode_id": "E1",
           "updated_at": "2026-11-24T20:00:00+00:00", "risk_grade": None}


def test_json_null_for_an_absent_optional_array_is_its_default() -> None:
    # The contract: JSON bodies use null for an absent optional field.
    updated = codec.from_json("missing-updated", {**UPDATED, "exploitation_flags": None})
    assert updated["exploitation_flags"] == [] and updated["risk_grade"] is None
    assert updated == codec.from_json("missing-updated", UPDATED)
    interview = codec.from_json("return-interview-recorded", {
        "event_id": "0b7e1d1e-2f0c-4b8a-9a57-1f5c9f0e6a11", "episode_id": "E1",
        "recorded_at": "2026-11-24T20:00:00+00:00", "outcome": "COMPLETED", "held_at": None, "by_role": "worker",
        "attempts": None, "reason": None})
    assert interview["attempts"] == []
    codec.decode(codec.encode("return-interview-recorded", interview))


def test_defaults_are_not_shared_between_records() -> None:
    first = codec.from_json("missing-updated", {**UPDATED, "exploitation_flags": None})
    first["exploitation_flags"].append("CSE")
    assert codec.from_json("missing-updated", UPDATED)["exploitation_flags"] == []


def test_json_null_for_a_required_field_is_still_refused() -> None:
    with pytest.raises(codec.CodecError) as caught:
        codec.from_json("missing-updated", {**UPDATED, "episode_id": None})
    assert [e.field for e in caught.value.errors] == ["episode_id"]



def test_every_schema_has_an_alias_for_the_avro_packages_fingerprint() -> None:
    for name in (*codec.EVENT_TYPES, *codec.OUTPUT_TYPES):
        theirs = bytes(avro.schema.parse(codec.schema_path(name).read_text()).fingerprint("CRC-64-AVRO"))
        assert theirs == codec.fingerprint(name) or codec.FINGERPRINT_ALIASES[theirs] == name


@pytest.mark.parametrize("name,record", [
    ("self-harm-attendance", GOLDEN_RECORD),
    ("missing-updated", {"event_id": UPDATED["event_id"], "episode_id": "E1",
                         "updated_at": datetime(2026, 11, 24, 20, 0, tzinfo=UTC), "risk_grade": "HIGH",
                         "exploitation_flags": ["CCE"]}),
])
def test_decoding_accepts_the_avro_packages_fingerprint(name: str, record: dict[str, Any]) -> None:
    import fastavro

    theirs = bytes(avro.schema.parse(codec.schema_path(name).read_text()).fingerprint("CRC-64-AVRO"))
    assert theirs != codec.fingerprint(name)  # the two canonical forms differ for logical types
    if name == "self-harm-attendance":
        assert theirs.hex() == "89f77ffb6409d16a"
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, fastavro.parse_schema(json.loads(codec.schema_path(name).read_text())),
                               record)
    assert codec.decode(b"\xc3\x01" + theirs + buffer.getvalue(), expected=name) == (name, record)
    # Encoding keeps the contract's fingerprint: the spec's Parsing Canonical Form.
    assert codec.encode(name, record)[2:10] == codec.fingerprint(name)


def test_a_handed_over_record_is_given_out_once_and_the_hand_over_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(codec, "HANDOVER_LIMIT", 2)
    monkeypatch.setattr(codec, "_handover", {})
    name = "missing-found"
    records = [{"event_id": f"00000000-0000-4000-8000-00000000000{i}", "episode_id": f"EP-{i}",
                "found_at": datetime(2026, 11, 24, 18, i, tzinfo=UTC), "returned_to": "HOME", "safe_and_well_at": None}
               for i in range(3)]
    texts = [codec.stored_json(name, record) for record in records]
    for text, record in zip(texts, records, strict=True):
        codec.hand_over(name, text, record)
    assert codec.stored_record(name, texts[2]) is records[2]
    assert codec.stored_record(name, texts[2]) is not records[2]  # taken: decoded from the text now
    assert codec.stored_record(name, texts[2]) == records[2]
    assert codec.stored_record(name, texts[0]) is not records[0]  # the oldest was dropped past the bound
    assert codec.stored_record(name, texts[0]) == records[0]
