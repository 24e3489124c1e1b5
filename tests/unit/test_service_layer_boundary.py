"""The service layer talks to the store only through the port: no table class, SQLAlchemy, SQLModel, select() or
SQL-store module.

Every module of pipeline/service/ is read with ``ast`` (imports inside functions, and those only for type checking,
included). Forbidden: importing ``sqlalchemy`` or ``sqlmodel``, the tables or any module of the SQL store
(``SQL_STORE``: the store, the repository and their queries), in any spelling, or anything under them; and calling
``select(...)``. No module is excepted: the last ones that were (users, web sessions, access, reference loading,
match training, the relay, the intake) ask the port's parts now.
"""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

SERVICE = Path(__file__).resolve().parents[2] / "pipeline" / "service"
# The SQL store and its queries: the services reach them through the port (pipeline/ports/) only.
SQL_STORE = tuple(f"pipeline.adapters.{name}" for name in (
    "tables", "store", "repository", "repository_missing", "intake_rows", "deliveries", "notifications", "accounts",
    "reference_store", "event_queue", "effect_rows", "driver_statements", "record_reads", "match_training_rows"))
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
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [f"{node.module}.{alias.name}" for alias in node.names
                      if _forbidden(node.module) or _forbidden(f"{node.module}.{alias.name}")]
        elif isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
            if name == "select":
                found.append("select()")
    return found


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


        def later(session):
            from sqlmodel import select as choose
            return session.exec(select(t.Event)), sa.select(1), choose
    """)
    assert violations(source) == [
        "sqlalchemy.exc", "sqlalchemy.exc.IntegrityError", "sqlmodel.Session", "sqlmodel.col",
        "pipeline.adapters.tables", "pipeline.adapters.tables.DeadLetter", "pipeline.adapters.intake_rows",
        "sqlmodel.select", "select()", "select()",
    ]
