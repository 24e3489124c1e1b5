"""Typed events, built from records the codec has already validated."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pipeline.domain.frozen import quick_init
from pipeline.domain.model import Identity


def identity_from_record(child: dict[str, Any]) -> Identity:
    return Identity(
        given_name=child.get("given_name"),
        family_name=child.get("family_name"),
        date_of_birth=child.get("date_of_birth"),
        sex=child.get("sex"),
        nhs_number=child.get("nhs_number"),
        postcode=child.get("postcode"),
        school_name=child.get("school_name"),
    )


@quick_init
@dataclass(frozen=True)
class SelfHarmAttendance:
    event_id: str
    attendance_id: str
    hospital_ods_code: str
    arrived_at: datetime
    child: Identity
    admitted: bool
    risk_summary: str
    exploitation_screening: str  # NOT_SCREENED | NO_CONCERN | CONCERN
    consent: str  # GIVEN | REFUSED | NOT_SOUGHT
    shared_without_consent_reason: str | None
    clinician_contact: str

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> SelfHarmAttendance:
        return cls(
            event_id=record["event_id"],
            attendance_id=record["attendance_id"],
            hospital_ods_code=record["hospital_ods_code"],
            arrived_at=record["arrived_at"],
            child=identity_from_record(record["child"]),
            admitted=record["admitted"],
            risk_summary=record["risk_summary"],
            exploitation_screening=record["exploitation_screening"],
            consent=record["consent"],
            shared_without_consent_reason=record.get("shared_without_consent_reason"),
            clinician_contact=record["clinician_contact"],
        )

    @property
    def exploitation_concern(self) -> bool:
        return self.exploitation_screening == "CONCERN"

    @property
    def may_share(self) -> bool:
        """Consent given, or the hospital recorded its reason for sharing without it."""
        reason = (self.shared_without_consent_reason or "").strip()
        return self.consent == "GIVEN" or bool(reason)


def rule_errors(event_type: str, record: dict[str, Any]) -> list[tuple[str, str]]:
    """Checks the schema cannot express: (field, message) pairs, never values."""
    errors: list[tuple[str, str]] = []
    if event_type == "return-interview-recorded":
        if record["outcome"] == "NOT_POSSIBLE" and not record.get("attempts"):
            errors.append(("attempts", "required (non-empty) when the outcome is NOT_POSSIBLE"))
        if record["outcome"] == "NOT_HELD_BY_DECISION" and not (record.get("reason") or "").strip():
            errors.append(("reason", "required when the outcome is NOT_HELD_BY_DECISION"))
    if event_type == "missing-reported" and record["last_seen_at"] > record["reported_at"]:
        errors.append(("last_seen_at", "must not be after reported_at"))
    for name in ("attendance_id", "episode_id", "hospital_ods_code", "force_code"):
        if name in record and not str(record[name]).strip():
            errors.append((name, "must not be blank"))
    when = record.get("arrived_at") or record.get("reported_at")
    child = record.get("child")
    if isinstance(child, dict) and when is not None and child.get("date_of_birth") is not None \
            and child["date_of_birth"] > when.date():
        errors.append(("child.date_of_birth", "must not be after the event"))
    return errors
