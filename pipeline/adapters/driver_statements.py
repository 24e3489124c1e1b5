"""The hot statements of the handlers, compiled once per dialect and run on the database driver's cursor.

``Connection.execute`` of a Core statement costs about 35 µs of SQLAlchemy per statement on this machine (cache
key, execution context, parameter and result set-up) against about 4 µs that sqlite3 itself spends on a primary
key read; an event runs two to six such statements. A ``DriverStatement`` wraps one Core statement (a select,
an insert with or without RETURNING, an update; no Python-side column defaults) and does that work once per
dialect and set of parameter names: it keeps the SQL string SQLAlchemy compiles for the
dialect, the order the parameters go in, and SQLAlchemy's own bind and result processors of each column type; each
execution then only converts the values, runs the SQL on the DBAPI cursor of the same connection (so inside the
same transaction) and converts the rows back. What goes in and comes out is what ``Connection.execute`` would
store and return: the same SQL, the processors SQLAlchemy itself would apply (timezone-aware UTC instants through
``tables.UTCDateTime``, SQLite's 'YYYY-MM-DD HH:MM:SS.ffffff' strings, dates, booleans), with one exception made
for speed: an instant bound on SQLite is formatted by ``_sqlite_instant``, which yields the same string as the
processors it replaces (tests/unit/test_driver_statements.py checks them against each other).

Kept as through SQLAlchemy: errors are raised as SQLAlchemy's exceptions (``IntegrityError`` and so on) by the
connection's own handler, which also invalidates a connection the database dropped; the engine's
``before_cursor_execute`` and ``after_cursor_execute`` listeners see every statement (the tests and benchmarks
that count statements rely on it). Rows come back as ``DriverRow``: a named tuple with SQLAlchemy ``Row``'s
``_mapping``. On PostgreSQL an executemany goes through SQLAlchemy (its "insertmanyvalues" sends one multi-row
statement, cheaper than the driver's statement per row); on a connection outside a transaction every call does,
so SQLAlchemy's autobegin applies.

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

import json
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import Boolean, Date, Integer, String
from sqlalchemy.engine import Connection, Dialect
from sqlmodel.sql.sqltypes import AutoString

from pipeline.adapters.tables import UTCDateTime

_REQUIRED: Any = object()  # a parameter the caller must give (no value in the statement)


# The last instant formatted and its string: a batch's rows share one ``now`` object. The pair is replaced whole
# (threads read it whole) and holds the datetime, so its identity is not reused while it is here.
_last_instant: tuple[datetime | None, str | None] = (None, None)


def _sqlite_instant(value: datetime | None) -> str | None:
    """``UTCDateTime`` then SQLite's ``DATETIME`` bind processor, in one step: the same string, a third the cost."""
    global _last_instant
    if value is None:
        return None
    last = _last_instant
    if last[0] is value:
        return last[1]
    if value.tzinfo is None:
        raise ValueError("naive datetimes are not stored")
    formatted = value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
    _last_instant = (value, formatted)
    return formatted


def _bind_processor(type_: Any, dialect: Dialect) -> Callable[[Any], Any] | None:
    if dialect.name == "sqlite" and isinstance(type_, UTCDateTime):
        return _sqlite_instant
    # SQLAlchemy's cached processor for the dialect: the one Connection.execute applies.
    processor: Callable[[Any], Any] | None = type_._cached_bind_processor(dialect)
    return processor


