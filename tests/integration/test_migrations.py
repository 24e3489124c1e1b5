"""Both stores are created only by Alembic migrations, and head matches the models exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

from pipeline.adapters import tables  # noqa: F401  (registers the models)
from pipeline.adapters.store import Store


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_migrating_an_empty_database_to_head_matches_the_models(backend: str, tmp_path: Path,
                                                                 request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue("postgres_url") if backend == "postgresql" else f"sqlite:///{tmp_path}/m.db"
    store = Store(url)
    assert inspect(store.engine).get_table_names() == []
    store.migrate()
    store.migrate()  # idempotent
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, SQLModel.metadata)
    assert differences == []
    assert {"event", "notification", "deadline", "auditentry", "missingepisode"} <= set(
        inspect(store.engine).get_table_names())
    store.dispose()


def test_no_code_creates_tables_outside_migrations() -> None:
    root = Path(__file__).resolve().parents[2]
    sources = [path for folder in ("pipeline", "consumers", "producers") for path in (root / folder).rglob("*.py")]
    offenders = [str(path) for path in sources if "create_all(" in path.read_text()]
    assert offenders == []


def _migrated_with_history(backend: str, tmp_path: Path, request: pytest.FixtureRequest, insert: str) -> Store:
    """A store migrated to head, then 5,000 rows of history: ``insert`` (an ``INSERT ... SELECT`` of columns made
    from ``n``, 1 to 5,000, and ``created_at``, one instant) completed with its FROM; then ANALYZE."""
    from sqlalchemy import text

    url = request.getfixturevalue("postgres_url") if backend == "postgresql" else f"sqlite:///{tmp_path}/m.db"
    store = Store(url)
    store.migrate()
    history = ("WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 5000) SELECT n FROM g"
               if backend == "sqlite" else "SELECT generate_series(1, 5000) AS n")
    now = "'2026-12-03 12:00:00.000000'" if backend == "sqlite" else "now()"
    with store.engine.begin() as connection:
        connection.execute(text(f"{insert} FROM ({history}) AS history, (SELECT {now} AS created_at) AS now"))
        connection.execute(text("ANALYZE"))
    return store


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_relays_read_walks_only_the_rows_still_to_relay(backend: str, tmp_path: Path,
                                                            request: pytest.FixtureRequest) -> None:
    """On a long outbox history the relay's read must not pass over the rows already relayed. Before
    ``ix_outbox_waiting`` (migration 0010) SQLite scanned the table here, and PostgreSQL, on a larger history
    (40,000 rows, half relayed), walked the primary key skipping every relayed row; with these 5,000 rows it chose
    the old index on relayed_at. So this guards the choice of the index, on both backends, rather than
    reproducing each old plan."""

    from pipeline.adapters.deliveries import _outbox_due

    store = _migrated_with_history(backend, tmp_path, request, (
        "INSERT INTO outbox (topic, key, body_json, notification_id, created_at, relayed_at) "
        "SELECT 'pathway-notifications', 'k', '{}', NULL, created_at, CASE WHEN n <= 4900 THEN created_at END"))
    statement = _outbox_due(100, store.is_postgres).statement
    sql = str(statement.compile(dialect=store.engine.dialect, compile_kwargs={"literal_binds": True}))
    with store.engine.connect() as connection:
        explain = "EXPLAIN (ANALYZE, FORMAT TEXT) " if backend == "postgresql" else "EXPLAIN QUERY PLAN "
        plan = "\n".join(str(row[-1]) for row in connection.exec_driver_sql(explain + sql))
        waiting = connection.exec_driver_sql(sql).all()
    store.dispose()
    assert "ix_outbox_waiting" in plan, plan
    assert "Rows Removed by Filter" not in plan, plan
    assert len(waiting) == 100 and all(row.id > 4900 for row in waiting)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_an_episodes_deadlines_are_read_by_an_index_not_by_reading_every_deadline(
        backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """The missing pathway reads an episode's deadlines (``deadlines_of_subjects``) on every event about an episode
    already stored. Before ``ix_deadline_subject`` (migration 0011) both backends read every deadline ever stored
    for it: no index began with the subject. The statement checked is the one the repository sends."""
    from sqlalchemy import event

    store = _migrated_with_history(backend, tmp_path, request, (
        "INSERT INTO deadline (id, kind, subject_id, due_at, state, escalation_level, steps_json, created_at) "
        "SELECT 'd-' || n, 'still_missing', 'EP-' || n, created_at, 'open', 0, '[]', created_at"))
    sent: list[tuple[str, object]] = []

    def keep(_conn: object, _cursor: object, statement: str, parameters: object, *_: object) -> None:
        if "FROM deadline" in statement:
            sent.append((statement, parameters))

    event.listen(store.engine, "before_cursor_execute", keep)
    with store.unit_of_work() as repo:
        found = repo.deadlines_of_subjects(["EP-17", "trigger:EP-17"])
    event.remove(store.engine, "before_cursor_execute", keep)
    assert [row.id for row in found] == ["d-17"]
    assert len(sent) == 1
    statement, parameters = sent[0]
    explain = "EXPLAIN (ANALYZE, FORMAT TEXT) " if backend == "postgresql" else "EXPLAIN QUERY PLAN "
    with store.engine.connect() as connection:
        plan = "\n".join(str(row[-1]) for row in connection.exec_driver_sql(explain + statement, parameters))
    store.dispose()
    assert "ix_deadline_subject" in plan, plan
    assert "SCAN deadline" not in plan and "Seq Scan" not in plan, plan
