"""Teams as the council names them: a teams file must cover every team the rules route to, and a team is
named as the case-management system exports it ("Crewe CIN/CP 2"), in involvements, teams and user scopes."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import select

from pipeline.adapters import tables as t
from tests.integration.conftest import pipeline_over
from tests.integration.test_cli import cli, count, in_process
from tests.integration.test_missing_api import REPORTED, reported
from tests.support.world import JACOB, REFERENCE

CREWE = "Crewe CIN/CP 2"


def test_a_teams_file_without_the_teams_the_rules_route_to_is_refused_naming_them(tmp_path: Path) -> None:
    lines = [line for line in REFERENCE["teams"].splitlines() if not line.startswith(("FRONT_DOOR,", "DIRECTOR,"))]
    (tmp_path / "teams.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = cli(tmp_path, "load", "teams", str(tmp_path / "teams.csv"))
    assert result.returncode == 1
    assert "teams the rules route to have no row: DIRECTOR, FRONT_DOOR" in result.stderr
    assert count(tmp_path, t.TeamContact) == 0  # nothing loaded


def test_a_team_named_as_exported_is_loaded_and_scopes_its_users(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    files = {**REFERENCE, "teams": REFERENCE["teams"] + f"{CREWE},crewe.cin2@northshire.gov.example,\n",
             "involvements": REFERENCE["involvements"].replace(",CLA_TEAM,", f",{CREWE},")}
    for kind in ("schools", "teams", "pupils", "ehe", "involvements"):
        (tmp_path / f"{kind}.csv").write_text(files[kind], encoding="utf-8")
        loaded = in_process(tmp_path, monkeypatch, "load", kind, str(tmp_path / f"{kind}.csv"))  # seconds saved
        assert loaded.exit_code == 0, loaded.stderr
    added = cli(tmp_path, "users", "add", "--role", "team", "--email", "crewe@northshire.gov.example",
                "--team", CREWE)
    assert added.returncode == 0, added.stderr
    producer = cli(tmp_path, "users", "add", "--role", "producer", "--email", "police@test.example")
    assert cli(tmp_path, "users", "add", "--role", "team", "--email", "blank@test.example",
               "--team", "  ").returncode != 0
    tokens = {"crewe": added.stdout.strip().splitlines()[-1], "producer": producer.stdout.strip().splitlines()[-1]}

    pipeline = pipeline_over(tmp_path, f"sqlite:///{tmp_path / 'cli.db'}", REPORTED, tokens)
    services = pipeline.services
    try:
        # Jacob, open to the Crewe team, missing at high risk: the strategy discussion and the trigger meeting
        # are the team's.
        assert pipeline.post_event(reported(JACOB, "EP-C1", grade="HIGH"), "missing-reported").status_code == 202
        pipeline.run()
        mine = pipeline.get("/api/notifications", "crewe").json()
        assert mine and {n["recipient_role"] for n in mine} == {CREWE}
        with services.store.read() as session:
            theirs = session.exec(select(t.Notification).where(t.Notification.recipient_role == CREWE)).all()
        assert {n.id for n in theirs} == {n["id"] for n in mine}
        assert {n.contact_email for n in theirs} == {"crewe.cin2@northshire.gov.example"}
        acknowledged = pipeline.client.post(f"/api/notifications/{mine[0]['id']}/acknowledge",
                                            json={"outcome": "meeting booked"}, headers=pipeline.headers("crewe"))
        assert acknowledged.status_code == 200
    finally:
        services.store.dispose()