class _DriverRowMixin:
    __slots__ = ()
    _fields: tuple[str, ...]

    @property
    def _mapping(self) -> dict[str, Any]:
        return dict(zip(self._fields, self, strict=True))  # type: ignore[call-overload]


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
            self.row = type("DriverRow", (_DriverRowMixin, namedtuple("DriverRowBase", [c[0] for c in columns])),
                            {"__slots__": ()})
            for index, column in enumerate(columns):
                processor = column[3]._cached_result_processor(dialect, None)
                if processor is not None:
                    self.result_processors.append((index, processor))

        # Every parameter the caller's (an insert's or update's values, most selects): one itemgetter, then the
        # processors of the columns that have one.
        self._all_given = not counts and all(constant is _REQUIRED for _n, _k, constant, _p in self.parameters)
        keys = [key for _name, key, _constant, _processor in self.parameters]
        self._get = itemgetter(*keys) if len(keys) > 1 else (lambda params: (params[keys[0]],)) if keys else None
        self._processors = [(index, parameter[3]) for index, parameter in enumerate(self.parameters)
                            if parameter[3] is not None]
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
        caller's values by name (an expanding parameter's a sequence of as many values as it was compiled for)."""
        if self._all_given and self.positional and self._get is not None:
            values = self._get(params)
            if not self._processors:
                return values
            converted = list(values)
            for index, convert in self._processors:
                converted[index] = convert(converted[index])
            return tuple(converted)
        if self._one_expanding is not None:  # the statement's one parameter, with no processor: the values as given
            key, count = self._one_expanding
            given_values = params[key]
            if len(given_values) != count:
                raise ValueError(f"{key} has not the number of values it was compiled for")
            return tuple(given_values)
        for key, count in self._counts.items():
            if len(params[key]) != count:
                raise ValueError(f"{key} has not the number of values it was compiled for")
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


def _plain_insert(statement: Any) -> bool:
    """An INSERT of the caller's values into one table: nothing read back, no ON CONFLICT, no values of its own."""
    return bool(statement.is_insert and not statement._returning and statement._post_values_clause is None
                and not statement._values and not statement._multi_values and statement.select is None)


class DriverStatement:
    """A Core statement run on the DBAPI cursor (see the module's docstring). Build one per statement, at import:
    it compiles on first use for each dialect (and, for inserts and updates, each set of parameter names)."""

    def __init__(self, statement: Any) -> None:
        self.statement = statement
        self._dml = bool(statement.is_dml)  # an insert or update compiles for the columns given
        self._compiled: dict[tuple[str, tuple[str, ...] | None], CompiledStatement] = {}
        self._expanded: dict[tuple[str, tuple[str, ...] | None, tuple[tuple[str, int], ...]], CompiledStatement] = {}
        self._plain_insert = _plain_insert(statement)
        self._json_rows: dict[tuple[str, ...], JsonRowsInsert | None] = {}

    def _for(self, dialect: Dialect, column_keys: tuple[str, ...] | None) -> CompiledStatement:
        key = (dialect.name, column_keys)
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
        key = (dialect.name, keys, given if len(given) == 1 else tuple(sorted(given)))
        compiled = self._expanded.get(key)
        if compiled is None:
            compiled = self._expanded[key] = CompiledStatement(self.statement, dialect, keys, expanding)
        return compiled

    def _run(self, connection: Connection, compiled: CompiledStatement | JsonRowsInsert, parameters: Any, many: bool,
             fetch: bool) -> Sequence[Any]:
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
            raw = cursor.fetchall() if fetch else []
            if connection._has_events or connection.engine._has_events:
                for listener in connection.dispatch.after_cursor_execute:
                    listener(connection, cursor, sql, parameters, None, many)
        except Exception as error:  # noqa: BLE001 - raised again by SQLAlchemy's handler, wrapped as it wraps it
            cursor.close()
            connection._handle_dbapi_exception(error, sql, parameters, cursor, None)
        cursor.close()
        return raw

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

    def run_many(self, connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """The statement once per row, the rows all with the same keys (an executemany)."""
        if not rows:
            return
        if connection.dialect.name == "postgresql" and self._plain_insert and connection.in_transaction():
            keys = tuple(rows[0])
            if keys not in self._json_rows:
                self._for(connection.dialect, keys)  # refuses a statement with column defaults computed at execution
                self._json_rows[keys] = JsonRowsInsert(self.statement, connection.dialect, keys) \
                    if JsonRowsInsert.fits(self.statement, keys) else None
            json_rows = self._json_rows[keys]
            if json_rows is not None:
                self._run(connection, json_rows, json_rows.bind(rows), False, False)
                return
        if connection.dialect.name != "sqlite" or not connection.in_transaction():
            connection.execute(self.statement, list(rows))
            return
        compiled = self._for(connection.dialect, tuple(rows[0]))
        bind = compiled.bind
        self._run(connection, compiled, [bind(row) for row in rows], True, False)
