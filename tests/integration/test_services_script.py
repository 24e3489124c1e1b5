"""The tests' helper for scripts/services/services.py reports the script's own output when it fails, so a
service that would not (re)start says why in the test report."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.services import ServicesScriptFailed, run_services


def test_a_failing_services_command_reports_the_scripts_stdout_and_stderr(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAFEGUARD_TEST_SERVICES_DIR", str(tmp_path / "never-started"))
    with pytest.raises(ServicesScriptFailed) as failed:
        run_services("status", timeout=60)  # exits 1, says so on stdout
    assert "services.py status exited 1" in str(failed.value)
    assert "not started" in str(failed.value).split("--- stdout ---")[1]
    with pytest.raises(ServicesScriptFailed) as failed:
        run_services("start-kafka", timeout=60)  # exits 1, says why on stderr
    stderr = str(failed.value).split("--- stderr ---")[1]
    assert "services start-kafka: services are not started" in stderr
