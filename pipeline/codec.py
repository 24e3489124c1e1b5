"""The project's one Avro codec: schemas/*.avsc, parsed once, on fastavro.

Wire format: the Avro specification's single-object encoding, ``C3 01`` + the 8-byte little-endian
CRC-64-AVRO fingerprint of the schema's Parsing Canonical Form (as the spec defines it: logical types
are not part of it) + the Avro binary body. Decoding also accepts the fingerprint the `avro` package
computes for the same schema (its canonical form keeps logical types' primitives as objects), so a producer
or checker built on that package is understood. JSON uses the schema's field names with plain values: dates
``YYYY-MM-DD``, times ISO-8601 with an offset (rejected without one), null for an absent optional field.

Every failure is a ``CodecError`` listing field paths and what is wrong, never the offending values, so
an error can be logged and returned to a producer without leaking personal data.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import re
import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import fingerprint as _fingerprint_hex
from fastavro.schema import to_parsing_canonical_form

from pipeline.json_text import json_text

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"
MAGIC = b"\xc3\x01"
EVENT_TYPES: tuple[str, ...] = (
    "self-harm-attendance", "missing-reported", "missing-updated", "missing-found",
    "return-interview-recorded", "trigger-meeting-recorded",
)
OUTPUT_TYPES: tuple[str, ...] = ("pathway-notification", "escalation", "dead-letter")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


class CodecError(ValueError):
    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field or 'body'}: {e.message}" for e in errors))
        self.errors = errors


def _error(field: str, message: str) -> CodecError:
    return CodecError([FieldError(field, message)])


@dataclass(frozen=True)
class _Schema:
    name: str
    raw: dict[str, Any]
    parsed: Any
    fingerprint: bytes
    writer: Any = None  # an earlier version (schemas/history/) the body was written with; None: this one


def schema_path(name: str) -> Path:
    return SCHEMA_DIR / f"{name}.avsc"


def fingerprint_of(schema_json: dict[str, Any]) -> bytes:
    """CRC-64-AVRO of the spec's Parsing Canonical Form, little-endian, as single-object encoding wants."""
    return bytes.fromhex(_fingerprint_hex(to_parsing_canonical_form(schema_json), "CRC-64-AVRO"))


@cache
def _schemas() -> dict[str, _Schema]:
    loaded: dict[str, _Schema] = {}
    for name in (*EVENT_TYPES, *OUTPUT_TYPES):
        raw = json.loads(schema_path(name).read_text(encoding="utf-8"))
        loaded[name] = _Schema(name, raw, fastavro.parse_schema(raw), fingerprint_of(raw))
    return loaded


def _avro_package_fingerprint(schema_text: str) -> bytes:
    """The fingerprint the `avro` package (1.12) computes for a schema. Its canonical form keeps a logical
    type's primitive as ``{"type": "long"}`` where the spec's Parsing Canonical Form (and so ours) writes
    ``"long"``, so for schemas with logical types the two differ."""
    import avro.schema  # only here: the codec itself runs on fastavro

    return bytes(avro.schema.parse(schema_text).fingerprint("CRC-64-AVRO"))


def _fingerprint_aliases() -> dict[bytes, str]:
    """Other fingerprints accepted on decoding, each naming the schema it stands for: a producer or checker
    built on the `avro` package is not rejected. Encoding always uses the spec's fingerprint."""
    schemas = _schemas()
    ours = {schema.fingerprint for schema in schemas.values()}
    aliases: dict[bytes, str] = {}
    for name, schema in schemas.items():
        theirs = _avro_package_fingerprint(json.dumps(schema.raw))
        if theirs not in ours:
            aliases[theirs] = name
    return aliases


FINGERPRINT_ALIASES: dict[bytes, str] = _fingerprint_aliases()  # built once, at import


