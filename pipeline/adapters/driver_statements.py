"""The hot statements of the handlers, compiled once per dialect and run on the database driver's cursor.

``Connection.execute`` of a Core statement costs about 35 µs of SQLAlchemy per statement on this machine (cache
key, execution context, parameter and result set-up) against about 4 µs that sqlite3 itself spends on a primary
key read; an event runs two to six such statements. A ``DriverStatement`` wraps one Core statement (a select, an
insert with or without RETURNING, an update; no Python-side column defaults) and does that work once per dialect
(``dialect_key``: name, driver, paramstyle, server version) and set of parameter names: it keeps the SQL string
SQLAlchemy compiles for the dialect, the order the parameters go in, and SQLAlchemy's own bind and result
processors of each column type; each execution then only converts the values, runs the SQL on the DBAPI cursor of
the same connection (so inside the same transaction) and converts the rows back. What goes in and comes out is what
``Connection.execute`` would store and return: the same SQL, the processors SQLAlchemy itself would apply
(timezone-aware UTC instants through ``tables.UTCDateTime``, SQLite's 'YYYY-MM-DD HH:MM:SS.ffffff' strings,
dates, booleans), with one exception made for speed: an instant bound on SQLite is formatted by ``_sqlite_instant``,
which yields the same string as the processors it replaces (tests/unit/test_driver_statement_instants.py checks them
against each other).

Kept as through SQLAlchemy: errors are raised as SQLAlchemy's exceptions (``IntegrityError`` and so on) by the
connection's own handler, which also invalidates a connection the database dropped; a value a bind processor
refuses (a naive datetime, a string for a date) is raised from ``CompiledStatement.bind``, on every path, as
SQLAlchemy's ``StatementError`` with the statement and the parameter's name, never a value: no parameters are
kept on it, the original error's words are kept only when they are known to name no value (``UnstorableValue``),
and it is raised without the original chained (a logged traceback would print its message). It is an instance of
the original's class as well (a ``ValueError`` stays one to a caller that catches that); the engine's
``before_cursor_execute`` and ``after_cursor_execute`` listeners see every statement (the tests and benchmarks
that count statements rely on it). Rows come back as ``DriverRow``: a named tuple with SQLAlchemy ``Row``'s
``_mapping``. On PostgreSQL an executemany goes through SQLAlchemy (its "insertmanyvalues" sends one multi-row
statement, cheaper than the driver's statement per row); on a connection outside a transaction every call does,
so SQLAlchemy's autobegin applies. ``run_many`` tells how many rows the statement changed (``RowsChanged``), so an
UPDATE of rows another writer deleted or re-keyed is noticed, not lost: sqlite3 sums an executemany's changes into
``cursor.rowcount`` and psycopg does too, both dialects saying so (``supports_sane_multi_rowcount``); an UPDATE sent
inside a psycopg pipeline (``repository.pipelined``) runs on the driver's cursor, kept open until the pipeline has
synced, because psycopg counts its rows only as their results arrive (and not at all on a closed cursor).

A caller that runs on a raw DBAPI connection of its own (the intake's group commit on ``Store.sqlite_write``,
the token lookup's autocommit reads) takes the compiled form itself: ``DriverStatement.compiled(dialect,
column_keys, expanding)`` gives ``.sql``, ``.bind(params)`` and ``.rows(raw_rows)``, the same conversions with no
listener or error wrapping. An expanding ``IN`` parameter is compiled only there, once per number of values (as
SQLAlchemy renders it at execution: one placeholder a value); ``rows``, ``run`` and ``run_many`` refuse it.

``run_many`` of a plain INSERT on PostgreSQL sends one statement for all the rows, as one JSON array that the
server turns into the table's rows (``INSERT INTO t (a, b) SELECT a, b FROM json_populate_recordset(NULL::t,
%s::json)``; instants sent as ``UTCDateTime`` stores them, in UTC without a zone): psycopg's executemany sends one
statement per row, even in pipeline mode (SQLAlchemy's "insertmanyvalues" is only for statements with RETURNING
on psycopg 3), at 13 to 18 µs of client CPU a row, against about 5 for the document (json's C encoder); the SQL
is the same for any number of rows, so psycopg prepares it once. Arrays over ``unnest`` were tried and cost more
(psycopg builds array literals in Python, escaping each string); a multi-row VALUES has too many parameters for
psycopg's cache of parsed queries. Columns of other types (bytes, JSON) keep the executemany.
"""

