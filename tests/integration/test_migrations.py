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
