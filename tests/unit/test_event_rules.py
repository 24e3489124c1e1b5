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


@pytest.mark.parametrize(("outcome", "changes", "field"), [
    ("NOT_POSSIBLE", {"attempts": []}, "attempts"),
    ("NOT_HELD_BY_DECISION", {"reason": None}, "reason"),
    ("NOT_HELD_BY_DECISION", {"reason": "   "}, "reason"),
])
def test_a_return_interview_not_held_says_why(outcome: str, changes: dict[str, object], field: str) -> None:
    at = datetime(2026, 11, 26, 10, 0, tzinfo=UTC).isoformat()
    base = {"event_id": "5b0a3b7e-3f52-4f0e-9a53-3c1f6f1f0b11", "episode_id": "EP-1", "recorded_at": at,
            "outcome": outcome, "held_at": at, "by_role": "RHI_PROVIDER", "attempts": [{"at": at, "method": "phone"}],
            "reason": "the child's social worker advised against one"}
    refused = codec.from_json("return-interview-recorded", {**base, **changes})
    assert [f for f, _ in rule_errors("return-interview-recorded", refused)] == [field]
    assert rule_errors("return-interview-recorded", codec.from_json("return-interview-recorded", base)) == []