from __future__ import annotations

import functools
import json
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Boolean, Date, Integer, String
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import StatementError
from sqlmodel.sql.sqltypes import AutoString

from pipeline.adapters.tables import UnstorableValue, UTCDateTime
from pipeline.domain.model import utc_iso_text

_REQUIRED: Any = object()  # a parameter the caller must give (no value in the statement)


# Instants in UTC formatted lately, by value: a batch's rows repeat a few (its ``now``, an episode's times) among
# others, and ``isoformat`` formats through C's printf, about 10,000 instructions each. UTC ones only: two datetimes
# of one other zone that differ in ``fold`` compare (and hash) equal though they are different instants, and one
# whose zone gives no offset equals a naive one. Plain datetimes only: a subclass equals the plain one with its value.
@functools.lru_cache(maxsize=4096)
def utc_sqlite_text(value: datetime) -> str:
    return value.isoformat(" ", "microseconds")[:-6]  # the UTC text, less the "+00:00" offset at the end


def _sqlite_instant(value: datetime | None) -> str | None:
    """``UTCDateTime`` then SQLite's ``DATETIME`` bind processor, in one step: the same string, a third the cost."""
    if value is None:
        return None
    if value.tzinfo is UTC and type(value) is datetime:
        return utc_sqlite_text(value)
    if value.tzinfo is None:
        raise UnstorableValue("naive datetimes are not stored")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


_BIND_ERROR_TYPES: dict[type[Exception], type[StatementError]] = {}


def _bind_error_type(original: type[Exception]) -> type[StatementError]:
    """``StatementError`` that is also an instance of ``original`` (so a caller catching either catches it)."""
    kind = _BIND_ERROR_TYPES.get(original)
    if kind is None:
        try:
            kind = type(original.__name__, (StatementError, original), {"__module__": __name__})
        except TypeError:  # a class that cannot be mixed in (its instances' layout): SQLAlchemy's alone
            kind = StatementError
        _BIND_ERROR_TYPES[original] = kind
    return kind


def dialect_key(dialect: Dialect) -> tuple[Any, ...]:
    """What the SQL compiled for ``dialect`` depends on: dialects may share a name (SQLite through another driver,
    or with another paramstyle; PostgreSQL through psycopg or pg8000), and the server's version sets what some
    constructs compile to."""
    return (type(dialect), dialect.name, dialect.driver, dialect.paramstyle, dialect.server_version_info,
            dialect.label_length)


def _bind_processor(type_: Any, dialect: Dialect) -> Callable[[Any], Any] | None:
    if dialect.name == "sqlite" and isinstance(type_, UTCDateTime):
        return _sqlite_instant
    # SQLAlchemy's cached processor for the dialect: the one Connection.execute applies.
    processor: Callable[[Any], Any] | None = type_._cached_bind_processor(dialect)
    return processor


def _none_for_none(processor: Callable[[Any], Any]) -> bool:
    try:
        return processor(None) is None
    except Exception:  # noqa: BLE001 - one that refuses None: called for it, so it refuses it as before
        return False


def _row_binder(parameters: Sequence[tuple[str, str, Any, Callable[[Any], Any] | None]],
                positional: bool) -> Callable[[Mapping[str, Any]], Any]:
    """A function of the caller's row (every parameter given) that returns the driver's parameters in one
    expression: a tuple in the placeholders' order (or a dict by placeholder name), each value through its
    column's bind processor (None passed on without the call where the processor itself gives None for None:
    not a JSON column's, which writes it as JSON's null). Generated once per compiled statement: the row loop of an
    executemany of a few hundred rows, a dozen columns each, cost more in Python than the driver's inserts."""
    namespace: dict[str, Any] = {}
    items = []
    for index, (name, key, _constant, processor) in enumerate(parameters):
        value = f"row[{key!r}]"
        if processor is not None:
            namespace[f"_p{index}"] = processor
            value = f"(None if (_v := {value}) is None else _p{index}(_v))" if _none_for_none(processor) \
                else f"_p{index}({value})"
        items.append(value if positional else f"{name!r}: {value}")
    body = f"({', '.join(items)},)" if positional else f"{{{', '.join(items)}}}"
    exec(f"def bind_row(row):\n    return {body}\n", namespace)  # noqa: S102 - built from the statement's names
    bind_row: Callable[[Mapping[str, Any]], Any] = namespace["bind_row"]
    return bind_row


