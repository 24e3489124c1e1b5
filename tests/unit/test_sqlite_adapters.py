"""The sqlite3 adapters pipeline/adapters/store.py registers (so NULLs, enumerations' members and bools skip the
driver's failing ``__adapt__``/``__conform__`` lookups): every such type has one, and what is stored is what the
driver stored without them."""

from __future__ import annotations

import sqlite3
from enum import StrEnum

import pytest

import pipeline.adapters.store  # noqa: F401 - registers the adapters
from pipeline.domain import delivery, model
from pipeline.domain.model import EventStatus

# Every enumeration of the domain's stored values (a new one without an adapter fails the first test).
ENUMERATIONS = [kind for module in (model, delivery) for kind in vars(module).values()
                if isinstance(kind, type) and issubclass(kind, StrEnum) and kind is not StrEnum
                and kind.__module__ == module.__name__]


def test_the_domain_has_enumerations_to_check() -> None:
    assert len(ENUMERATIONS) >= 9


@pytest.mark.parametrize("kind", [type(None), bool, *ENUMERATIONS])
def test_each_type_bound_often_has_an_adapter(kind: type) -> None:
    assert (kind, sqlite3.PrepareProtocol) in sqlite3.adapters


def test_what_is_stored_is_unchanged() -> None:
    connection = sqlite3.connect(":memory:")
    connection.execute("CREATE TABLE t (a, b, c)")
    rows = [(None, True, member) for enumeration in ENUMERATIONS for member in enumeration]
    connection.executemany("INSERT INTO t VALUES (?, ?, ?)", rows)
    connection.execute("INSERT INTO t VALUES (:a, :b, :c)", {"a": None, "b": False, "c": EventStatus.PROCESSED})
    stored = connection.execute("SELECT a, typeof(a), b, typeof(b), c, typeof(c) FROM t").fetchall()
    expected = [(None, "null", 1, "integer", member.value, "text") for _, _, member in rows]
    assert stored == [*expected, (None, "null", 0, "integer", "processed", "text")]
