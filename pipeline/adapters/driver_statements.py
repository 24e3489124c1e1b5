"""The hot statements of the handlers, compiled once per dialect and run on the database driver's cursor.

``Connection.execute`` of a Core statement costs about 35 µs of SQLAlchemy per statement on this machine (cache
key, execution context, parameter and result set-up) against about 4 µs that sqlite3 itself spends on a primary
key read; an event runs two to six such statements. A ``DriverStatement`` wraps one Core statement (a select,
an insert with or without RETURNING, an update; no expanding ``IN`` parameters, no Python-side column defaults)
and does that work once per dialect and set of parameter names: it keeps the SQL string SQLAlchemy compiles for the
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
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

from sqlalchemy.engine import Connection, Dialect

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


class _Compiled:
    """One statement compiled for one dialect and one set of parameter names."""

    def __init__(self, statement: Any, dialect: Dialect, column_keys: Sequence[str] | None) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=list(column_keys) if column_keys else None)
        if compiled.insert_prefetch or compiled.update_prefetch or getattr(compiled, "postfetch", None):
            raise ValueError("a DriverStatement takes no statement with column defaults computed at execution")
        binds = compiled.binds
        if any(bind.expanding for bind in binds.values()):
            raise ValueError("a DriverStatement takes no expanding parameter")
        self.sql: str = compiled.string
        self.positional: bool = compiled.positional
        names = list(compiled.positiontup) if compiled.positional else list(binds)
        # (parameter name in the compiled SQL, the caller's key, the statement's own value or _REQUIRED, processor);
        # as in SQLCompiler.construct_params, a value the caller gives wins over the statement's own.
        self.parameters: list[tuple[str, str, Any, Callable[[Any], Any] | None]] = []
        for name in names:
            bind = binds[name]
            constant = _REQUIRED if bind.required else bind.effective_value
            self.parameters.append((compiled.escaped_bind_names.get(name, name), bind.key, constant,
                                    _bind_processor(bind.type, dialect)))
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
        self._all_given = all(constant is _REQUIRED for _name, _key, constant, _processor in self.parameters)
        keys = [key for _name, key, _constant, _processor in self.parameters]
        self._get = itemgetter(*keys) if len(keys) > 1 else (lambda params: (params[keys[0]],)) if keys else None
        self._processors = [(index, parameter[3]) for index, parameter in enumerate(self.parameters)
                            if parameter[3] is not None]

    def bind(self, params: Mapping[str, Any]) -> Any:
        if self._all_given and self.positional and self._get is not None:
            values = self._get(params)
            if not self._processors:
                return values
            converted = list(values)
            for index, convert in self._processors:
                converted[index] = convert(converted[index])
            return tuple(converted)
        values = []
        for _name, key, constant, processor in self.parameters:
            value = params[key] if constant is _REQUIRED or key in params else constant
            values.append(value if processor is None else processor(value))
        if self.positional:
            return tuple(values)
        return {name: value for (name, *_), value in zip(self.parameters, values, strict=True)}

    def rows(self, raw: Sequence[Any]) -> list[Any]:
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


class DriverStatement:
    """A Core statement run on the DBAPI cursor (see the module's docstring). Build one per statement, at import:
    it compiles on first use for each dialect (and, for inserts and updates, each set of parameter names)."""

    def __init__(self, statement: Any) -> None:
        self.statement = statement
        self._dml = bool(statement.is_dml)  # an insert or update compiles for the columns given
        self._compiled: dict[tuple[str, tuple[str, ...] | None], _Compiled] = {}

    def _for(self, dialect: Dialect, column_keys: tuple[str, ...] | None) -> _Compiled:
        key = (dialect.name, column_keys)
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._compiled[key] = _Compiled(self.statement, dialect, column_keys)
        return compiled

    def _run(self, connection: Connection, compiled: _Compiled, parameters: Any, many: bool,
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
        if connection.dialect.name != "sqlite" or not connection.in_transaction():
            connection.execute(self.statement, list(rows))
            return
        compiled = self._for(connection.dialect, tuple(rows[0]))
        bind = compiled.bind
        self._run(connection, compiled, [bind(row) for row in rows], True, False)