class _DriverRowMixin:
    __slots__ = ()
    _fields: tuple[str, ...]

    @property
    def _mapping(self) -> dict[str, Any]:
        return dict(zip(self._fields, self, strict=True))  # type: ignore[call-overload]


@functools.cache
def driver_row_type(columns: tuple[str, ...]) -> Any:
    """The row class of these columns (one per set of names): a named tuple with ``_mapping``, as rows are read
    from the driver's cursor. ValueError for names a named tuple cannot have."""
    return type("DriverRow", (_DriverRowMixin, namedtuple("DriverRowBase", columns)), {"__slots__": ()})


class CompiledStatement:
    """One statement compiled for one dialect, one set of parameter names and, for an expanding ``IN``, one count
    of values: ``sql`` to run on a DBAPI cursor, ``bind(params)`` the parameters to run it with (SQLAlchemy's bind
    processors applied), ``rows(raw)`` the rows the cursor fetched, converted as ``Connection.execute`` converts
    them. Made by ``DriverStatement.compiled``."""

    def __init__(self, statement: Any, dialect: Dialect, column_keys: Sequence[str] | None,
                 expanding: Mapping[str, int] | None = None) -> None:
        keys = list(column_keys) if column_keys else None
        compiled = statement.compile(dialect=dialect, column_keys=keys)
        if compiled.insert_prefetch or compiled.update_prefetch or getattr(compiled, "postfetch", None):
            raise ValueError("a DriverStatement takes no statement with column defaults computed at execution")
        binds = compiled.binds  # the parameters as the statement has them (required or not, types)
        counts = dict(expanding or {})
        if any(bind.expanding and bind.key not in counts for bind in binds.values()):
            raise ValueError("an expanding parameter needs its count: DriverStatement.compiled(..., expanding=)")
        if counts:
            if any(count < 1 for count in counts.values()):
                raise ValueError("an expanding parameter is compiled for one value or more")
            # Rendered as SQLAlchemy renders it at execution: one placeholder per value ('ids_1', 'ids_2', ...);
            # the rendering wants a value for every parameter, so the required ones get a stand-in here.
            stand_ins = {bind.key: [None] * counts[bind.key] if bind.expanding else None
                         for bind in binds.values() if bind.expanding or bind.required}
            rendered = statement.params(**stand_ins).compile(dialect=dialect, column_keys=keys,
                                                             compile_kwargs={"render_postcompile": True})
        else:
            rendered = compiled
        self.sql: str = rendered.string
        self.positional: bool = compiled.positional
        # Each placeholder: (the bind, the index in an expanding parameter's values or None).
        slots: list[tuple[Any, str, int | None]] = []
        if compiled.positional:
            expanded_names = {f"{name}_{index + 1}": (name, index) for name, bind in binds.items() if bind.expanding
                              for index in range(counts[bind.key])}
            for name in rendered.positiontup:
                if name in binds:
                    slots.append((binds[name], compiled.escaped_bind_names.get(name, name), None))
                else:
                    bind_name, index = expanded_names[name]
                    slots.append((binds[bind_name], name, index))
        else:
            for name, bind in binds.items():
                escaped = compiled.escaped_bind_names.get(name, name)
                if bind.expanding:
                    slots.extend((bind, f"{escaped}_{index + 1}", index) for index in range(counts[bind.key]))
                else:
                    slots.append((bind, escaped, None))
        # (parameter name in the compiled SQL, the caller's key, the statement's own value or _REQUIRED, processor);
        # as in SQLCompiler.construct_params, a value the caller gives wins over the statement's own.
        self.parameters: list[tuple[str, str, Any, Callable[[Any], Any] | None]] = []
        self._indexes: list[int | None] = []
        for bind, name, position in slots:
            constant = _REQUIRED if bind.required or position is not None else bind.effective_value
            self.parameters.append((name, bind.key, constant, _bind_processor(bind.type, dialect)))
            self._indexes.append(position)
        self._counts = counts
        columns = compiled._result_columns  # (key, name, objects, type): what Connection.execute reads
        self.row: Any = None
        self.result_processors: list[tuple[int, Callable[[Any], Any]]] = []
        if columns:
            self.row = driver_row_type(tuple(c[0] for c in columns))
            for index, column in enumerate(columns):
                processor = column[3]._cached_result_processor(dialect, None)
                if processor is not None:
                    self.result_processors.append((index, processor))

        # Every parameter the caller's (an insert's or update's values, most selects): one generated function
        # makes the driver's parameters from the caller's row (``_row_binder``).
        self._all_given = not counts and all(constant is _REQUIRED for _n, _k, constant, _p in self.parameters)
        self._processors = [(index, parameter[3]) for index, parameter in enumerate(self.parameters)
                            if parameter[3] is not None]
        self._bind_row: Callable[[Mapping[str, Any]], Any] | None = \
            _row_binder(self.parameters, self.positional) if self._all_given and self.parameters else None
        # With an expanding parameter, positional, every value the caller's: the caller's values piece by piece
        # (a key and None for one value, a key and its count for an expanding one), in the placeholders' order.
        self._pieces: list[tuple[str, int | None]] | None = None
        if counts and self.positional and all(constant is _REQUIRED for _n, _k, constant, _p in self.parameters):
            self._pieces = []
            for (_name, key, _constant, _processor), position in zip(self.parameters, self._indexes, strict=True):
                if position is None:
                    self._pieces.append((key, None))
                elif position == 0:
                    self._pieces.append((key, counts[key]))
        self._one_expanding: tuple[str, int] | None = None
        if self._pieces is not None and len(self._pieces) == 1 and not self._processors:
            key, piece_count = self._pieces[0]
            if piece_count is not None:
                self._one_expanding = (key, piece_count)

    def bind(self, params: Mapping[str, Any]) -> Any:
        """The parameters for the DBAPI cursor (a tuple or a dict, as the driver's paramstyle wants), from the
        caller's values by name (an expanding parameter's a sequence of as many values as it was compiled for).
        A value refused (or missing) raises ``StatementError`` naming the parameter, never the value."""
        try:
            return self._bind(params)
        except Exception as error:  # noqa: BLE001 - raised again as SQLAlchemy's error, with no value in it
            refused = self._bind_error(params, error)
        # Raised outside the except block, so the original (whose words may hold the value) is not its context.
        raise refused

    def _bind_error(self, params: Mapping[str, Any], error: Exception) -> StatementError:
        key = self._failing_parameter(params)
        if isinstance(error, UnstorableValue):
            words = str(error)
        elif isinstance(error, KeyError):
            words = "no value given"
        else:
            words = "value refused"
        if key is not None:
            words += f" (parameter {key!r})"
        message = f"({type(error).__module__}.{type(error).__qualname__}) {words}"
        try:  # orig=None: the original error, whose words may hold the value, is not kept on it
            return _bind_error_type(type(error))(message, self.sql, None, None, hide_parameters=True)
        except Exception:  # noqa: BLE001 - a class whose constructor wants other arguments: SQLAlchemy's alone
            return StatementError(message, self.sql, None, None, hide_parameters=True)

    def _failing_parameter(self, params: Mapping[str, Any]) -> str | None:
        """The caller's key of the first parameter whose value is missing or its processor refuses."""
        for (_name, key, constant, processor), position in zip(self.parameters, self._indexes, strict=True):
            try:
                if position is not None:
                    value = params[key][position]
                else:
                    value = params[key] if constant is _REQUIRED or key in params else constant
                if processor is not None:
                    processor(value)
            except Exception:  # noqa: BLE001 - this is the one
                return key
        return None

    def bind_many(self, rows: Sequence[Mapping[str, Any]]) -> list[Any]:
        """``bind`` of each row (an executemany's parameters), as ``bind`` raises for the first row refused."""
        bind_row = self._bind_row
        if bind_row is not None:
            try:
                return list(map(bind_row, rows))
            except Exception:  # noqa: BLE001, S110 - bound again one by one below, which raises as ``bind`` does
                pass
        bind = self.bind
        return [bind(row) for row in rows]

    def _bind(self, params: Mapping[str, Any]) -> Any:
        if self._bind_row is not None:
            return self._bind_row(params)
        if self._one_expanding is not None:  # the statement's one parameter, with no processor: the values as given
            key, count = self._one_expanding
            given_values = params[key]
            if len(given_values) != count:
                raise UnstorableValue(f"{key} has not the number of values it was compiled for")
            return tuple(given_values)
        for key, count in self._counts.items():
            if len(params[key]) != count:
                raise UnstorableValue(f"{key} has not the number of values it was compiled for")
        if self._pieces is not None:
            given: list[Any] = []
            for key, values_given in self._pieces:
                if values_given is None:
                    given.append(params[key])
                else:
                    given.extend(params[key])
            for index, convert in self._processors:
                given[index] = convert(given[index])
            return tuple(given)
        values = []
        for (_name, key, constant, processor), position in zip(self.parameters, self._indexes, strict=True):
            if position is not None:
                value = params[key][position]
            else:
                value = params[key] if constant is _REQUIRED or key in params else constant
            values.append(value if processor is None else processor(value))
        if self.positional:
            return tuple(values)
        return {name: value for (name, *_), value in zip(self.parameters, values, strict=True)}

    def rows(self, raw: Sequence[Any]) -> list[Any]:
        """The rows a DBAPI cursor fetched, as ``DriverRow``s converted by the result columns' processors."""
        make = self.row._make
        processors = self.result_processors
        if not processors:
            return [make(row) for row in raw]
        converted = []
        for row in raw:
            values = list(row)
            for index, processor in processors:
                values[index] = processor(values[index])
            converted.append(make(values))
        return converted


