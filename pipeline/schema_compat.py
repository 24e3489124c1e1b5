"""Schema evolution check: a new schema must be fully compatible with every earlier version.

Full compatibility means both directions: consumers on the new schema read records written with the old
one (backward), and consumers still on the old schema read records written with the new one (forward).
Dropping a field that has no default breaks forward compatibility; adding a field with a default is fine.
Uses the ``avro`` package's reader/writer checker (the reference implementation's rules).

A version may be declared backward-only in ``schemas/history/<name>/compatibility.json``
(``{"v1.avsc": {"mode": "backward", "reason": "..."}}``): new readers must still read it, but it is
accepted that its readers cannot read new data. That is for a deliberate contract change (a required
field made nullable, e.g. a child's name when the sender does not know it), never to get past the gate
by accident: the reason is required.
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


def check_backward(new_schema_json: str, old_schema_json: str) -> list[str]:
    """Reasons new readers cannot read data written with the old schema (empty: they can)."""
    new, old = avro.schema.parse(new_schema_json), avro.schema.parse(old_schema_json)
    return _problems(new, old, "new readers of old data")


def _declared_modes(history: Path) -> tuple[dict[str, str], list[str]]:
    """Per-version compatibility modes declared in history/<name>/compatibility.json, and any problems."""
    declared = history / "compatibility.json"
    if not declared.exists():
        return {}, []
    modes: dict[str, str] = {}
    problems: list[str] = []
    for version, entry in json.loads(declared.read_text(encoding="utf-8")).items():
        if not isinstance(entry, dict) or entry.get("mode") not in ("backward", "full") \
                or not str(entry.get("reason") or "").strip():
            problems.append(f"compatibility.json: {version} needs a mode (backward or full) and a reason")
            continue
        modes[version] = entry["mode"]
    return modes, problems


def check_all(schema_dir: Path = SCHEMA_DIR) -> dict[str, list[str]]:
    """Every current schema against every version kept in schemas/history/<name>/ (fully, unless that version
    is declared backward-only)."""
    failures: dict[str, list[str]] = {}
    for current in sorted(schema_dir.glob("*.avsc")):
        history = schema_dir / "history" / current.stem
        versions = sorted(history.glob("*.avsc"))
        if not versions:
            failures[current.stem] = ["no history kept in schemas/history/"]
        modes, declared_problems = _declared_modes(history)
        if declared_problems:
            failures[f"{current.stem} compatibility.json"] = declared_problems
        for version in versions:
            check = check_backward if modes.get(version.name) == "backward" else check_compatible
            problems = check(current.read_text(encoding="utf-8"), version.read_text(encoding="utf-8"))
            if problems:
                failures[f"{current.stem} vs {version.name}"] = problems
    return failures


if __name__ == "__main__":
    found = check_all()
    print(json.dumps(found, indent=2) if found else "every schema is fully compatible with its history")
    raise SystemExit(1 if found else 0)
