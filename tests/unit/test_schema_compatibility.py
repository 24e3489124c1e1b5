"""Every schema stays fully compatible with its history; the check itself rejects and accepts as it should."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.codec import SCHEMA_DIR
from pipeline.schema_compat import check_all, check_compatible

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "schemas"
CURRENT = (SCHEMA_DIR / "self-harm-attendance.avsc").read_text()


def test_every_schema_is_compatible_with_every_version_in_its_history() -> None:
    assert check_all() == {}
    for schema in SCHEMA_DIR.glob("*.avsc"):
        assert list((SCHEMA_DIR / "history" / schema.stem).glob("*.avsc")), f"{schema.stem} has no history"


def test_dropping_a_field_without_a_default_is_rejected() -> None:
    problems = check_compatible((FIXTURES / "self-harm-attendance.drops-required-field.avsc").read_text(), CURRENT)
    assert problems and any("clinician_contact" in p for p in problems)


def test_adding_a_defaulted_field_is_accepted() -> None:
    assert check_compatible((FIXTURES / "self-harm-attendance.adds-defaulted-field.avsc").read_text(), CURRENT) == []


def test_a_history_without_versions_is_reported(tmp_path: Path) -> None:
    (tmp_path / "orphan.avsc").write_text(CURRENT)
    assert check_all(tmp_path) == {"orphan": ["no history kept in schemas/history/"]}


def _with_history(tmp_path: Path, old: str, new: str, declared: str | None) -> Path:
    (tmp_path / "history" / "thing").mkdir(parents=True)
    (tmp_path / "history" / "thing" / "v1.avsc").write_text(old)
    (tmp_path / "thing.avsc").write_text(new)
    if declared is not None:
        (tmp_path / "history" / "thing" / "compatibility.json").write_text(declared)
    return tmp_path


def test_making_a_required_field_nullable_needs_a_declared_backward_only_version(tmp_path: Path) -> None:
    old = (SCHEMA_DIR / "history" / "self-harm-attendance" / "v1.avsc").read_text()
    assert check_all(_with_history(tmp_path / "a", old, CURRENT, None))  # old readers cannot read a null name
    declared = '{"v1.avsc": {"mode": "backward", "reason": "names may be unknown"}}'
    assert check_all(_with_history(tmp_path / "b", old, CURRENT, declared)) == {}


def test_a_backward_only_version_still_rejects_what_new_readers_cannot_read(tmp_path: Path) -> None:
    declared = '{"v1.avsc": {"mode": "backward", "reason": "names may be unknown"}}'
    dropped = (FIXTURES / "self-harm-attendance.drops-required-field.avsc").read_text()
    # Old data read by a reader that added a required field without a default: not readable.
    assert check_all(_with_history(tmp_path / "a", dropped, CURRENT, declared))


def test_a_declared_mode_without_a_reason_is_refused(tmp_path: Path) -> None:
    old = (SCHEMA_DIR / "history" / "self-harm-attendance" / "v1.avsc").read_text()
    found = check_all(_with_history(tmp_path, old, CURRENT, '{"v1.avsc": {"mode": "backward"}}'))
    assert "thing compatibility.json" in found
