"""Shared test set-up: tiers by folder, and a run that fails if any test is skipped or xfailed."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

hypothesis_settings.register_profile("ci", max_examples=60, deadline=None)
hypothesis_settings.register_profile("dev", max_examples=100, deadline=None)
hypothesis_settings.load_profile("ci")

_TIERS = ("unit", "integration", "kafka", "browser")
_not_run: list[str] = []
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
    if report.skipped or hasattr(report, "wasxfail"):
        _not_run.append(report.nodeid)
    tier = _tier_of(report.nodeid)
    _tier_seconds[tier] = _tier_seconds.get(tier, 0.0) + report.duration
    _tier_tests.setdefault(tier, set()).add(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _not_run and exitstatus == 0:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for tier in (*_TIERS, "other"):
        if tier in _tier_seconds:
            terminalreporter.write_line(
                f"tier {tier}: {len(_tier_tests[tier])} tests, {_tier_seconds[tier]:.1f} s")
    if _not_run:
        terminalreporter.write_line(
            f"FAILED: {len(_not_run)} test(s) were skipped or xfailed; every test must run:", red=True)
        for nodeid in _not_run:
            terminalreporter.write_line(f"  {nodeid}")