# Column types whose values a JSON document carries as PostgreSQL reads them back into the column: text, integers,
# booleans, dates, and instants (``UTCDateTime``: stored as UTC without a zone, as its bind processor stores them).
# (SQLModel's ``AutoString`` is a String that only picks its length per dialect.)
_JSON_TYPES = (String, AutoString, Integer, Boolean, Date, UTCDateTime)


def json_value(value: Any) -> Any:
    """A value json.dumps cannot write itself, as ``JsonRowsInsert`` sends it: an instant as ``UTCDateTime``
    stores it (UTC, no zone; a naive one refused), a date in ISO form."""
    if isinstance(value, datetime):
        if value.tzinfo is UTC and type(value) is datetime:  # the usual case: its text (kept by value) less "+00:00"
            return utc_iso_text(value)[:-6]
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored")
        return value.astimezone(UTC).replace(tzinfo=None).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not sent as JSON")


class JsonRowsInsert:
    """A plain INSERT of many rows as one PostgreSQL statement over ``json_populate_recordset`` (see the module's
    docstring): ``sql`` and ``bind(rows)``, the rows as one JSON array. Rows come out in the array's order, so a
    serial column numbers them in the order given."""

    def __init__(self, statement: Any, dialect: Dialect, column_keys: Sequence[str]) -> None:
        table = statement.table
        preparer = dialect.identifier_preparer
        names = ", ".join(preparer.format_column(table.c[key]) for key in column_keys)
        self.sql = (f"INSERT INTO {preparer.format_table(table)} ({names}) "
                    f"SELECT {names} FROM json_populate_recordset(NULL::{preparer.format_table(table)}, %s::json)")

    @staticmethod
    def fits(statement: Any, column_keys: Sequence[str]) -> bool:
        """Whether every column given is one whose values JSON carries (and is named as its key)."""
        columns = statement.table.c
        return all(key in columns and columns[key].name == key and isinstance(columns[key].type, _JSON_TYPES)
                   for key in column_keys)

    @staticmethod
    def bind(rows: Sequence[Mapping[str, Any]]) -> tuple[str]:
        return (json.dumps(rows, default=json_value),)


