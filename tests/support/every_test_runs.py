"""A pytest plugin: a run fails if any test did not really run and pass.

It catches every way a test can stand aside: a skip at run time (``pytest.skip``, a skip marker, a fixture that
skips in set-up, ``unittest.SkipTest``), a skip while collecting (a module-level ``pytest.skip`` or
``importorskip``, a conftest or dependency that skips a whole module), and an expected failure (xfail marker or
``pytest.xfail()``, including an unexpected pass under ``strict=False``). pyproject.toml's pytest settings close
the rest: ``empty_parameter_set_mark = "fail_at_collect"`` (a parametrize over nothing fails instead of
skipping) and ``xfail_strict = true``.

tests/conftest.py loads it; each pytest session gets its own instance, so a session run inside a test (pytester)
keeps its own count.
"""

from __future__ import annotations

import pytest


class EveryTestRuns:
    def __init__(self) -> None:
        self.not_run: list[tuple[str, str]] = []

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.skipped:
            self.not_run.append((report.nodeid or "(collection)", "skipped while collecting"))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if hasattr(report, "wasxfail"):
            self.not_run.append((report.nodeid, "marked as expected to fail (xfail)"))
        elif report.skipped:
            self.not_run.append((report.nodeid, f"skipped in {report.when}"))

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.not_run and exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.not_run:
            terminalreporter.write_line(
                f"FAILED: {len(self.not_run)} test(s) did not run: every test must run:", red=True)
            for nodeid, why in self.not_run:
                terminalreporter.write_line(f"  {nodeid}: {why}")


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(EveryTestRuns(), "every-test-runs")
