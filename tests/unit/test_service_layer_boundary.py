"""The service layer talks to the store only through the port: no table class, SQLAlchemy, SQLModel, select() or
SQL-store module.

Every module of pipeline/service/ is read with ``ast`` (imports inside functions, and those only for type checking,
included). Forbidden: importing ``sqlalchemy`` or ``sqlmodel``, the tables or any module of the SQL store
(``SQL_STORE``: every adapter that imports one of those, found by reading them, but for ``MAY_BE_NAMED``), or
anything under them; a relative import (the layer spells its imports absolutely, so none hides); and calling
``select(...)``. No module is excepted: the last ones that were (users, web sessions, access, reference loading,
match training, the relay, the intake) ask the port's parts now.
"""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

SERVICE = Path(__file__).resolve().parents[2] / "pipeline" / "service"
ADAPTERS = SERVICE.parent / "adapters"
# Adapters that touch the database but that a service may name, and why.
MAY_BE_NAMED = {
    # The in-memory blocking index the matcher asks (handlers.Context holds one). The port's sync_match_index fills
    # it; its reading of the database runs only when the SQL adapter calls it.
    "pipeline.adapters.match_index",
}


def _sql_store_modules() -> tuple[str, ...]:
    """Every module of pipeline/adapters/ that imports SQLAlchemy, SQLModel or the tables: the SQL store and its
    queries, found by reading them (a new query module is covered without being listed here)."""
    found = []
    for path in sorted(ADAPTERS.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else \
                [f"{node.module}.{alias.name}" for alias in node.names] \
                if isinstance(node, ast.ImportFrom) and node.module else []
            if any(name.split(".")[0] in ("sqlalchemy", "sqlmodel") or name.startswith("pipeline.adapters.tables")
                   for name in names):
                found.append(f"pipeline.adapters.{path.stem}")
                break
    return tuple(module for module in found if module not in MAY_BE_NAMED)


SQL_STORE = _sql_store_modules()
FORBIDDEN_MODULES = ("sqlalchemy", "sqlmodel", *SQL_STORE)

def _forbidden(module: str) -> bool:
    return any(module == name or module.startswith(name + ".") for name in FORBIDDEN_MODULES)


def violations(source: str) -> list[str]:
    """What one module does that the service layer must not: each forbidden import as ``module.name``, each
    ``select(`` call as ``select()``."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if _forbidden(alias.name)]
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            found.append(f"relative import {'.' * node.level}{node.module or ''}")  # spelled absolutely here
        elif isinstance(node, ast.ImportFrom) and node.module:
            found += [f"{node.module}.{alias.name}" for alias in node.names
                      if _forbidden(node.module) or _forbidden(f"{node.module}.{alias.name}")]
        elif isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
            if name == "select":
                found.append("select()")
    return found


def test_the_sql_store_is_found_by_reading_the_adapters() -> None:
    assert {"pipeline.adapters.tables", "pipeline.adapters.store", "pipeline.adapters.repository",
            "pipeline.adapters.intake_rows", "pipeline.adapters.scorecard"} <= set(SQL_STORE)
    assert "pipeline.adapters.metrics" not in SQL_STORE and "pipeline.adapters.match_index" not in SQL_STORE


def test_no_service_module_reaches_past_the_port() -> None:
    found = {(path.name, what) for path in sorted(SERVICE.glob("*.py")) for what in violations(path.read_text())}
    assert found == set(), "the service layer must use the storage port (pipeline/ports/)"


def test_each_forbidden_spelling_is_found() -> None:
    source = textwrap.dedent("""
        import sqlalchemy.exc
        from sqlalchemy.exc import IntegrityError
        from sqlmodel import Session, col
        from pipeline.adapters import tables as t
        from pipeline.adapters.tables import DeadLetter
        from pipeline.adapters import intake_rows
        from pipeline.ports.records import DeadLetterRecord
        from .store import Store


        def later(session):
            from sqlmodel import select as choose
            return session.exec(select(t.Event)), sa.select(1), choose
    """)
    assert violations(source) == [
        "sqlalchemy.exc", "sqlalchemy.exc.IntegrityError", "sqlmodel.Session", "sqlmodel.col",
        "pipeline.adapters.tables", "pipeline.adapters.tables.DeadLetter", "pipeline.adapters.intake_rows",
        "relative import .store", "sqlmodel.select", "select()", "select()",
    ]