def _history_versions() -> dict[bytes, _Schema]:
    """Earlier versions kept in schemas/history/<name>/, by both fingerprints: a producer still writing one
    is read with Avro schema resolution into the current schema (the compatibility gate guarantees that
    new readers read every kept version)."""
    found: dict[bytes, _Schema] = {}
    for name, current in _schemas().items():
        for version in sorted((SCHEMA_DIR / "history" / name).glob("*.avsc")):
            text = version.read_text(encoding="utf-8")
            raw = json.loads(text)
            old = _Schema(name, current.raw, current.parsed, current.fingerprint, fastavro.parse_schema(raw))
            for print_ in (fingerprint_of(raw), _avro_package_fingerprint(text)):
                found.setdefault(print_, old)
    return found


@cache
def _by_fingerprint() -> dict[bytes, _Schema]:
    schemas = _schemas()
    found = _history_versions()
    found.update({alias: schemas[name] for alias, name in FINGERPRINT_ALIASES.items()})
    found.update({schema.fingerprint: schema for schema in schemas.values()})
    return found


def _schema(name: str) -> _Schema:
    try:
        return _schemas()[name]
    except KeyError:
        raise _error("event_type", "unknown event type") from None


def fingerprint(name: str) -> bytes:
    return _schema(name).fingerprint


