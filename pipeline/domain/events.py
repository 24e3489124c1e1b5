"""Typed events, built from records the codec has already validated."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pipeline.domain.model import Identity


def identity_from_record(child: dict[str, Any]) -> Identity:
    return Identity(
        given_name=child["given_name"],
        family_name=child["family_name"],
        date_of_birth=child["date_of_birth"],
        sex=child.get("sex"),
        nhs_number=child.get("nhs_number"),
        postcode=child.get("postcode"),
        school_name=child.get("school_name"),
    )


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
