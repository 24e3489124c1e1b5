"""pipeline/adapters/driver_statements.py on SQLite and PostgreSQL: what a ``DriverStatement`` stores and returns
is what SQLAlchemy's ``Connection.execute`` and the ORM store and return (values and their Python types), its
errors are SQLAlchemy's, and statement listeners see it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import bindparam, insert, select, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import IntegrityError, StatementError

from pipeline.adapters import tables as t
from pipeline.adapters.driver_statements import DriverStatement
from pipeline.adapters.effect_rows import values_of
from pipeline.adapters.intake_rows import _INSERTED, EVENTS, SqliteIntakeStatements
from pipeline.adapters.repository import CHILD, EHE, INVOLVEMENT, PUPIL, SCHOOL
from pipeline.adapters.store import Store
from tests.support.store_ports import statements_run

REPORTED = datetime(2026, 11, 24, 21, 5, 7, 123456, tzinfo=timezone(timedelta(hours=5, minutes=30)))
SEEN = datetime(2026, 11, 24, 4, 0, tzinfo=timezone(timedelta(hours=-8)))
UPDATED = datetime(2026, 11, 25, 9, 30, 0, 999999, tzinfo=UTC)


def _typed(rows: Any) -> list[list[tuple[str, type, Any]]]:
    return [[(name, type(value), value) for name, value in row._mapping.items()] for row in rows]


@pytest.mark.parametrize("statement, params", [
    (select(SCHOOL).order_by(SCHOOL.c.urn), {}),  # booleans, an instant
    (select(PUPIL).where(PUPIL.c.upn == bindparam("upn")), {"upn": "A999100100001"}),  # dates
    (select(PUPIL).where(PUPIL.c.ended_at.is_(None)).order_by(PUPIL.c.upn).limit(3), {}),  # a literal LIMIT
    (select(INVOLVEMENT).order_by(INVOLVEMENT.c.row_key), {}),
    (select(EHE).order_by(EHE.c.row_key), {}),
])
def test_rows_are_what_connection_execute_returns(sql_store: Store, statement: Any, params: dict[str, Any]) -> None:
    driver = DriverStatement(statement)
    with sql_store.transaction() as session:
        connection = session.connection()
        expected = connection.execute(statement, params).all()
        got = driver.rows(connection, params)
    assert expected and _typed(got) == _typed(expected)
    assert [tuple(row) for row in got] == [tuple(row) for row in expected]
    assert got[0]._fields == tuple(expected[0]._mapping)


def test_an_episode_written_by_the_port_is_stored_and_read_as_the_orm_stores_and_reads_it(sql_store: Store) -> None:
    values = {"reported_at": REPORTED, "last_seen_at": SEEN, "updated_at": UPDATED, "risk_grade": "HIGH",
              "exploitation_flags": '["CSE"]'}
    with sql_store.unit_of_work() as port:  # the driver's path: the insert, then the changed columns' update
        episode = port.episode_for_update("EP-DRIVER")
        for name, value in values.items():
            setattr(episode, name, value)
    with sql_store.transaction() as session:  # the ORM's path
        session.add(t.MissingEpisode(episode_id="EP-ORM", **values))
    with sql_store.transaction() as session:
        stored = {row[0]: tuple(row[1:]) for row in session.connection().execute(text(
            "SELECT episode_id, reported_at, last_seen_at, updated_at, risk_grade, exploitation_flags"
            " FROM missingepisode"))}
        assert stored["EP-DRIVER"] == stored["EP-ORM"]  # the same stored strings (SQLite) or timestamps
        orm = {name: getattr(session.get(t.MissingEpisode, "EP-DRIVER"), name) for name in values_of(episode)}
    with sql_store.unit_of_work() as port:
        read = port.episode("EP-DRIVER")
        assert read is not None
        assert values_of(read) == orm
        for name in ("reported_at", "last_seen_at", "updated_at"):
            assert getattr(read, name).tzinfo is UTC and getattr(read, name) == values[name]
        assert read.reported_at.microsecond == 123456


def test_a_naive_datetime_is_refused_before_it_is_stored(sql_store: Store) -> None:
    driver = DriverStatement(insert(CHILD))
    with pytest.raises(ValueError, match="naive"), sql_store.transaction() as session:
        driver.run(session.connection(), {"child_id": "c-1", "person_key": "upn:X", "created_at": datetime(2026, 1, 1)})


def test_a_refused_value_is_sqlalchemys_statement_error_naming_the_field_not_the_value(sql_store: Store) -> None:
    driver = DriverStatement(insert(CHILD))
    row = {"child_id": "c-1", "person_key": "upn:A999100100042", "created_at": "24/11/2026 not an instant"}
    with pytest.raises(StatementError) as caught, sql_store.transaction() as session:
        driver.run(session.connection(), row)
    said = str(caught.value)
    assert "'created_at'" in said and "INSERT INTO child" in said
    assert "A999100100042" not in said and "24/11/2026" not in said and caught.value.params is None


def test_a_clash_is_sqlalchemys_integrity_error(sql_store: Store) -> None:
    driver = DriverStatement(insert(CHILD))
    row = {"child_id": "c-1", "person_key": "upn:X", "created_at": UPDATED}
    with pytest.raises(IntegrityError), sql_store.transaction() as session:
        driver.run(session.connection(), row)
        driver.run_many(session.connection(), [{**row, "child_id": "c-2"}])  # the same person key
    with sql_store.transaction() as session:
        assert session.connection().execute(select(CHILD)).all() == []


AUDIT: Any = t.AuditEntry.__table__  # type: ignore[attr-defined]
DEADLINE: Any = t.Deadline.__table__  # type: ignore[attr-defined]


def test_many_rows_are_stored_in_one_statement_as_connection_execute_stores_them(sql_store: Store) -> None:
    """``run_many`` of a plain insert: on PostgreSQL one statement for all the rows (one JSON document),
    storing what SQLAlchemy's executemany stores (instants, NULLs, integers, text), numbered in the order given."""
    deadlines = [{"id": f"d-{n}", "kind": "ACK", "subject_id": f"s-{n}", "event_id": None, "child_id": "c-1",
                  "school_urn": None if n % 2 else "100001", "due_at": REPORTED + timedelta(hours=n), "state": "OPEN",
                  "escalation_level": n, "next_step_at": None if n == 2 else SEEN, "steps_json": '[{"at": "x"}]',
                  "created_at": UPDATED, "closed_at": None, "closed_reason": None} for n in range(3)]
    audits = [{"at": UPDATED - timedelta(seconds=n), "actor": "system", "action": f"a-{n}", "subject_id": "s",
               "reason": "" if n == 1 else "it's 100% \"quoted\", {braced}"} for n in range(4)]
    driver_deadline = DriverStatement(DEADLINE.insert().inline())
    driver_audit = DriverStatement(AUDIT.insert().inline())
    with statements_run(sql_store) as statements, sql_store.transaction() as session:
        driver_deadline.run_many(session.connection(), deadlines)
        driver_audit.run_many(session.connection(), audits)
    if sql_store.is_postgres:
        assert len(statements) == 2 and all("json_populate_recordset" in s for s in statements), statements
    with sql_store.transaction() as session:  # the same rows through SQLAlchemy's own executemany
        connection = session.connection()
        connection.execute(DEADLINE.insert(), [
            {**row, "id": "orm-" + row["id"], "subject_id": "orm-" + row["subject_id"]} for row in deadlines])
        connection.execute(AUDIT.insert(), [{**row, "action": "orm-" + row["action"]} for row in audits])
    with sql_store.transaction() as session:
        connection = session.connection()
        stored = {row.id: row._mapping for row in connection.execute(select(DEADLINE))}
        assert len(stored) == 6
        for key in ("d-0", "d-1", "d-2"):
            assert {**stored[key], "id": None, "subject_id": None} == {**stored["orm-" + key], "id": None,
                                                                      "subject_id": None}
        driver_rows = connection.execute(select(AUDIT).where(AUDIT.c.action.like("a-%")).order_by(AUDIT.c.id)).all()
        orm_rows = connection.execute(select(AUDIT).where(AUDIT.c.action.like("orm-%")).order_by(AUDIT.c.id)).all()
    assert [row.action for row in driver_rows] == ["a-0", "a-1", "a-2", "a-3"]  # numbered in the order given
    assert [tuple(row[1:]) for row in driver_rows] == [(*row[1:3], row.action[4:], *row[4:]) for row in orm_rows]
    assert driver_rows[1].reason == "" and driver_rows[0].reason == "it's 100% \"quoted\", {braced}"


