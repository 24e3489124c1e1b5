"""A child on two schools' rolls, end to end on the embedded runtime's store (SQLite): the pupils file with a row
at each school loads through `safeguard load`, an attendance reaches both schools' DSLs (each sees it in their own
notifications), the front door sees both roll records on the child's page, the scorecard and the overdue board
place a child at a school it is on the roll of today, and a database of the earlier schema (pupils keyed by UPN)
keeps its pupils through migration 0015."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text

from pipeline.adapters.overdue_board import SCHOOL_SQL
from pipeline.adapters.scorecard import CHILD_GROUP_TABLE, ROLL_DAY, ScorecardQueries, roll_day
from pipeline.adapters.store import Store, alembic_config
from tests.integration.conftest import pipeline_over
from tests.integration.test_cli import cli, in_process
from tests.support.store_ports import open_backend
from tests.support.world import OLIVER, REFERENCE, TERM_EVENING, attendance

AT_RIVERSIDE = "B999100100002,,Oliver,Brennan,2011-02-03,M,NS2 3CD,100001,2026-09-01,\n"


def test_an_attendance_of_a_dual_registered_child_reaches_both_schools_dsls(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    files = {**REFERENCE, "pupils": REFERENCE["pupils"] + AT_RIVERSIDE}
    for kind in ("schools", "teams", "pupils", "ehe", "involvements"):
        (tmp_path / f"{kind}.csv").write_text(files[kind], encoding="utf-8")
        loaded = in_process(tmp_path, monkeypatch, "load", kind, str(tmp_path / f"{kind}.csv"))
        assert loaded.exit_code == 0, loaded.stderr
    tokens = {}
    for who, args in (("producer", ["--role", "producer", "--email", "ed@hospital.example"]),
                      ("hilltop", ["--role", "dsl", "--email", "dsl@hilltop.sch.example", "--school", "100002"]),
                      ("riverside", ["--role", "dsl", "--email", "dsl@riverside.sch.example", "--school", "100001"]),
                      ("front", ["--role", "team", "--email", "fd@northshire.gov.example", "--team", "FRONT_DOOR"])):
        added = cli(tmp_path, "users", "add", *args)
        assert added.returncode == 0, added.stderr
        tokens[who] = added.stdout.strip().splitlines()[-1]

    pipeline = pipeline_over(tmp_path, f"sqlite:///{tmp_path / 'cli.db'}", TERM_EVENING, tokens)
    services = pipeline.services
    try:
        body = attendance(OLIVER)
        assert pipeline.post_event(body).status_code == 202
        pipeline.run()
        event = pipeline.get(f"/api/events/{body['event_id']}", "producer").json()
        assert (event["status"], event["match"]["outcome"]) == ("processed", "linked")
        for school, roles in (("hilltop", ["dsl"]), ("riverside", ["deputy_dsl", "dsl"])):
            mine = pipeline.get("/api/notifications", school).json()
            assert sorted(n["recipient_role"] for n in mine) == roles, school
            assert {n["pathway"] for n in mine} == {"self-harm"}
        child = pipeline.get(f"/api/children/{event['match']['child_id']}", "front")
        assert child.status_code == 200, child.text
        rolls = sorted((r["school_urn"], r["on_roll_from"]) for r in child.json()["records"] if r["source"] == "pupil")
        assert rolls == [("100001", "2026-09-01"), ("100002", "2022-09-01")]
    finally:
        services.store.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_migration_0015_keeps_the_pupils_of_a_database_keyed_by_upn(backend: str, tmp_path: Path,
                                                                     request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue("postgres_url") if backend == "postgresql" else f"sqlite:///{tmp_path}/old.db"
    store = Store(url)
    config = alembic_config()
    with store.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0014")
        connection.execute(text(
            "INSERT INTO pupil (upn, given_name, family_name, family_key, date_of_birth, school_urn, on_roll_from) "
            "VALUES ('B999100100002', 'Oliver', 'Brennan', 'BRENNAN', '2011-02-03', '100002', '2022-09-01'), "
            "('H999100100009', 'Freya', 'Dunmore', 'DUNMORE', '2013-08-08', '100001', NULL)"))
        command.upgrade(config, "head")
        rows = connection.execute(text("SELECT row_key, upn, school_urn FROM pupil ORDER BY upn")).all()
        assert [tuple(row) for row in rows] == [("B999100100002|100002|2022-09-01", "B999100100002", "100002"),
                                                ("H999100100009|100001|", "H999100100009", "100001")]
        if backend == "postgresql":  # the primary key keeps the table's name, as before the rebuild
            assert connection.execute(text("SELECT conname FROM pg_constraint WHERE conrelid = 'pupil'::regclass "
                                           "AND contype = 'p'")).scalar_one() == "pupil_pkey"
        # Back down: one row a UPN, the current one with the latest known start (an unknown start last).
        connection.execute(text(
            "INSERT INTO pupil (row_key, upn, given_name, family_name, family_key, date_of_birth, school_urn, "
            "on_roll_from) VALUES ('B999100100002|100001|', 'B999100100002', 'Oliver', 'Brennan', 'BRENNAN', "
            "'2011-02-03', '100001', NULL), ('B999100100002|100005|2026-11-02', 'B999100100002', 'Oliver', "
            "'Brennan', 'BRENNAN', '2011-02-03', '100005', '2026-11-02')"))
        command.downgrade(config, "0014")
        kept = connection.execute(text("SELECT upn, school_urn FROM pupil ORDER BY upn")).all()
        assert [tuple(row) for row in kept] == [("B999100100002", "100005"), ("H999100100009", "100001")]
    store.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_scorecard_and_board_place_a_child_at_a_school_it_is_on_the_roll_of_that_day(
        backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """Oliver moved from Hilltop (100002, left 31 October) to Quiet Lane (100005, a higher URN); Amelia is on
    Riverside's roll (100001) and, dual-registered, Border High's (100004); Isla, at Oakwood (100003), joins
    Riverside next September; Freya left Riverside in 2024 with no school since. A child's cases are placed at a
    school it is on the roll of on the day asked about (the smallest URN of those), else at the school it left."""
    pupils = REFERENCE["pupils"].replace("100002,2022-09-01,", "100002,2022-09-01,2026-10-31") + \
        AT_RIVERSIDE.replace("100001,2026-09-01", "100005,2026-11-02") + \
        "A999100100001,9990000018,Amelia,Hartley,2013-05-14,F,NS1 2AB,100004,2025-09-01,\n" + \
        "C999100100003,,Isla,Fairbairn,2012-07-21,F,NS3 4EF,100001,2027-09-01,\n"
    backend_ = open_backend(backend, tmp_path, request.getfixturevalue("postgres_url")
                            if backend == "postgresql" else None, {**REFERENCE, "pupils": pupils})
    store = backend_.sql
    assert store is not None
    with store.unit_of_work() as port:
        children = {name: port.child_id(f"upn:{upn}") for name, upn in (
            ("oliver", "B999100100002"), ("amelia", "A999100100001"), ("isla", "C999100100003"),
            ("freya", "H999100100009"))}
    on_the_board = text(f"SELECT {SCHOOL_SQL} FROM (SELECT CAST(:child AS VARCHAR) AS child_id, "
                        "CAST(NULL AS VARCHAR) AS school_urn) d").bindparams(roll_day())
    for day, oliver in ((date(2026, 11, 24), "100005"), (date(2026, 10, 1), "100002")):
        with store.transaction() as session:
            queries = ScorecardQueries(session, backend == "postgresql", placed_on=day)
            queries.place_children("school")
            placed = dict(session.connection().execute(text(f"SELECT child_id, grp FROM {CHILD_GROUP_TABLE}")).all())
            on_board = {name: session.connection().execute(on_the_board, {"child": child_id, ROLL_DAY: day})
                        .scalar_one() for name, child_id in children.items()}
            queries.close()
        expected = {"oliver": oliver, "amelia": "100001", "isla": "100003", "freya": "100001"}
        assert {name: placed[child_id] for name, child_id in children.items()} == expected, day
        assert on_board == expected, day
    store.dispose()
