"""The demo hospital: emits self-harm attendances for pupils on the demo roll through the intake."""

from __future__ import annotations

import json
import random
import threading
import uuid
from typing import Any

from pipeline.adapters.reference_store import demo_pupils
from pipeline.bootstrap import Services
from pipeline.service.intake import Submission

HOSPITAL_ODS = "RXX01"


def attendance_for(pupil: Any, rng: random.Random, services: Services) -> dict[str, object]:
    return {
        "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "attendance_id": f"ED-{rng.randrange(10**6, 10**7)}",
        "hospital_ods_code": HOSPITAL_ODS,
        "arrived_at": services.clock().isoformat(),
        "child": {"nhs_number": pupil.nhs_number, "given_name": pupil.given_name,
                  "family_name": pupil.family_name, "date_of_birth": pupil.date_of_birth.isoformat(),
                  "sex": pupil.sex or "U", "postcode": pupil.postcode, "school_name": None},
        "admitted": rng.random() < 0.3,
        "risk_summary": "Seen in the emergency department; discharged with a safety plan and CAMHS follow-up.",
        "exploitation_screening": rng.choice(["NOT_SCREENED", "NO_CONCERN", "NO_CONCERN", "CONCERN"]),
        "consent": rng.choice(["GIVEN", "GIVEN", "GIVEN", "REFUSED"]),
        "shared_without_consent_reason": None,
        "clinician_contact": "ED safeguarding nurse, extension 4321",
    }


class DemoHospital:
    def __init__(self, services: Services, stop: threading.Event, every_seconds: float = 20.0) -> None:
        self.services, self.stop, self.every = services, stop, every_seconds
        self.rng = random.Random()

    def start(self) -> None:
        threading.Thread(target=self._run, name="demo-hospital", daemon=True).start()

    def _run(self) -> None:
        self.services.ready.wait()
        while not self.stop.is_set():
            with self.services.store.read() as session:
                pupils = demo_pupils(session)
            if pupils:
                record = attendance_for(self.rng.choice(pupils), self.rng, self.services)
                self.services.intake.submit(Submission("self-harm-attendance", json.dumps(record).encode(),
                                                       source="demo"))
                self.services.on_accepted()
            self.stop.wait(self.every)
