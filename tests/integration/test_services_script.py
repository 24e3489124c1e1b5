"""The tests' helper for scripts/services/services.py reports the script's own output when it fails, so a
service that would not (re)start says why in the test report; the script's ``free_port`` is the project's one."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench import processes
from scripts.services import services
from tests.support import providers
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


def test_the_loopback_port_finder_is_written_once_in_the_script_that_runs_on_its_own(tmp_path: Path) -> None:
    """``free_port`` lives in scripts/services/services.py alone: the benchmarks and the tests import it (through
    bench/processes.py), and the script still runs as a plain script with nothing but the standard library."""
    assert processes.free_port is services.free_port is providers.free_port
    port = services.free_port()
    assert 0 < port < 65536
    root = Path(__file__).resolve().parents[2]
    defined = [str(path.relative_to(root)) for folder in ("bench", "scripts", "tests", "pipeline", "producers",
                                                          "consumers")
               for path in (root / folder).rglob("*.py")
               if re.search(r"^def _?free_port\(", path.read_text(encoding="utf-8"), re.MULTILINE)]
    assert defined == ["scripts/services/services.py"]
    # -I: isolated (no site-packages, no current directory on the path), from elsewhere: the standard library only.
    ran = subprocess.run([sys.executable, "-I", str(root / "scripts/services/services.py"), "--help"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60, check=False)
    assert ran.returncode == 0 and "services.py" in ran.stdout + ran.stderr
