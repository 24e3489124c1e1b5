"""A value a bind processor refuses, bound by pipeline/adapters/driver_statements.py: raised as SQLAlchemy raises it
(``StatementError`` with the statement), naming the parameter and never the value, in its message, on it, or in
the traceback a log would print."""

from __future__ import annotations

import traceback
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Column, MetaData, String, Table, TypeDecorator, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import StatementError

from pipeline.adapters.driver_statements import DriverStatement
from pipeline.adapters.tables import UTCDateTime

SECRET = "943 476 5919"  # an NHS number's shape


class Fussy(TypeDecorator[str]):
    """A type whose bind processor refuses a value and, as many do, puts it in its message."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        raise ValueError(f"cannot store {value!r}")


PEOPLE = Table("people", MetaData(), Column("nhs_number", Fussy()), Column("name", String),
               Column("seen_at", UTCDateTime()))
DIALECTS = [sqlite.dialect(), postgresql.dialect()]


def _error_of(call: Any) -> StatementError:
    with pytest.raises(StatementError) as caught:
        call()
    return caught.value


def _everything_said(error: BaseException) -> str:
    return str(error) + repr(error) + "".join(traceback.format_exception(error))


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_a_refused_value_is_a_statement_error_naming_the_parameter_and_not_the_value(dialect: Any) -> None:
    compiled = DriverStatement(insert(PEOPLE)).compiled(dialect, ["nhs_number", "name", "seen_at"])
    values = {"nhs_number": SECRET, "name": "Ann", "seen_at": datetime.now(UTC)}
    error = _error_of(lambda: compiled.bind(values))  # (a traceback shows this line, not the one above)
    assert isinstance(error, ValueError)  # still the processor's kind of error to a caller catching that
    said = _everything_said(error)
    assert SECRET not in said and "Ann" not in said
    assert "'nhs_number'" in said and "INSERT INTO people" in said
    assert error.params is None and error.__cause__ is None and error.__context__ is None
    assert error.orig is None  # the processor's own error, whose words hold the value, is not kept on it


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_a_naive_instant_keeps_its_words_which_name_no_value(dialect: Any) -> None:
    compiled = DriverStatement(insert(PEOPLE)).compiled(dialect, ["name", "seen_at"])
    values = {"name": "Ann", "seen_at": datetime(2011, 3, 14, 9, 26, 53)}
    error = _error_of(lambda: compiled.bind(values))
    said = _everything_said(error)
    assert "naive datetimes are not stored" in said and "'seen_at'" in said
    assert "2011" not in said and "Ann" not in said


def test_a_missing_value_names_the_parameter() -> None:
    compiled = DriverStatement(insert(PEOPLE)).compiled(sqlite.dialect(), ["name", "seen_at"])
    values = {"name": "Ann"}
    error = _error_of(lambda: compiled.bind(values))
    assert "no value given" in str(error) and "'seen_at'" in str(error) and "Ann" not in _everything_said(error)


class Undecodable(TypeDecorator[str]):
    """A type whose bind processor raises an error class whose constructor wants more than a message."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        raise UnicodeDecodeError("utf-8", str(value).encode(), 0, 1, "invalid start byte")


def test_an_error_class_with_another_constructor_still_comes_out_as_a_statement_error() -> None:
    table = Table("records", MetaData(), Column("nhs_number", Undecodable()))
    compiled = DriverStatement(insert(table)).compiled(sqlite.dialect(), ["nhs_number"])
    error = _error_of(lambda: compiled.bind({"nhs_number": SECRET}))
    said = _everything_said(error)
    assert "'nhs_number'" in said and SECRET not in said
    assert error.orig is None and error.__context__ is None
