"""Checks on an event that its schema cannot express: named by field, never by value."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from pipeline import codec
from pipeline.domain.events import rule_errors
from tests.support.world import AMELIA, attendance

pytestmark = pytest.mark.unit


def record(**changes: object) -> dict[str, object]:
    return codec.from_json("self-harm-attendance", {**attendance(AMELIA), **changes})


def test_a_valid_attendance_has_no_rule_errors() -> None:
    assert rule_errors("self-harm-attendance", record()) == []


@pytest.mark.parametrize("field", ["attendance_id", "hospital_ods_code"])
def test_a_blank_identifier_is_refused(field: str) -> None:
    assert (field, "must not be blank") in rule_errors("self-harm-attendance", record(**{field: "  "}))


def test_a_date_of_birth_after_the_attendance_is_refused() -> None:
    born_later = {**AMELIA, "date_of_birth": "2027-01-01"}
    errors = rule_errors("self-harm-attendance", record(child=born_later,
                                                        arrived_at=datetime(2026, 11, 24, tzinfo=UTC).isoformat()))
    assert errors == [("child.date_of_birth", "must not be after the event")]
    assert date(2027, 1, 1).isoformat() not in str(errors)
