"""Shared test set-up: tiers by folder, and a run that fails if any test is skipped or xfailed
(tests/support/every_test_runs.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from tests.support.services import SERVICES_SCRIPT as SERVICES_SCRIPT  # still importable from here
from tests.support.services import run_services

# The storage port over each adapter (the ``store_backend`` fixture), for any tier's tests; the guard that fails a
# run in which a test did not run; pytester, with which the guard's own test runs pytest inside a test.
pytest_plugins = ("tests.support.store_ports", "tests.support.every_test_runs", "pytester")

hypothesis_settings.register_profile("ci", max_examples=60, deadline=None)
hypothesis_settings.register_profile("dev", max_examples=100, deadline=None)
hypothesis_settings.load_profile("ci")

_TIERS = ("unit", "integration", "kafka", "browser")
_tier_seconds: dict[str, float] = {}
_tier_tests: dict[str, set[str]] = {}


def _tier_of(nodeid: str) -> str:
    parts = nodeid.split("/")
    return parts[1] if len(parts) > 2 and parts[1] in _TIERS else "other"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        tier = Path(str(item.fspath)).parent.name
        if tier in _TIERS and not any(item.iter_markers(name=tier)):
            item.add_marker(getattr(pytest.mark, tier))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    tier = _tier_of(report.nodeid)
    _tier_seconds[tier] = _tier_seconds.get(tier, 0.0) + report.duration
    _tier_tests.setdefault(tier, set()).add(report.nodeid)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for tier in (*_TIERS, "other"):
        if tier in _tier_seconds:
            terminalreporter.write_line(
                f"tier {tier}: {len(_tier_tests[tier])} tests, {_tier_seconds[tier]:.1f} s")


@pytest.fixture(scope="session")
def real_services() -> Iterator[dict[str, str]]:
    """A real PostgreSQL (and Kafka) on loopback, started once per run by scripts/services/services.py.

    Never skipped: if a service cannot start, every test that needs it fails with the reason (the tail of the
    script's output).
    """
    run_services("start", timeout=900)
    printed = run_services("env", timeout=60)
    values = dict(line.removeprefix("export ").split("=", 1) for line in printed.splitlines() if "=" in line)
    yield values
    # Left running on purpose: `make services-stop` (or the next boot) stops them; a second run reuses them.


@contextmanager
def fresh_postgres_database(real_services: dict[str, str]) -> Iterator[str]:
    """A fresh, empty PostgreSQL database owned by the application's role, dropped afterwards (for tests that
    need several, e.g. one per hypothesis example)."""
    import psycopg

    admin = real_services["SAFEGUARD_POSTGRES_ADMIN_URL"].replace("+psycopg", "")
    name = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" OWNER safeguard')
    base = real_services["SAFEGUARD_DATABASE_URL"].rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def postgres_url(real_services: dict[str, str]) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, owned by the application's role."""
    with fresh_postgres_database(real_services) as url:
        yield url
