"""The `safeguard` command as a user runs it: demo-data, load, users (add, list, disable, reset-password),
produce, every --help, and a port in use, with exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import func, select

from pipeline.adapters import tables as t
from pipeline.adapters.store import Store
from tests.support.world import AMELIA, REFERENCE, UNKNOWN, attendance

SAFEGUARD = [sys.executable, "-m", "pipeline.entrypoints.cli"]


def cli(tmp_path: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SAFEGUARD_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}
    env.pop("SAFEGUARD_CONFIG", None)
    return subprocess.run([*SAFEGUARD, *args], capture_output=True, text=True, env=env, input=stdin, timeout=120)


def count(tmp_path: Path, model: type, *where: object) -> int:
    store = Store(f"sqlite:///{tmp_path / 'cli.db'}")
    with store.read() as session:
        return int(session.exec(select(func.count()).select_from(model).where(*where)).one())


def test_demo_data_is_byte_identical_for_a_seed(tmp_path: Path) -> None:
    for out in ("a", "b", "c"):
        seed = "7" if out != "c" else "8"
        assert cli(tmp_path, "demo-data", "--out", str(tmp_path / out), "--seed", seed, "--pupils", "300").returncode == 0
    for name in ("schools", "pupils", "ehe", "involvements", "teams"):
        first, second = (tmp_path / "a" / f"{name}.csv").read_bytes(), (tmp_path / "b" / f"{name}.csv").read_bytes()
        assert first == second
    assert (tmp_path / "a" / "pupils.csv").read_bytes() != (tmp_path / "c" / "pupils.csv").read_bytes()
    header = (tmp_path / "a" / "pupils.csv").read_text().splitlines()[0]
    assert header == "upn,nhs_number,given_name,family_name,date_of_birth,sex,postcode,school_urn,on_roll_from,on_roll_to"


def test_load_validates_the_whole_file_and_reloads_idempotently(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    def load(*args: str) -> Any:  # in this process: a new interpreter each costs seconds (the bad file runs one)
        return in_process(tmp_path, monkeypatch, "load", *args)

    for kind in ("schools", "teams", "pupils", "ehe", "involvements"):
        path = tmp_path / f"{kind}.csv"
        path.write_text(REFERENCE[kind], encoding="utf-8")
        result = load(kind, str(path))
        assert result.exit_code == 0, result.stderr
    assert count(tmp_path, t.Pupil) == 9

    again = load("pupils", str(tmp_path / "pupils.csv"))
    assert again.exit_code == 0 and "0 ended" in again.stdout

    shorter = "\n".join(REFERENCE["pupils"].strip().splitlines()[:-2]) + "\n"
    (tmp_path / "short.csv").write_text(shorter, encoding="utf-8")
    result = load("pupils", str(tmp_path / "short.csv"))
    assert result.exit_code == 0 and "2 ended" in result.stdout
    assert count(tmp_path, t.Pupil) == 9  # ended, not deleted
    assert count(tmp_path, t.Pupil, t.Pupil.ended_at.is_(None)) == 7  # type: ignore[union-attr]

    bad = REFERENCE["pupils"].replace("2013-05-14", "14/05/2013").replace(",F,NS4 6JK,100005", ",Q,NS4 6JK,999999")
    (tmp_path / "bad.csv").write_text(bad, encoding="utf-8")
    result = cli(tmp_path, "load", "pupils", str(tmp_path / "bad.csv"))
    assert result.returncode == 1
    assert "row 2: date_of_birth: not an ISO date (YYYY-MM-DD)" in result.stderr
    assert "row 6: sex: must be one of M, F, U" in result.stderr
    assert "row 6: school_urn: no such school loaded" in result.stderr
    assert "Amelia" not in result.stderr and "14/05/2013" not in result.stderr
    assert count(tmp_path, t.Pupil, t.Pupil.ended_at.is_(None)) == 7  # type: ignore[union-attr]

    assert load("nonsense", str(tmp_path / "bad.csv")).exit_code == 2
    assert load("pupils", str(tmp_path / "missing.csv")).exit_code == 2


def test_a_nightly_load_refuses_a_partial_export_and_says_where_it_loaded(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    def load(*args: str) -> Any:
        return in_process(tmp_path, monkeypatch, "load", *args)

    assert cli(tmp_path, "demo-data", "--out", str(tmp_path / "demo"), "--pupils", "300").returncode == 0
    first = load("schools", str(tmp_path / "demo" / "schools.csv"))
    assert first.exit_code == 0
    assert f"(into sqlite:///{tmp_path / 'cli.db'})" in first.stdout
    assert "did not exist and was created" in first.stderr  # the first load made the database
    for kind in ("teams", "pupils"):
        result = load(kind, str(tmp_path / "demo" / f"{kind}.csv"))
        assert result.exit_code == 0 and "was created" not in result.stderr

    pupils = (tmp_path / "demo" / "pupils.csv").read_text(encoding="utf-8").splitlines()
    half = tmp_path / "half.csv"
    half.write_text("\n".join(pupils[: len(pupils) // 2]) + "\n", encoding="utf-8")
    refused = load("pupils", str(half))
    assert refused.exit_code == 1 and "is it a partial export? Nothing loaded" in refused.stderr
    assert count(tmp_path, t.Pupil, t.Pupil.ended_at.is_(None)) == 300  # type: ignore[union-attr]
    allowed = load("pupils", str(half), "--allow-ending")
    assert allowed.exit_code == 0 and f"{300 - (len(pupils) // 2 - 1)} ended" in allowed.stdout

    latin = tmp_path / "latin.csv"
    latin.write_bytes((pupils[0] + "\n" + pupils[1] + "\n").encode() + "O\u2019Brien,\n".encode("cp1252"))
    not_utf8 = load("pupils", str(latin))
    assert not_utf8.exit_code == 1 and "not UTF-8 (the first character that is not is on row 3)" in not_utf8.stderr

    every_row_bad = "\n".join([pupils[0], *(line.replace(",2", ",x2", 1) for line in pupils[1:150])]) + "\n"
    (tmp_path / "bad.csv").write_text(every_row_bad, encoding="utf-8")
    bad = load("pupils", str(tmp_path / "bad.csv"))
    lines = bad.stderr.strip().splitlines()
    assert bad.exit_code == 1 and len(lines) == 102  # 100 problems, the rest counted, the verdict
    assert lines[100].startswith("... and 49 more: ") and lines[-1].endswith("nothing loaded: 149 problem(s)")


def in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *args: str, stdin: str | None = None) -> Any:
    """The same command run in this process (a second each instead of a new interpreter)."""
    from typer.testing import CliRunner

    from pipeline.entrypoints.cli import app

    monkeypatch.setenv("SAFEGUARD_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.delenv("SAFEGUARD_CONFIG", raising=False)
    return CliRunner().invoke(app, list(args), input=stdin)


BAD_CONFIGURATIONS = {
    "missing": (None, "cannot read it (No such file or directory)"),
    "not YAML": ("timescales: [1,\n", "not valid YAML at line 2"),
    "a list at the top": ("- 1\n", "the top level must be a mapping"),
    "a bad duration": ("timescales:\n  return_interview: 72 hours\n",
                       "timescales.return_interview: not an ISO-8601 duration"),
    "a threshold above 1": ("matching:\n  link_threshold: 1.5\n", "matching.review_threshold and matching.link_threshold"),
    "a section not a mapping": ("timescales: 5\n", "timescales: a mapping of settings, not int"),
    "a tuning number not a number": ("runtime:\n  relay_batch: many\n", "runtime.relay_batch: a number, not 'many'"),
    "a session length": ("web:\n  session_idle: soon\n", "web.session_idle: not an ISO-8601 duration"),
    "a misspelt section": ("timescale:\n  return_interview: PT48H\n", "timescale: unknown setting"),
    "a misspelt timescale": ("timescales:\n  self_harm_acknowledgment: PT1M\n",
                             "timescales.self_harm_acknowledgment: unknown setting"),
    "a misspelt retry setting": ("delivery:\n  retry:\n    max_attempt: 2\n", "delivery.retry.max_attempt: unknown"),
    "a retry delay": ("delivery:\n  retry:\n    initial: soon\n", "delivery.retry.initial: not an ISO-8601"),
    "a ladder to a role that is not one": (
        "timescales:\n  self_harm_acknowledgement_ladder:\n    - {after: PT0S, notify: [dls], action: reminder}\n",
        "timescales.self_harm_acknowledgement_ladder: a step notifies a role"),
    "a council code not three digits": ("council:\n  la_code: 12\n", "council.la_code: the council's three-digit"),
}


def refused_at_start(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], database_url: str, *,
                     config: Path | None) -> str:
    """``safeguard users list`` run in this process with these settings: it must exit 2; what it printed on stderr."""
    from pipeline.entrypoints.cli import main

    monkeypatch.setenv("SAFEGUARD_DATABASE_URL", database_url)
    if config is None:
        monkeypatch.delenv("SAFEGUARD_CONFIG", raising=False)
    else:
        monkeypatch.setenv("SAFEGUARD_CONFIG", str(config))
    monkeypatch.setattr(sys, "argv", ["safeguard", "users", "list"])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize(("url", "expected"), [
    ("notaurl", "SAFEGUARD_DATABASE_URL: not a database URL"),
    ("mysql://x/y", "SAFEGUARD_DATABASE_URL: no driver here for mysql"),
    ("sqlite:////proc/no-such-folder/x.db", "SAFEGUARD_DATABASE_URL: cannot create /proc/no-such-folder"),
])
def test_a_database_url_that_cannot_be_opened_is_one_line_and_exit_2(
        url: str, expected: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    error = refused_at_start(monkeypatch, capsys, url, config=None)
    assert error.startswith(f"cannot start: {expected}") and len(error.splitlines()) == 1, error


@pytest.mark.parametrize("url", ["postgresql+psycopg://someone:hunter2@127.0.0.1:1/nowhere",
                                 "postgresql+psycopg://someone@127.0.0.1:1/nowhere?password=hunter2"])
def test_an_unreachable_postgresql_is_named_without_its_password(url: str, monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    error = refused_at_start(monkeypatch, capsys, url, config=None)
    assert error.startswith("cannot start: SAFEGUARD_DATABASE_URL: cannot open postgresql+psycopg://127.0.0.1:1/nowhere")
    assert "hunter2" not in error and len(error.splitlines()) == 1


@pytest.mark.parametrize("case", list(BAD_CONFIGURATIONS))
def test_a_bad_configuration_stops_a_command_with_one_line_and_exit_2(
        case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    text, expected = BAD_CONFIGURATIONS[case]
    config = tmp_path / "council.yaml"
    if text is not None:
        config.write_text(text, encoding="utf-8")
    error = refused_at_start(monkeypatch, capsys, f"sqlite:///{tmp_path / 'cli.db'}", config=config)
    assert error.startswith("cannot start: ") and expected in error, error
    assert len(error.splitlines()) == 1 and "Traceback" not in error
    assert not (tmp_path / "cli.db").exists()  # refused before the database is created or migrated


def test_a_log_level_that_is_not_one_is_refused_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SAFEGUARD_LOG_LEVEL", "verbose")
    error = refused_at_start(monkeypatch, capsys, f"sqlite:///{tmp_path / 'cli.db'}", config=None)
    assert error.startswith("cannot start: SAFEGUARD_LOG_LEVEL: Input should be 'DEBUG'")


def test_a_setting_of_the_wrong_kind_names_its_variable_without_a_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "SAFEGUARD_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
           "SAFEGUARD_ARGON2_TIME_COST": "three"}
    env.pop("SAFEGUARD_CONFIG", None)
    result = subprocess.run([*SAFEGUARD, "users", "list"], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2
    assert result.stderr.startswith("cannot start: SAFEGUARD_ARGON2_TIME_COST: ") and "Traceback" not in result.stderr


def test_users_add_prints_a_token_last_and_checks_usage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def run(*args: str, stdin: str | None = None) -> Any:
        return in_process(tmp_path, monkeypatch, *args, stdin=stdin)

    # The school and team must be loaded first.
    assert run("users", "add", "--role", "dsl", "--email", "d@s.example", "--school", "100001").exit_code == 1
    for kind in ("schools", "teams"):
        (tmp_path / f"{kind}.csv").write_text(REFERENCE[kind], encoding="utf-8")
        assert run("load", kind, str(tmp_path / f"{kind}.csv")).exit_code == 0
    result = cli(tmp_path, "users", "add", "--role", "dsl", "--email", "d@s.example", "--school", "100001",
                 "--password-stdin", stdin="a long demo password\n")
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip().splitlines()[-1]
    assert len(token) >= 40 and " " not in token
    assert run("users", "add", "--role", "wizard", "--email", "w@s.example").exit_code == 2
    assert run("users", "add", "--role", "dsl", "--email", "x@s.example").exit_code == 2
    assert run("users", "add", "--role", "dsl", "--email", "d@s.example", "--school", "100001").exit_code == 1
    unknown_school = run("users", "add", "--role", "dsl", "--email", "y@s.example", "--school", "999999")
    assert unknown_school.exit_code == 1 and "no school" in unknown_school.stderr
    unknown_team = run("users", "add", "--role", "team", "--email", "z@s.example", "--team", "NOPE")
    assert unknown_team.exit_code == 1 and "no team" in unknown_team.stderr
    for malformed in ("not-an-email", "a@b", "two@@s.example", "spa ce@s.example"):
        refused = run("users", "add", "--role", "manager", "--email", malformed)
        assert refused.exit_code == 2 and "email" in refused.stderr
    assert run("users", "add", "--role", "team", "--email", "fd@s.example", "--team", "FRONT_DOOR").exit_code == 0


def test_users_list_disable_and_reset_password(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def run(*args: str, stdin: str | None = None) -> Any:
        return in_process(tmp_path, monkeypatch, *args, stdin=stdin)

    created = run("users", "add", "--role", "manager", "--email", "m@s.example")
    token = created.stdout.strip().splitlines()[-1]
    listed = cli(tmp_path, "users", "list")
    assert listed.returncode == 0 and "manager\tm@s.example\t-\tactive" in listed.stdout
    assert run("users", "reset-password", "--email", "m@s.example", stdin="short\n").exit_code == 2
    assert run("users", "reset-password", "--email", "nobody@s.example", stdin="a long enough password\n"
               ).exit_code == 1
    assert run("users", "reset-password", "--email", "m@s.example", stdin="a long enough password\n").exit_code == 0
    assert run("users", "disable", "--email", "m@s.example").exit_code == 0
    assert "m@s.example\t-\tdisabled" in run("users", "list").stdout
    assert run("users", "disable", "--email", "nobody@s.example").exit_code == 1

    from fastapi.testclient import TestClient

    from pipeline.bootstrap import build
    from pipeline.entrypoints.api import create_app
    from tests.integration.conftest import make_settings

    services = build(make_settings(tmp_path, database_url=f"sqlite:///{tmp_path / 'cli.db'}"))
    services.ready.set()
    client = TestClient(create_app(services))
    assert client.get("/api/deadlines", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_every_help_lists_what_it_accepts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    add = in_process(tmp_path, monkeypatch, "users", "add", "--help").stdout
    assert all(role in add for role in ("producer", "dsl", "worker", "team", "manager", "admin"))
    load = in_process(tmp_path, monkeypatch, "load", "--help").stdout
    assert all(kind in load for kind in ("schools", "pupils", "ehe", "involvements", "teams"))
    produce = cli(tmp_path, "produce", "--help").stdout  # as a user sees it
    assert all(kind in produce for kind in ("self-harm-attendance", "missing-reported", "return-interview-recorded",
                                            "trigger-meeting-recorded"))


def test_a_port_in_use_is_one_clear_line_and_exit_1(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        for command in ("run", "api"):
            result = cli(tmp_path, command, "--port", port)
            assert result.returncode == 1
            assert len(result.stderr.strip().splitlines()) == 1 and port in result.stderr, result.stderr


@pytest.mark.parametrize("bad_line", ["{broken", json.dumps({"event_id": "not-a-uuid"})])
def test_produce_dead_letters_bad_lines_and_sends_the_rest(tmp_path: Path, bad_line: str) -> None:
    good = [attendance(AMELIA), attendance(UNKNOWN)]
    lines = [json.dumps(good[0]), bad_line, "", json.dumps(good[1])]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = cli(tmp_path, "produce", "self-harm-attendance", str(path))
    assert result.returncode == 1
    reported = [line for line in result.stderr.splitlines() if line.startswith("line ")]
    assert reported and all(line.startswith("line 2: ") for line in reported)
    assert "2 accepted, 1 rejected" in result.stdout
    assert count(tmp_path, t.Event) == 2
    assert count(tmp_path, t.DeadLetter) == 1
    assert "dead-lettered" not in result.stderr, "each refused line reported once, with its number"
    assert cli(tmp_path, "produce", "no-such-type", str(path)).returncode == 2
    listed = cli(tmp_path, "events", "dead-letters").stdout.splitlines()
    assert len(listed) == 1 and " source=cli type=self-harm-attendance " in listed[0], listed
    assert "not-a-uuid" not in listed[0] and "{broken" not in listed[0]  # why, never what
    assert cli(tmp_path, "events", "held").stdout == "no held events\n"


def test_reloading_involvements_with_and_without_the_optional_iro_email_column_changes_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [line.split(",") for line in REFERENCE["involvements"].strip().splitlines()]
    assert rows[0][-1] == "iro_email"
    rows = [rows[0]] + [[*row[:-1], ""] for row in rows[1:]]  # the same data either way: no IRO given
    with_column = "\n".join(",".join(row) for row in rows) + "\n"
    without_column = "\n".join(",".join(row[:-1]) for row in rows) + "\n"
    (tmp_path / "with.csv").write_text(with_column, encoding="utf-8")
    (tmp_path / "without.csv").write_text(without_column, encoding="utf-8")

    first = in_process(tmp_path, monkeypatch, "load", "involvements", str(tmp_path / "with.csv"))
    assert first.exit_code == 0, first.stderr
    keys_before = keys(tmp_path)
    for name in ("without.csv", "with.csv"):
        result = in_process(tmp_path, monkeypatch, "load", "involvements", str(tmp_path / name))
        assert result.exit_code == 0 and "0 ended" in result.stdout, result.stdout + result.stderr
        assert keys(tmp_path) == keys_before  # none ended, none created
    assert count(tmp_path, t.Involvement, t.Involvement.ended_at.is_(None)) == len(rows) - 1  # type: ignore[union-attr]


def keys(tmp_path: Path) -> set[str]:
    store = Store(f"sqlite:///{tmp_path / 'cli.db'}")
    with store.read() as session:
        return {row.row_key for row in session.exec(select(t.Involvement)).all()}


def test_a_command_that_delivers_nothing_says_nothing_about_delivery(tmp_path: Path) -> None:
    """Only a delivering process (``run``, a worker) says where notifications go; ``users list`` is quiet."""
    result = cli(tmp_path, "users", "list")
    assert result.returncode == 0 and result.stderr == "", result.stderr
