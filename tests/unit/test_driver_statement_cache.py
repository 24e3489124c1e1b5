"""pipeline/adapters/driver_statements.py keeps a statement compiled per dialect as its SQL depends on it: two dialects
of one name (another driver, another paramstyle) each get their own compiled SQL, never the other's."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import bindparam, insert, select
from sqlalchemy.dialects.postgresql import pg8000, psycopg
from sqlalchemy.dialects.sqlite import pysqlite

from pipeline.adapters.driver_statements import DriverStatement
from pipeline.adapters.intake_rows import _sqlite_statements
from pipeline.adapters.repository import CHILD, PUPIL

BY_UPN = select(PUPIL.c.upn).where(PUPIL.c.upn == bindparam("upn"))
ROW = {"child_id": "c-1", "person_key": "upn:X", "created_at": datetime(2026, 11, 24, tzinfo=UTC)}


def test_two_sqlite_dialects_with_other_paramstyles_get_their_own_sql() -> None:
    driver = DriverStatement(BY_UPN)
    qmark, named = pysqlite.dialect(), pysqlite.dialect(paramstyle="named")
    assert qmark.name == named.name and qmark.driver == named.driver
    first = driver.compiled(qmark)
    second = driver.compiled(named)
    assert first.sql.endswith("= ?") and first.bind({"upn": "A"}) == ("A",)
    assert second.sql.endswith("= :upn") and second.bind({"upn": "A"}) == {"upn": "A"}
    assert driver.compiled(qmark) is first and driver.compiled(named) is second  # each kept


def test_two_postgresql_drivers_get_their_own_sql() -> None:
    driver = DriverStatement(insert(CHILD))
    with_psycopg, with_pg8000 = psycopg.dialect(), pg8000.dialect()
    assert with_psycopg.name == with_pg8000.name
    assert "%(child_id)s" in driver.compiled(with_psycopg, list(ROW)).sql
    compiled = driver.compiled(with_pg8000, list(ROW))
    assert "%(child_id)s" not in compiled.sql and "%s" in compiled.sql and isinstance(compiled.bind(ROW), tuple)


def test_an_expanding_statement_is_kept_per_dialect_too() -> None:
    driver = DriverStatement(select(PUPIL.c.upn).where(PUPIL.c.upn.in_(bindparam("upns", expanding=True))))
    qmark, named = pysqlite.dialect(), pysqlite.dialect(paramstyle="named")
    assert driver.compiled(qmark, expanding={"upns": 2}).sql.endswith("(?, ?)")
    assert driver.compiled(named, expanding={"upns": 2}).sql.endswith("(:upns_1, :upns_2)")


def test_the_intake_statements_are_kept_per_dialect() -> None:
    qmark, named = pysqlite.dialect(), pysqlite.dialect(paramstyle="named")
    assert _sqlite_statements(qmark).insert.sql.endswith("?)")
    assert _sqlite_statements(named).insert.sql.endswith(":attempts)")
    assert _sqlite_statements(pysqlite.dialect()) is _sqlite_statements(qmark)
