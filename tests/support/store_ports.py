"""The storage port over each of its adapters, for the contract suite and the pathways' port tests.

``store_backend`` (a fixture, parametrised ``memory`` / ``sqlite`` / ``postgresql``) gives a ``Backend``: its
``units`` hand out ``StorePort`` units of work over the in-memory fake, a SQLite file migrated by Alembic as the
app does, or a fresh PostgreSQL database (the ``postgres_url`` fixture of tests/conftest.py), with the test
world's reference data (tests/support/world.py) loaded. ``open_backend`` builds one directly. PostgreSQL
databases are copies of one migrated and loaded template per run.

tests/conftest.py registers this module as a plugin, so any test can ask for ``store_backend``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import event
from sqlmodel import col, select

from pipeline import codec
from pipeline.adapters import tables as t
from pipeline.adapters.memory_store import MemoryStore
from pipeline.adapters.store import Store
from pipeline.domain.fellegi_sunter import Parameters
from pipeline.ports import UnitsOfWork
from pipeline.service.reference import load
from tests.conftest import fresh_postgres_database
from tests.support.world import REFERENCE

BACKENDS = ("memory", "sqlite", "postgresql")
SQL_BACKENDS = ("sqlite", "postgresql")
LOADED_AT = datetime.fromisoformat("2026-09-01T08:00:00+00:00")


@dataclass
class Backend:
    name: str
    units: UnitsOfWork
    memory: MemoryStore | None = None
    sql: Store | None = None

    def add_event(self, event_type: str, body: dict[str, Any], now: datetime) -> None:
        """Accept an event as intake does (``body``: its JSON form), committed, not yet processed."""
        if self.memory is not None:
            self.memory.add_event(event_type, body, now)
            return
        assert self.sql is not None
        record = codec.from_json(event_type, body)
        with self.sql.transaction() as session:
            session.add(t.Event(event_id=record["event_id"], event_type=event_type,
                                content_hash=codec.record_hash(event_type, record), received_at=now,
                                record_json=json.dumps(codec.to_json(event_type, record))))

    def load_reference(self, kind: str, text: str, now: datetime = LOADED_AT) -> None:
        """Load a file as ``safeguard load`` does, in a unit of work of its own."""
        with self.units.unit_of_work() as port:
            load(port, kind, text, now)

    def save_parameters(self, parameters: Parameters, now: datetime) -> None:
        with self.units.unit_of_work() as port:
            port.save_match_parameters(parameters, now)

    # ---- what was written, read straight from the store (not through the port) ----------------------------
    def audit_entries(self) -> list[tuple[str, str, str, str]]:
        """(actor, action, subject_id, reason) in the order written."""
        if self.memory is not None:
            return [(a.actor, a.action, a.subject_id, a.reason) for a in self.memory.audit_entries]
        assert self.sql is not None
        with self.sql.read() as session:
            return [(a.actor, a.action, a.subject_id, a.reason)
                    for a in session.exec(select(t.AuditEntry).order_by(col(t.AuditEntry.id))).all()]

    def outbox_rows(self) -> list[tuple[str, str, dict[str, Any], str | None]]:
        """(topic, key, body, notification_id) in the order written."""
        if self.memory is not None:
            return [(o.topic, o.key, o.body, o.notification_id) for o in self.memory.outbox_lines]
        assert self.sql is not None
        with self.sql.read() as session:
            return [(o.topic, o.key, json.loads(o.body_json), o.notification_id)
                    for o in session.exec(select(t.Outbox).order_by(col(t.Outbox.id))).all()]

    def delivery_channels(self) -> list[tuple[str, str, str]]:
        """(notification_id, channel, state) of every delivery row, sorted."""
        if self.memory is not None:
            return sorted((d.notification_id, d.channel, d.state) for d in self.memory.deliveries)
        assert self.sql is not None
        with self.sql.read() as session:
            return sorted((d.notification_id, d.channel, d.state) for d in session.exec(select(t.Delivery)).all())

    def set_event(self, event_id: str, **values: Any) -> None:
        """Change a stored event's columns directly (as another process would have)."""
        if self.memory is not None:
            event = self.memory.event(event_id)
            assert event is not None
            for name, value in values.items():
                setattr(event, name, value)
            return
        assert self.sql is not None
        with self.sql.transaction() as session:
            row = session.exec(select(t.Event).where(t.Event.event_id == event_id)).one()
            for name, value in values.items():
                setattr(row, name, value)
            session.add(row)

    def close(self) -> None:
        if self.sql is not None:
            self.sql.dispose()