class JsonRowsUpdate:
    """An UPDATE of many rows, each by its key, as one PostgreSQL statement over ``json_populate_recordset`` (as
    ``JsonRowsInsert`` inserts them): ``UPDATE t SET a = v.a, b = v.b FROM json_populate_recordset(NULL::t, %s::json)
    AS v WHERE t.key = v.key``. Its row count is the number of rows it changed, as an executemany's is summed. The
    rows' key is given under the statement's key parameter, sent under the key column's name; each row's key once."""

    def __init__(self, table: Any, dialect: Dialect, key_column: str, key_parameter: str,
                 column_keys: Sequence[str]) -> None:
        preparer = dialect.identifier_preparer
        name = preparer.format_table(table)
        key = preparer.format_column(table.c[key_column])
        changed = ", ".join(f"{preparer.format_column(table.c[k])} = v.{preparer.format_column(table.c[k])}"
                            for k in column_keys if k != key_parameter)
        self.sql = (f"UPDATE {name} SET {changed} FROM json_populate_recordset(NULL::{name}, %s::json) AS v "
                    f"WHERE {name}.{key} = v.{key}")
        self._key_column, self._key_parameter = key_column, key_parameter

    @staticmethod
    def fits(table: Any, key_column: str, key_parameter: str, column_keys: Sequence[str]) -> bool:
        """Whether the key and every column set are columns whose values JSON carries (named as their keys), the
        key not among the columns set, and something set."""
        columns = table.c
        changed = [key for key in column_keys if key != key_parameter]
        return bool(changed) and key_parameter in column_keys and key_column not in changed and all(
            key in columns and columns[key].name == key and isinstance(columns[key].type, _JSON_TYPES)
            for key in (*changed, key_column))

    def bind(self, rows: Sequence[Mapping[str, Any]]) -> tuple[str]:
        key_column, key_parameter = self._key_column, self._key_parameter
        return (json.dumps([{key_column if name == key_parameter else name: value for name, value in row.items()}
                            for row in rows], default=json_value),)