def test_many_rows_with_a_naive_datetime_are_refused(sql_store: Store) -> None:
    rows = [{"child_id": "c-1", "person_key": "upn:X", "created_at": UPDATED},
            {"child_id": "c-2", "person_key": "upn:Y", "created_at": datetime(2026, 1, 1)}]
    with pytest.raises(ValueError, match="naive"), sql_store.transaction() as session:
        DriverStatement(insert(CHILD)).run_many(session.connection(), rows)
    with sql_store.transaction() as session:
        assert session.connection().execute(select(CHILD)).all() == []


def test_statement_listeners_see_the_driver_statements(sql_store: Store) -> None:
    with statements_run(sql_store) as statements, sql_store.unit_of_work() as port:
        child = port.child_id("upn:A999100100001")
        assert port.facts_for_child(child, UPDATED.date()) is not None
    lowered = [s.lower() for s in statements]
    assert any(s.startswith("insert into child") for s in lowered), statements
    assert any(s.startswith("select pupil.row_key, pupil.upn") for s in lowered), statements


def test_an_expanding_parameter_is_refused() -> None:
    driver = DriverStatement(select(PUPIL).where(PUPIL.c.upn.in_(bindparam("upns", expanding=True))))
    store = Store("sqlite://")
    try:
        with pytest.raises(ValueError, match="expanding"), store.engine.begin() as connection:
            driver.rows(connection, {"upns": ["A"]})
    finally:
        store.dispose()



