"""`safeguard run --demo`: demo reference data and users on an empty database, and how to log in."""

from __future__ import annotations

from pipeline.adapters import reference_store
from pipeline.bootstrap import Services
from pipeline.service.demo_data import csv_text, generate
from pipeline.service.reference import ReferenceError, load
from pipeline.service.users import add_user
from pipeline.settings import ConfigurationError

DEMO_PASSWORD = "demo-only-password"  # printed for the demo; never used outside `--demo`
DEMO_SEED = 1
DEMO_PUPILS = 2000


def seed_demo(services: Services) -> list[str]:
    """Load demo data if the database has none; create demo users; return lines to print."""
    now = services.clock()
    with services.store.unit_of_work() as port:
        session = port.session
        if not reference_store.any_school_loaded(session):
            data = generate(seed=DEMO_SEED, pupils=DEMO_PUPILS)
            for kind in ("schools", "teams", "pupils", "ehe", "involvements"):
                try:
                    load(port, kind, csv_text(kind, data[kind]), now, services.ctx.policy.routed_teams())
                except ReferenceError as error:  # the configuration routes to a team the demo has no row for
                    raise ConfigurationError(f"demo {kind}: {'; '.join(error.problems)} (check the team codes "
                                             "in the configuration's ladders and routes)") from None
        school = reference_store.first_state_school_in_area(session)
        assert school is not None
        worker = reference_store.first_allocated_worker(session)
        demo_users = [("dsl", "dsl@demo.example", school.urn, None), ("manager", "manager@demo.example", None, None),
                      ("team", "front-door@demo.example", None, "FRONT_DOOR"),
                      ("producer", "hospital@demo.example", None, None), ("admin", "admin@demo.example", None, None)]
        if worker:
            demo_users.append(("worker", worker, None, None))
        for role, email, urn, team in demo_users:
            if port.user_by_email(email) is None:
                add_user(port, role, email, urn, team, DEMO_PASSWORD)
    return [
        "Demo data loaded (a fictional council; no real person).",
        f"Log in at {services.settings.public_url}/login with password {DEMO_PASSWORD!r} as:",
        f"  DSL of school {school.urn}: dsl@demo.example",
        "  manager:                manager@demo.example",
        "  front door team:        front-door@demo.example",
        *([f"  worker (a caseload):    {worker}"] if worker else []),
        "  admin (users):          admin@demo.example",
        "A demo hospital sends a self-harm attendance every 20 seconds; unacknowledged school alerts",
        "escalate within minutes (config/demo.yaml).",
    ]