def _plain_insert(statement: Any) -> bool:
    """An INSERT of the caller's values into one table: nothing read back, no ON CONFLICT, no values of its own."""
    return bool(statement.is_insert and not statement._returning and statement._post_values_clause is None
                and not statement._values and not statement._multi_values and statement.select is None)


def in_pipeline(connection: Connection) -> bool:
    """Whether ``connection``'s driver is in psycopg's pipeline mode (statements sent, results not yet read)."""
    driver = connection.connection.driver_connection
    pgconn = getattr(driver, "pgconn", None)
    return pgconn is not None and bool(pgconn.pipeline_status)


class RowsChanged:
    """How many rows one ``run_many`` changed, summed over its rows: ``count()``, None where the dialect does not
    report an executemany's count reliably (``supports_sane_multi_rowcount``). ``pending`` while the count waits on a
    psycopg pipeline's results: ``count()`` is then read only once the pipeline has synced (it closes the cursor)."""

    __slots__ = ("_count", "_cursor")

    def __init__(self, count: int | None, cursor: Any = None) -> None:
        self._count = count
        self._cursor = cursor

    @property
    def pending(self) -> bool:
        return self._cursor is not None

    def count(self) -> int | None:
        cursor = self._cursor
        if cursor is not None:
            self._cursor = None
            self._count = cursor.rowcount if cursor.rowcount >= 0 else None
            cursor.close()
        return self._count

    def discard(self) -> None:
        """Not to be read (its transaction rolled back): the kept cursor, if any, is closed."""
        cursor, self._cursor = self._cursor, None
        if cursor is not None:
            cursor.close()