_UPNS_BORN_SINCE = select(PUPIL).where(PUPIL.c.date_of_birth >= bindparam("born_since"),
                                       PUPIL.c.upn.in_(bindparam("upns", expanding=True)),
                                       PUPIL.c.ended_at.is_(None)).order_by(PUPIL.c.upn)


@pytest.mark.parametrize("count", [1, 2, 3])
def test_the_compiled_form_on_the_drivers_own_cursor_is_what_connection_execute_returns(sql_store: Store,
                                                                                        count: int) -> None:
    driver = DriverStatement(_UPNS_BORN_SINCE)
    with sql_store.transaction() as session:
        connection = session.connection()
        upns = [row.upn for row in connection.execute(select(PUPIL.c.upn).order_by(PUPIL.c.upn).limit(count))]
        params = {"born_since": date(2000, 1, 1), "upns": upns}  # a date: bound through its processor
        expected = connection.execute(_UPNS_BORN_SINCE, params).all()
        compiled = driver.compiled(connection.dialect, expanding={"upns": count})
        assert driver.compiled(connection.dialect, expanding={"upns": count}) is compiled  # kept per count
        cursor = connection.connection.cursor()  # the DBAPI cursor: no listener, no SQLAlchemy around it
        try:
            cursor.execute(compiled.sql, compiled.bind(params))
            got = compiled.rows(cursor.fetchall())
        finally:
            cursor.close()
    assert len(expected) == count and _typed(got) == _typed(expected)
    assert got[0]._fields == tuple(expected[0]._mapping)


def test_an_expanding_parameter_is_bound_only_with_the_count_it_was_compiled_for() -> None:
    driver = DriverStatement(_UPNS_BORN_SINCE)
    compiled = driver.compiled(sqlite.dialect(), expanding={"upns": 2})
    assert compiled.sql.count("?") == 3
    assert compiled.bind({"born_since": date(2000, 1, 1), "upns": ["A", "B"]}) == ("2000-01-01", "A", "B")
    with pytest.raises(ValueError, match="number of values"):
        compiled.bind({"born_since": date(2000, 1, 1), "upns": ["A"]})
    with pytest.raises(ValueError, match="one value or more"):
        driver.compiled(sqlite.dialect(), expanding={"upns": 0})
    with pytest.raises(ValueError, match="needs its count"):
        driver.compiled(sqlite.dialect())


def test_the_intake_insert_binds_received_at_as_sqlalchemy_stores_it() -> None:
    dialect = sqlite.dialect()
    insert_compiled = SqliteIntakeStatements(dialect).insert
    assert insert_compiled.sql == str(insert(EVENTS).compile(dialect=dialect, column_keys=list(_INSERTED)))
    now = datetime(2026, 12, 2, 11, 50, 1, 20, tzinfo=timezone(timedelta(hours=1)))
    row = {"event_id": "e-1", "event_type": "t", "producer_id": None, "content_hash": "h", "record_json": "{}",
           "received_at": now, "status": "accepted", "attempts": 0}
    processor = EVENTS.c.received_at.type.dialect_impl(dialect).bind_processor(dialect)
    assert insert_compiled.bind(row) == ("e-1", "t", None, "h", "{}", processor(now), "accepted", 0)