def loaded_memory_store(at: datetime, reference: dict[str, str] | None = None) -> MemoryStore:
    """The in-memory fake with ``reference`` (default: the test world's) loaded at ``at``: the handlers' unit tests'
    store."""
    memory = MemoryStore()
    for kind, text in (REFERENCE if reference is None else reference).items():
        memory.load_reference(kind, text, at)
    return memory


def open_backend(name: str, tmp_path: Path, postgres_url: str | None = None,
                 reference: dict[str, str] | None = None) -> Backend:
    """A backend with ``reference`` (default: the test world's) loaded in the order the CLI loads it."""
    if name == "memory":
        memory = MemoryStore()
        backend = Backend(name, memory, memory=memory)
    else:
        url = postgres_url if name == "postgresql" else f"sqlite:///{tmp_path / 'contract.db'}"
        assert url is not None, "postgresql needs the postgres_url fixture"
        store = Store(url)
        store.migrate()
        backend = Backend(name, store, sql=store)
    for kind, text in (REFERENCE if reference is None else reference).items():
        backend.load_reference(kind, text)
    return backend


@pytest.fixture(scope="session")
def postgres_reference_template(real_services: dict[str, str]) -> Iterator[str]:
    """A PostgreSQL database migrated and loaded with the test world once per run; each test gets a copy
    (``CREATE DATABASE ... TEMPLATE``, far quicker than migrating again)."""
    with fresh_postgres_database(real_services) as url:
        backend = open_backend("postgresql", Path("."), url)
        backend.close()  # a template must have no connections while it is copied
        yield url


@contextmanager
def copy_of_postgres_database(real_services: dict[str, str], template_url: str) -> Iterator[str]:
    admin = real_services["SAFEGUARD_POSTGRES_ADMIN_URL"].replace("+psycopg", "")
    template = template_url.rsplit("/", 1)[1]
    name = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}" OWNER safeguard')
    try:
        yield f"{template_url.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def backend_for(request: pytest.FixtureRequest, name: str, tmp_path: Path) -> Iterator[Backend]:
    """The backend ``name`` (``memory``, ``sqlite`` or ``postgresql``) with the test world's reference data, closed
    afterwards. PostgreSQL is a copy of the run's template, and only then are the real services asked for."""
    with ExitStack() as stack:
        if name != "postgresql":
            backend = open_backend(name, tmp_path)
        else:
            services = request.getfixturevalue("real_services")
            template = request.getfixturevalue("postgres_reference_template")
            store = Store(stack.enter_context(copy_of_postgres_database(services, template)))
            backend = Backend("postgresql", store, sql=store)
        stack.callback(backend.close)  # closed before its database is dropped
        yield backend


@pytest.fixture(params=BACKENDS)
def store_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """The port over the fake, SQLite and PostgreSQL in turn, with the test world's reference data."""
    with backend_for(request, request.param, tmp_path) as backend:
        yield backend


@pytest.fixture(params=SQL_BACKENDS)
def sql_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """The SQL store itself (below the port) on SQLite and PostgreSQL in turn, with the test world's reference
    data: for tests of what the SQL adapter does with its database."""
    with backend_for(request, request.param, tmp_path) as backend:
        assert backend.sql is not None
        yield backend.sql


@contextmanager
def statements_run(store: Store) -> Iterator[list[str]]:
    """Every SQL statement ``store`` runs inside the block."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(store.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(store.engine, "before_cursor_execute", record)
