"""The guard that fails a run in which a test did not run (tests/support/every_test_runs.py), with the project's own
pytest settings (pyproject.toml): each way a test can skip or be marked expected-to-fail, at run time or while
collected, makes a pytest session fail; a session of tests that all run passes."""

from __future__ import annotations

from pathlib import Path

import pytest

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"

STANDING_ASIDE = {
    "skip_called": """
import pytest
def test_it():
    pytest.skip("the service is not there")
""",
    "skip_marker": """
import pytest
@pytest.mark.skipif(True, reason="not here")
def test_it():
    pass
""",
    "fixture_skips_in_setup": """
import pytest
@pytest.fixture
def service():
    pytest.skip("no service")
def test_it(service):
    pass
""",
    "module_skipped_while_collected": """
import pytest
pytest.skip("not on this machine", allow_module_level=True)
def test_it():
    pass
""",
    "module_import_or_skip": """
import pytest
pytest.importorskip("a_module_that_is_not_installed")
def test_it():
    pass
""",
    "unittest_skip": """
import unittest
class Case(unittest.TestCase):
    def test_it(self):
        raise unittest.SkipTest("not now")
""",
    "expected_failure_marker": """
import pytest
@pytest.mark.xfail(reason="known bug")
def test_it():
    assert False
""",
    "expected_failure_called": """
import pytest
def test_it():
    pytest.xfail("known bug")
""",
    "expected_failure_passing_not_strict": """
import pytest
@pytest.mark.xfail(strict=False, reason="known bug")
def test_it():
    pass
""",
}

def _run(pytester: pytest.Pytester, source: str) -> pytest.RunResult:
    """A session of `source` beside a test that runs and passes (so a skipped module does not leave it empty)."""
    pytester.makepyfile(test_case=source, test_other="def test_it():\n    pass\n")
    return pytester.runpytest("-c", str(PYPROJECT), "--rootdir", str(pytester.path), "-p",
                              "tests.support.every_test_runs", "test_case.py", "test_other.py")


@pytest.mark.parametrize("source", STANDING_ASIDE.values(), ids=STANDING_ASIDE.keys())
def test_a_test_that_does_not_run_fails_the_session(pytester: pytest.Pytester, source: str) -> None:
    result = _run(pytester, source)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["FAILED: 1 test(s) did not run: every test must run:", "  test_case.py*"])


def test_a_parametrize_over_nothing_fails_while_collected(pytester: pytest.Pytester) -> None:
    result = _run(pytester, """
import pytest
@pytest.mark.parametrize("value", [])
def test_it(value):
    pass
""")
    assert result.ret == pytest.ExitCode.INTERRUPTED  # a collection error: nothing ran
    result.stdout.fnmatch_lines(["*Empty parameter set in 'test_it'*", "*1 error*"])


def test_an_expected_failure_that_passes_fails(pytester: pytest.Pytester) -> None:
    result = _run(pytester, """
import pytest
@pytest.mark.xfail(reason="known bug")
def test_it():
    pass
""")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(["*XPASS(strict)*"])


def test_a_session_in_which_every_test_runs_passes(pytester: pytest.Pytester) -> None:
    result = _run(pytester, """
import pytest
@pytest.mark.parametrize("value", [1, 2])
def test_it(value):
    assert value
""")
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=3)
    assert "did not run" not in result.stdout.str()
