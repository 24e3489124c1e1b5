"""Schema evolution check: a new schema must be fully compatible with every earlier version.

Full compatibility means both directions: consumers on the new schema read records written with the old
one (backward), and consumers still on the old schema read records written with the new one (forward).
Dropping a field that has no default breaks forward compatibility; adding a field with a default is fine.
Uses the ``avro`` package's reader/writer checker (the reference implementation's rules).
"""

from __future__ import annotations

import json
from pathlib import Path

import avro.schema
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

from pipeline.codec import SCHEMA_DIR


def _problems(reader: avro.schema.Schema, writer: avro.schema.Schema, direction: str) -> list[str]:
    result = ReaderWriterCompatibilityChecker().get_compatibility(reader, writer)
    if result.compatibility is SchemaCompatibilityType.compatible:
        return []
    return [f"{direction}: {message}" for message in sorted(result.messages)] or [f"{direction}: incompatible"]


def check_compatible(new_schema_json: str, old_schema_json: str) -> list[str]:
    """Reasons the new schema is not fully compatible with the old one (empty: compatible)."""
    new, old = avro.schema.parse(new_schema_json), avro.schema.parse(old_schema_json)
    return _problems(new, old, "new readers of old data") + _problems(old, new, "old readers of new data")


def check_all(schema_dir: Path = SCHEMA_DIR) -> dict[str, list[str]]:
    """Every current schema against every version kept in schemas/history/<name>/."""
    failures: dict[str, list[str]] = {}
    for current in sorted(schema_dir.glob("*.avsc")):
        history = schema_dir / "history" / current.stem
        versions = sorted(history.glob("*.avsc"))
        if not versions:
            failures[current.stem] = ["no history kept in schemas/history/"]
        for version in versions:
            problems = check_compatible(current.read_text(encoding="utf-8"), version.read_text(encoding="utf-8"))
            if problems:
                failures[f"{current.stem} vs {version.name}"] = problems
    return failures


if __name__ == "__main__":
    found = check_all()
    print(json.dumps(found, indent=2) if found else "every schema is fully compatible with its history")
    raise SystemExit(1 if found else 0)
