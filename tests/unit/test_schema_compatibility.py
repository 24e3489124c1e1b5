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
