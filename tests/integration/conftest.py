"""Integration fixtures: a real store (SQLite in a temp dir), the real app, a settable clock."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from consumers.intake_consumer import IntakeConsumer
from pipeline.adapters.channels import RecordingChannel
from pipeline.bootstrap import Services, build
from pipeline.entrypoints.api import create_app
from pipeline.service.reference import load
from pipeline.service.relay import relay
from pipeline.service.sweep import sweep
from pipeline.service.users import add_user
from pipeline.settings import Settings
from tests.support.providers import FakeProviders, FakeSmtp
from tests.support.world import REFERENCE, TERM_EVENING


@dataclass
class Clock:
    now: datetime = TERM_EVENING

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Pipeline:
    """The embedded pipeline's parts, driven step by step by a test."""

    services: Services
    client: TestClient
    clock: Clock
    tokens: dict[str, str] = field(default_factory=dict)

    def headers(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def post_event(self, event: dict[str, Any], event_type: str = "self-harm-attendance",
                   who: str = "producer") -> Any:
        return self.client.post(f"/api/events/{event_type}", json=event, headers=self.headers(who))

    def run(self) -> None:
        """Process everything accepted, relay the outbox, and sweep due deadlines, at the clock's now."""
        IntakeConsumer(self.services.store, self.services.ctx, self.clock).run_once(10_000)
        sweep(self.services.store, self.services.ctx, self.clock())
        while relay(self.services.store, self.services.delivery, self.services.publisher, self.clock(), batch=10_000):
            pass

    def get(self, path: str, who: str) -> Any:
        return self.client.get(path, headers=self.headers(who))


USERS = {
    "producer": ("producer", "hospital@test.example", None, None),
    "producer2": ("producer", "other-hospital@test.example", None, None),
    "dsl": ("dsl", "dsl@riverside.sch.example", "100001", None),
    "dsl_other": ("dsl", "dsl@hilltop.sch.example", "100002", None),
    "worker": ("worker", "sam.worker@northshire.gov.example", None, None),
    "worker_other": ("worker", "erin.helper@northshire.gov.example", None, None),
    "front_door": ("team", "fd@test.example", None, "FRONT_DOOR"),
    "scies": ("team", "scies@test.example", None, "SCIES"),
    "manager": ("manager", "manager@test.example", None, None),
    "admin": ("admin", "admin@test.example", None, None),
}


# Argon2 at its lowest cost: ten users' web passwords hash in milliseconds instead of seconds (a deployment
# keeps the settings' default; verifying is the same code whatever the cost).
TEST_PASSWORD_HASHING = {"argon2_time_cost": 1, "argon2_memory_kib": 64}


def make_settings(tmp_path: Path, overrides: dict[str, Any] | None = None,
                  database_url: str | None = None, **process: Any) -> Settings:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(overrides or {}), encoding="utf-8")
    process = {**TEST_PASSWORD_HASHING, **process}
    return Settings(database_url=database_url or f"sqlite:///{tmp_path / 'safeguard.db'}", config=config,
                    public_url="http://127.0.0.1:8000", var_dir=tmp_path / "var", **process)


def pipeline_over(tmp_path: Path, database_url: str, now: datetime, tokens: dict[str, str]) -> Pipeline:
    """The pipeline over a database the test filled itself (through the CLI, say), its clock at ``now``;
    ``tokens``: the API tokens of its users by name."""
    services = build(make_settings(tmp_path, database_url=database_url))
    clock = Clock(now)
    services.clock = clock
    services.ready.set()
    return Pipeline(services, TestClient(create_app(services)), clock, tokens)


def start_pipeline(tmp_path: Path, overrides: dict[str, Any] | None = None,
                   database_url: str | None = None, web_passwords: bool = True, **process: Any) -> Pipeline:
    """``web_passwords=False`` gives the users API tokens only (no password hashing at all).
    The tests hash at the lowest Argon2 cost anyway (``TEST_PASSWORD_HASHING``).
    With ``process`` settings (SMTP host, Twilio, Notify, webhook secret...) the real channels are wired
    from them; without, recording fakes stand in for email and SMS."""
    clock = Clock()
    services = build(make_settings(tmp_path, overrides, database_url, **process))
    services.clock = clock
    if not process:
        services.delivery.channels = {"email": RecordingChannel("email"), "sms": RecordingChannel("sms")}
    with services.store.unit_of_work() as port:
        for kind, text in REFERENCE.items():
            load(port, kind, text, clock())
        tokens = {}
        for name, (role, email, school, team) in USERS.items():
            _, tokens[name] = add_user(port, role, email, school, team,
                                       password="correct horse battery" if web_passwords else None)
    services.ready.set()
    return Pipeline(services, TestClient(create_app(services)), clock, tokens)


@pytest.fixture
def sqlite_pipeline(tmp_path: Path) -> Iterator[Pipeline]:
    """The pipeline on SQLite only (for what only the embedded runtime does)."""
    p = start_pipeline(tmp_path)
    yield p
    p.services.store.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def pipeline(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Pipeline]:
    """The store port's contract: every test using this runs against SQLite and against real PostgreSQL."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    p = start_pipeline(tmp_path, database_url=url)
    yield p
    p.services.store.dispose()


@pytest.fixture(scope="module")
def providers() -> Iterator[FakeProviders]:
    """The HTTP stand-ins for Twilio, GOV.UK Notify and school webhooks, one set per test module."""
    fake = FakeProviders().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def smtp() -> Iterator[FakeSmtp]:
    """A real SMTP server on loopback recording each mail, one per test module."""
    fake = FakeSmtp().start()
    yield fake
    fake.stop()