class DriverStatement:
    """A Core statement run on the DBAPI cursor (see the module's docstring). Build one per statement, at import:
    it compiles on first use for each dialect (and, for inserts and updates, each set of parameter names)."""

    def __init__(self, statement: Any, *, by_key: tuple[str, str] | None = None) -> None:
        """``by_key``: (column, parameter) of an UPDATE whose one condition is ``column = :parameter``, so that its
        ``run_many`` on PostgreSQL is one statement for all the rows (``JsonRowsUpdate``) where the columns allow."""
        self.statement = statement
        self._by_key = by_key
        self._json_updates: dict[tuple[str, ...], JsonRowsUpdate | None] = {}
        self._dml = bool(statement.is_dml)  # an insert or update compiles for the columns given
        # By ``dialect_key`` and the parameter names (and an expanding parameter's count of values).
        self._compiled: dict[tuple[tuple[Any, ...], tuple[str, ...] | None], CompiledStatement] = {}
        self._expanded: dict[tuple[tuple[Any, ...], tuple[str, ...] | None, tuple[tuple[str, int], ...]],
                             CompiledStatement] = {}
        self._plain_insert = _plain_insert(statement)
        self._json_rows: dict[tuple[str, ...], JsonRowsInsert | None] = {}

    def _for(self, dialect: Dialect, column_keys: tuple[str, ...] | None) -> CompiledStatement:
        key = (dialect_key(dialect), column_keys)
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._compiled[key] = CompiledStatement(self.statement, dialect, column_keys)
        return compiled

    def compiled(self, dialect: Dialect, column_keys: Sequence[str] | None = None,
                 expanding: Mapping[str, int] | None = None) -> CompiledStatement:
        """The statement compiled for ``dialect`` (an insert's or update's for ``column_keys``; each expanding
        parameter for the number of values ``expanding`` gives), to run on a DBAPI cursor of the caller's own:
        compiled once per such key and kept."""
        keys = tuple(column_keys) if column_keys is not None else None
        if not expanding:
            return self._for(dialect, keys)
        given = tuple(expanding.items())
        key = (dialect_key(dialect), keys, given if len(given) == 1 else tuple(sorted(given)))
        compiled = self._expanded.get(key)
        if compiled is None:
            compiled = self._expanded[key] = CompiledStatement(self.statement, dialect, keys, expanding)
        return compiled

    def _run(self, connection: Connection, compiled: CompiledStatement | JsonRowsInsert | JsonRowsUpdate,
             parameters: Any, many: bool,
             fetch: bool) -> Sequence[Any]:
        cursor = self._execute(connection, compiled, parameters, many)
        try:
            raw = cursor.fetchall() if fetch else []
        except Exception as error:  # noqa: BLE001 - raised again by SQLAlchemy's handler, wrapped as it wraps it
            cursor.close()
            connection._handle_dbapi_exception(error, compiled.sql, parameters, cursor, None)
        cursor.close()
        return raw

    def _execute(self, connection: Connection, compiled: CompiledStatement | JsonRowsInsert | JsonRowsUpdate,
                 parameters: Any,
                 many: bool) -> Any:
        """The statement run on a new DBAPI cursor of ``connection``, listeners told; the cursor, open."""
        sql = compiled.sql
        cursor = connection.connection.cursor()
        try:
            if connection._has_events or connection.engine._has_events:
                for listener in connection.dispatch.before_cursor_execute:
                    sql, parameters = listener(connection, cursor, sql, parameters, None, many)
            if many:
                cursor.executemany(sql, parameters)
            else:
                cursor.execute(sql, parameters)
            if connection._has_events or connection.engine._has_events:
                for listener in connection.dispatch.after_cursor_execute:
                    listener(connection, cursor, sql, parameters, None, many)
        except Exception as error:  # noqa: BLE001 - raised again by SQLAlchemy's handler, wrapped as it wraps it
            cursor.close()
            connection._handle_dbapi_exception(error, sql, parameters, cursor, None)
        return cursor

    def rows(self, connection: Connection, params: Mapping[str, Any] | None = None) -> list[Any]:
        """Every row, converted as ``Connection.execute(...).all()`` converts it."""
        if not connection.in_transaction():
            return list(connection.execute(self.statement, dict(params or {})).all())
        params = params or {}
        compiled = self._for(connection.dialect, tuple(params) if self._dml else None)
        return compiled.rows(self._run(connection, compiled, compiled.bind(params), False, True))

    def first(self, connection: Connection, params: Mapping[str, Any] | None = None) -> Any:
        """The first row or None."""
        found = self.rows(connection, params)
        return found[0] if found else None

    def scalar(self, connection: Connection, params: Mapping[str, Any] | None = None) -> Any:
        """The first column of the first row, or None."""
        found = self.rows(connection, params)
        return found[0][0] if found else None

    def run(self, connection: Connection, params: Mapping[str, Any]) -> None:
        """A statement with no result read (an insert or update without RETURNING), for one set of values."""
        if not connection.in_transaction():
            connection.execute(self.statement, dict(params))
            return
        compiled = self._for(connection.dialect, tuple(params))
        self._run(connection, compiled, compiled.bind(params), False, False)

    def run_many(self, connection: Connection, rows: Sequence[Mapping[str, Any]]) -> RowsChanged:
        """The statement once per row, the rows all with the same keys (an executemany); how many rows it changed."""
        if not rows:
            return RowsChanged(0)
        if connection.dialect.name == "postgresql" and self._plain_insert and connection.in_transaction():
            keys = tuple(rows[0])
            if keys not in self._json_rows:
                self._for(connection.dialect, keys)  # refuses a statement with column defaults computed at execution
                self._json_rows[keys] = JsonRowsInsert(self.statement, connection.dialect, keys) \
                    if JsonRowsInsert.fits(self.statement, keys) else None
            json_rows = self._json_rows[keys]
            if json_rows is not None:
                if in_pipeline(connection):  # nothing to count until the pipeline syncs: nobody counts inserts
                    self._run(connection, json_rows, json_rows.bind(rows), False, False)
                    return RowsChanged(None)
                cursor = self._execute(connection, json_rows, json_rows.bind(rows), False)
                count = cursor.rowcount
                cursor.close()
                return RowsChanged(count if count >= 0 else None)
        sane = connection.dialect.supports_sane_multi_rowcount
        if self._by_key is not None and connection.dialect.name == "postgresql" and connection.in_transaction():
            keys = tuple(rows[0])
            if keys not in self._json_updates:
                self._for(connection.dialect, keys)  # as the executemany would be: refuses what it refuses
                column, parameter = self._by_key
                self._json_updates[keys] = JsonRowsUpdate(self.statement.table, connection.dialect, column, parameter,
                                                          keys) \
                    if JsonRowsUpdate.fits(self.statement.table, column, parameter, keys) else None
            json_update = self._json_updates[keys]
            if json_update is not None:
                cursor = self._execute(connection, json_update, json_update.bind(rows), False)
                if in_pipeline(connection) and sane:  # counted when the pipeline syncs
                    return RowsChanged(None, cursor)
                count = None if in_pipeline(connection) else cursor.rowcount
                cursor.close()
                return RowsChanged(count if sane and count is not None and count >= 0 else None)
        if connection.dialect.name != "sqlite" or not connection.in_transaction():
            if not self.statement.is_insert and connection.in_transaction() and in_pipeline(connection):
                # Counted only when the pipeline syncs, on a cursor still open then (see the module's docstring).
                compiled = self._for(connection.dialect, tuple(rows[0]))
                cursor = self._execute(connection, compiled, compiled.bind_many(rows), True)
                if sane:
                    return RowsChanged(None, cursor)
                cursor.close()
                return RowsChanged(None)
            result = connection.execute(self.statement, list(rows))
            return RowsChanged(result.rowcount if sane and result.rowcount >= 0 else None)
        compiled = self._for(connection.dialect, tuple(rows[0]))
        cursor = self._execute(connection, compiled, compiled.bind_many(rows), True)
        count = cursor.rowcount
        cursor.close()
        return RowsChanged(count if sane and count >= 0 else None)


def rows_by_keys(connection: Connection, keys: Sequence[Any], one: DriverStatement, one_key: str, many: Any,
                 many_key: str) -> list[Any]:
    """The rows of ``keys``: of one key through ``one`` (a DriverStatement, its parameter ``one_key``) on the
    driver's cursor; of several through ``many`` (Core, an expanding parameter ``many_key``), which a
    DriverStatement cannot run. One key is what a batch of one event reads: at a low rate, every batch."""
    if len(keys) == 1:
        return one.rows(connection, {one_key: keys[0]})
    return plain_rows(connection.execute(many, {many_key: list(keys)}))


def plain_rows(result: Any) -> list[Any]:
    """A Core result's rows as the rows a DriverStatement reads (named tuples with ``_mapping``), for rows read
    attribute by attribute on the hot path: each attribute of SQLAlchemy's ``Row`` is a failed generic look-up
    first (an ``AttributeError`` formatted and dropped), about 2,000 instructions. Columns a named tuple cannot
    have (a keyword, a leading underscore, a repeated name, ``count(*)``) leave the rows as SQLAlchemy's."""
    try:
        make = driver_row_type(tuple(result.keys()))._make
    except ValueError:
        return list(result)
    return [make(row) for row in result]