def encode_body(name: str, record: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    try:
        fastavro.schemaless_writer(buffer, _schema(name).parsed, record)
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise _error("", f"record does not fit the schema ({type(error).__name__})") from None
    return buffer.getvalue()


def encode(name: str, record: dict[str, Any]) -> bytes:
    """Single-object encoding of a record (in the Python form ``from_json`` returns)."""
    return MAGIC + fingerprint(name) + encode_body(name, record)


def decode(data: bytes, expected: str | None = None) -> tuple[str, dict[str, Any]]:
    """Decode single-object bytes; returns (schema name, record)."""
    if len(data) < 10 or data[:2] != MAGIC:
        raise _error("", "not Avro single-object encoding (expected C3 01 and a fingerprint)")
    schema = _by_fingerprint().get(bytes(data[2:10]))
    if schema is None:
        raise _error("", "unknown schema fingerprint")
    if expected is not None and schema.name != expected:
        raise _error("", "the body's schema is not the event type's schema")
    buffer = io.BytesIO(data[10:])
    try:
        if schema.writer is not None:
            record = fastavro.schemaless_reader(buffer, schema.writer, schema.parsed)
        else:
            record = fastavro.schemaless_reader(buffer, schema.parsed, None)
    except Exception:  # noqa: BLE001 - truncated or garbage bodies raise many types inside fastavro
        raise _error("", "the Avro body cannot be decoded") from None
    if buffer.read(1):
        raise _error("", "bytes left over after the Avro body")
    if not isinstance(record, dict):
        raise _error("", "the Avro body is not a record")
    try:
        _check_formats(schema.name, record)
    except CodecError:
        raise
    return schema.name, _normalise_times(record)


def _normalise_times(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    if isinstance(value, dict):
        return {k: _normalise_times(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalise_times(v) for v in value]
    return value


_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# Fields holding an id the pipeline or a producer made: a UUID, written 8-4-4-4-12, kept in lower case so
# that one UUID written in two cases is one event. Every event has its event_id; a trigger meeting's child_id
# is the pipeline's own opaque id, never an NHS number or UPN.
_UUID_FIELDS = {"trigger-meeting-recorded": ("event_id", "child_id")}
_EARLIEST, _LATEST = 1900, 2100


def is_uuid(value: str) -> bool:
    return _UUID.fullmatch(value) is not None


def _format_errors(value: Any, path: str, errors: list[FieldError]) -> None:
    """Text that is not storable Unicode (lone surrogates, NUL) and dates or times outside any plausible range.
    Names only the field, never the value."""
    if isinstance(value, dict):
        for key, item in value.items():
            _format_errors(item, f"{path}.{key}" if path else str(key), errors)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _format_errors(item, f"{path}[{index}]", errors)
    elif isinstance(value, str):
        if not value.isascii():  # ASCII text holds no lone surrogate
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                errors.append(FieldError(path, "must be valid Unicode text"))
                return
        if "\x00" in value:
            errors.append(FieldError(path, "must not contain NUL characters"))
    elif isinstance(value, date) and not _EARLIEST <= value.year <= _LATEST:
        errors.append(FieldError(path, f"is out of range (years {_EARLIEST} to {_LATEST})"))


def _check_formats(name: str, record: dict[str, Any]) -> None:
    """Checks on the decoded record, the same for JSON and Avro bodies; lower-cases UUID fields in place."""
    errors: list[FieldError] = []
    for field in _UUID_FIELDS.get(name, ("event_id",)):
        if field in record:
            value = record[field]
            if not isinstance(value, str) or not is_uuid(value):
                errors.append(FieldError(field, "must be a UUID (8-4-4-4-12 hexadecimal digits)"))
            else:
                record[field] = value.lower()
    _format_errors(record, "", errors)
    if errors:
        raise CodecError(errors)


# ---- JSON ---------------------------------------------------------------------------------------------

_PRIMITIVE_CHECKS: dict[str, tuple[type | tuple[type, ...], str]] = {
    "string": (str, "must be a string"), "boolean": (bool, "must be true or false"),
    "int": (int, "must be an integer"), "long": (int, "must be an integer"),
    "float": ((int, float), "must be a number"), "double": ((int, float), "must be a number"),
}


class _JsonReader:
    """Walks a schema and a JSON value together, collecting every problem."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []
        self.named: dict[str, Any] = {}

    def fail(self, path: str, message: str) -> None:
        self.errors.append(FieldError(path, message))

    def read(self, schema: Any, value: Any, path: str) -> Any:
        if isinstance(schema, str):
            if schema in self.named:
                return self.read(self.named[schema], value, path)
            return self.primitive(schema, None, value, path)
        if isinstance(schema, list):
            if value is None:
                if "null" in schema:
                    return None
                self.fail(path, "must not be null")
                return None
            branches = [b for b in schema if b != "null"]
            return self.read(branches[0], value, path)  # our unions are all ["null", X]
        kind = schema["type"]
        if kind in ("record", "enum"):
            self.named[schema["name"]] = schema
            self.named[schema.get("namespace", "") + "." + schema["name"]] = schema
        if kind == "record":
            return self.record(schema, value, path)
        if kind == "enum":
            if not isinstance(value, str):
                self.fail(path, "must be a string")
            elif value not in schema["symbols"]:
                self.fail(path, f"must be one of {', '.join(schema['symbols'])}")
            return value
        if kind == "array":
            if not isinstance(value, list):
                self.fail(path, "must be an array")
                return []
            return [self.read(schema["items"], item, f"{path}[{i}]") for i, item in enumerate(value)]
        return self.primitive(kind, schema.get("logicalType"), value, path)

    def record(self, schema: dict[str, Any], value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(path, "must be an object")
            return {}
        out: dict[str, Any] = {}
        for field in schema["fields"]:
            name = field["name"]
            where = f"{path}.{name}" if path else name
            if name not in value or (value[name] is None and field.get("default") is not None):
                # Absent, or JSON null for an absent optional field (as the contract allows): the default.
                if "default" in field:
                    out[name] = copy.deepcopy(field["default"])
                else:
                    self.fail(where, "required")
                continue
            out[name] = self.read(field["type"], value[name], where)
        if not _field_names(schema).issuperset(value):
            # Named by where it is, not by its name: a name a producer made up can be personal data.
            self.fail(path, "has a field the schema does not know")
        return out

    def primitive(self, kind: str, logical: str | None, value: Any, path: str) -> Any:
        if logical == "date":
            if not isinstance(value, str):
                self.fail(path, "must be a date string YYYY-MM-DD")
                return None
            try:
                if len(value) != 10:
                    raise ValueError
                return date.fromisoformat(value)
            except ValueError:
                self.fail(path, "must be a date YYYY-MM-DD")
                return None
        if logical in ("timestamp-micros", "timestamp-millis"):
            if not isinstance(value, str):
                self.fail(path, "must be an ISO-8601 time string with an offset")
                return None
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                self.fail(path, "must be an ISO-8601 time with an offset")
                return None
            if parsed.tzinfo is None or parsed.utcoffset() is None:
                self.fail(path, "must be an ISO-8601 time with an offset (no offset given)")
                return None
            try:
                return parsed.astimezone(UTC)
            except OverflowError:
                self.fail(path, "is out of range")
                return None
        if kind == "string" and logical is None and type(value) is str:
            return value  # the commonest value of all, and nothing to check
        if kind == "null":
            if value is not None:
                self.fail(path, "must be null")
            return None
        if kind == "bytes":
            if not isinstance(value, str):
                self.fail(path, "must be a string")
                return b""
            return value.encode("latin-1", "replace")
        expected, message = _PRIMITIVE_CHECKS[kind]
        if not isinstance(value, expected) or (kind != "boolean" and isinstance(value, bool)):
            self.fail(path, message)
            return None
        if kind in ("int", "long") and isinstance(value, int) and not -(2 ** 63) <= value < 2 ** 63:
            self.fail(path, "is out of range")
        return value


# A record schema's field names, by the schema dict's id(); each entry holds its schema, so the id is not reused.
_FIELD_NAMES: dict[int, tuple[dict[str, Any], frozenset[str]]] = {}


def _field_names(schema: dict[str, Any]) -> frozenset[str]:
    kept = _FIELD_NAMES.get(id(schema))
    if kept is None or kept[0] is not schema:
        kept = _FIELD_NAMES[id(schema)] = (schema, frozenset(field["name"] for field in schema["fields"]))
    return kept[1]


def from_json(name: str, obj: Any) -> dict[str, Any]:
    """Validate a parsed JSON value against the schema; returns the record in fastavro's Python form."""
    schema = _schema(name)
    reader = _JsonReader()
    record = reader.read(schema.raw, obj, "")
    if reader.errors:
        raise CodecError(reader.errors)
    _check_formats(name, record)
    return record


def _to_json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, dict):
        return {k: _to_json_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_json_value(v) for v in value]
    return value


def to_json(name: str, record: dict[str, Any]) -> dict[str, Any]:
    """The reverse of ``from_json``: plain JSON values (times in UTC with their offset)."""
    _schema(name)
    result = _to_json_value(record)
    assert isinstance(result, dict)
    return result


def record_hash(name: str, record: dict[str, Any]) -> str:
    """A stable digest of the record's content: the same event sent twice hashes the same."""
    return hashlib.sha256(fingerprint(name) + encode_body(name, record)).hexdigest()


def stored_json(name: str, record: dict[str, Any]) -> str:
    """The JSON text the intake stores for a record (``to_json``'s form)."""
    return json_text(to_json(name, record))


# A decoded record handed from the intake to the consumer of the same process (the embedded runtime), so an
# accepted event is decoded once: the consumer takes it back by its stored JSON text (unique: it holds the
# event_id). Bounded: a record nobody takes (another process processes it) is dropped, oldest first.
HANDOVER_LIMIT = 8192
_handover: dict[str, tuple[str, dict[str, Any]]] = {}
_handover_lock = threading.Lock()


def hand_over(name: str, record_json: str, record: dict[str, Any]) -> None:
    """Keep a validated record (once its event is committed) for ``stored_record`` in this process."""
    with _handover_lock:
        _handover[record_json] = (name, record)
        while len(_handover) > HANDOVER_LIMIT:
            del _handover[next(iter(_handover))]


def stored_record(name: str, record_json: str) -> dict[str, Any]:
    """The record of a stored event: the intake's own decoded copy when this process accepted it (each copy is
    given out once), otherwise decoded and validated from the stored JSON."""
    with _handover_lock:
        kept = _handover.pop(record_json, None)
    if kept is not None and kept[0] == name:
        return kept[1]
    return from_json(name, json.loads(record_json))
