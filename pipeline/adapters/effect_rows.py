"""Notifications and deadlines a unit of work creates, as plain records written with Core statements.

The SQL adapter (pipeline/adapters/repository.py) hands these out from ``add_notification`` and ``add_deadline``
instead of ORM objects: building a SQLModel row and flushing it through the ORM's unit of work cost more than
the insert itself, on every event. A record satisfies the port's record Protocols (pipeline/ports/records.py),
and its contract holds: attributes a service assigns after creation (a notification's ``deadline_id``, a
deadline's state) are stored when the unit of work commits, and undone with a savepoint that rolls back.

Deadlines the adapter reads are handed out the same way (``CreatedRows.loaded``), so within a unit of work one
deadline is one record, whether it was created or read, and no ORM object is loaded for it.

Missing episodes are handed out the same way (``EpisodeRow``, kept by the episode id): the missing pathway reads
and changes one per event, and an ORM object cost a flush before every read in the unit of work.

``CreatedRows`` keeps one table's records: new ones wait in a buffer and go in one multi-row insert at the next
write point (a commit, a savepoint, or a read of the same table); a record inserted at once (a guarded insert)
is kept with a snapshot of what was stored, and later changes are written as UPDATEs of the changed columns
(one executemany per set of changed columns; on PostgreSQL one statement for all the records of a set, over
``json_populate_recordset``: ``JsonRowsUpdate`` of pipeline/adapters/driver_statements.py). Each UPDATE must change
one row per record: a record whose row another writer deleted or re-keyed meanwhile would otherwise not be written,
silently; a count that differs raises the ORM's ``StaleDataError`` (as the ORM's own flush does), which fails the
unit of work, so none of it commits. Both dialects report an executemany's count reliably (sqlite3 and psycopg sum
it; SQLAlchemy's ``supports_sane_multi_rowcount``), and PostgreSQL a one-statement UPDATE's; a driver that did not
would go unchecked (``RowsChanged.count()`` is None).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from dataclasses import MISSING, fields
from typing import Any, Self

from sqlalchemy import Connection, Table, bindparam
from sqlalchemy.orm.exc import StaleDataError

from pipeline.adapters import tables as t
from pipeline.adapters.driver_statements import DriverStatement, RowsChanged
from pipeline.adapters.store_records import Deadline, Episode, Notification

NOTIFICATION: Table = t.Notification.__table__  # type: ignore[attr-defined]
DEADLINE: Table = t.Deadline.__table__  # type: ignore[attr-defined]
EPISODE: Table = t.MissingEpisode.__table__  # type: ignore[attr-defined]


class _Watched:
    """A record that, once stored, tells its ``CreatedRows`` when an attribute is assigned (so a write point
    looks only at the records that changed). Mixed in before a record class of pipeline/adapters/store_records.py,
    whose fields it leaves as they are."""

    # The attributes a ``CreatedRows`` may index this record class by (``indexed_by``): an assignment to any other
    # costs no look-up of the index.
    _indexable: frozenset[str] = frozenset()

    def __setattr__(self, name: str, value: Any) -> None:
        attributes = self.__dict__  # the records have no descriptors: their fields live in __dict__
        attributes[name] = value
        watcher = attributes.get("_watcher")  # a weak reference to the CreatedRows: no cycle with it
        if watcher is not None and (rows := watcher()) is not None:
            rows.changed.add(self)
        if name in self._indexable and name in attributes.get("_indexed_by", ()) and \
                (holder := attributes["_index_holder"]()) is not None:
            holder.indexed(self, name)

    @classmethod
    def new(cls, **values: Any) -> Self:
        """A record of ``values`` (a field not given at its default), made without the dataclass's ``__init__``,
        which assigns each field through ``__setattr__``: one call per column of every notification, deadline
        and episode a handler creates or reads. Like ``__init__``, it refuses a missing or unknown field."""
        names, names_set, defaults = _layout(cls)
        record = object.__new__(cls)
        attributes = record.__dict__
        attributes.update(defaults)
        attributes.update(values)
        if attributes.keys() != names_set:
            missing = sorted(set(names) - set(attributes))
            unknown = sorted(set(attributes) - set(names))
            raise TypeError(f"{cls.__name__}: missing fields {missing}, unknown fields {unknown}")
        return record


class NotificationRow(_Watched, Notification):
    """A notification this unit of work created or read, watched for changes."""


class DeadlineRow(_Watched, Deadline):
    """A deadline this unit of work created or read, watched for changes."""

    _indexable = frozenset({"subject_id", "child_id"})


class EpisodeRow(_Watched, Episode):
    """A missing episode this unit of work read or created, watched for changes."""

    _indexable = frozenset({"child_id"})


_INDEXABLE: set[tuple[type, tuple[str, ...]]] = set()  # (record class, indexed_by) found indexable


def _check_indexable(record_class: type, indexed_by: tuple[str, ...]) -> None:
    """An index on an attribute whose assignments the record class does not report would go stale: refused."""
    missing = set(indexed_by).difference(getattr(record_class, "_indexable", ()))
    if missing:
        raise TypeError(f"{record_class.__name__} does not report assignments to {sorted(missing)}: add them to "
                        "its _indexable")
    _INDEXABLE.add((record_class, indexed_by))


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}
_LAYOUTS: dict[type, tuple[tuple[str, ...], frozenset[str], dict[str, Any]]] = {}


def _layout(record_class: type) -> tuple[tuple[str, ...], frozenset[str], dict[str, Any]]:
    """A record class's field names (in order and as a set) and the defaults of those that have one (plain
    values: no factories)."""
    layout = _LAYOUTS.get(record_class)
    if layout is None:
        defaults = {}
        for field in fields(record_class):
            if field.default_factory is not MISSING:
                raise TypeError(f"{record_class.__name__}.{field.name}: a default factory is not supported")
            if field.default is not MISSING:
                defaults[field.name] = field.default
        names = tuple(field.name for field in fields(record_class))
        layout = _LAYOUTS[record_class] = (names, frozenset(names), defaults)
    return layout


def values_of(record: Any) -> dict[str, Any]:
    names = _FIELD_NAMES.get(type(record))
    if names is None:
        names = _FIELD_NAMES[type(record)] = tuple(field.name for field in fields(record))
    attributes = record.__dict__
    return {name: attributes[name] for name in names}


_STATEMENTS: dict[tuple[str, str], tuple[DriverStatement, DriverStatement]] = {}


def _statements(table: Table, key: str) -> tuple[DriverStatement, DriverStatement]:
    """A table's insert and its update by ``key``, made once per process: every unit of work has a ``CreatedRows``
    of each table, and a ``DriverStatement`` compiles on first use (for each set of columns), so statements made
    per unit of work were compiled again in every batch."""
    statements = _STATEMENTS.get((table.name, key))
    if statements is None:
        statements = _STATEMENTS[table.name, key] = (
            DriverStatement(table.insert().inline()),  # nothing read back: it may be pipelined
            # The SET clause follows each executemany's parameter names (the changed columns).
            DriverStatement(table.update().where(table.c[key] == bindparam("record_key")), by_key=(key, "record_key")))
    return statements


class CreatedRows:
    """One table's records created in this unit of work: buffered inserts, and changes to write back."""

    def __init__(self, table: Table, key: str = "id", numbered_by_database: tuple[str, ...] = (),
                 indexed_by: tuple[str, ...] = ()) -> None:
        self.table = table
        self.key = key  # the records' primary key attribute
        # ``with_value``'s attributes: the records' keys by each one's value, kept as records come and the
        # attribute is assigned; an entry left behind by a later assignment is filtered out when read.
        self._indexed_by = indexed_by
        self._index: dict[str, dict[Any, dict[str, None]]] = {name: {} for name in indexed_by}
        self._numbered_by_database = numbered_by_database  # left out of inserts (an event's ``seq``)
        self._insert, self._update = _statements(table, key)
        self.by_id: dict[str, Any] = {}
        self._order: list[str] = []  # creation order: a savepoint drops what was created after its mark
        self._buffered: list[Any] = []
        self._stored: dict[str, dict[str, Any]] = {}  # id -> the values as stored now
        self.changed: set[Any] = set()  # stored records assigned to since the last write
        self.as_watcher = weakref.ref(self)  # what a stored record keeps of this (``_Watched``)
        self._marks: dict[object, tuple[int, dict[str, dict[str, Any]]]] = {}  # by savepoint
        # The savepoint that ended last and its mark (see ``release``); the savepoint weakly, as it refers to its
        # session, which refers to the repository that holds this: no reference cycle.
        self._ended: tuple[weakref.ref[object], tuple[int, dict[str, dict[str, Any]]]] | None = None
        self._unverified: list[tuple[RowsChanged, int]] = []  # UPDATEs not yet counted, and the rows each wrote

    def __bool__(self) -> bool:
        return bool(self._order)

    def _key(self, record: Any) -> str:
        return str(getattr(record, self.key))

    def buffer(self, record: Any) -> None:
        """A new record, inserted at the next write point (with whatever it holds by then)."""
        key = self._key(record)
        self.by_id[key] = record
        self._order.append(key)
        self._buffered.append(record)
        self._watch_index(record)

    def stored(self, record: Any) -> None:
        """A new record the caller has just inserted (or read), as it is now."""
        key = self._key(record)
        self.by_id[key] = record
        self._order.append(key)
        self._stored[key] = values_of(record)
        object.__setattr__(record, "_watcher", self.as_watcher)
        self._watch_index(record)

    def _watch_index(self, record: Any) -> None:
        if self._indexed_by:
            if (type(record), self._indexed_by) not in _INDEXABLE:
                _check_indexable(type(record), self._indexed_by)
            object.__setattr__(record, "_indexed_by", self._indexed_by)
            object.__setattr__(record, "_index_holder", self.as_watcher)
            self._reindex(record)

    def _reindex(self, record: Any) -> None:
        for name in self._indexed_by:
            self.indexed(record, name)

    def indexed(self, record: Any, name: str) -> None:
        """``record``'s indexed attribute ``name`` has (or may have) a new value."""
        self._index[name].setdefault(getattr(record, name), {})[self._key(record)] = None

    def with_value(self, name: str, value: Any) -> list[Any]:
        """The records whose indexed attribute ``name`` (one of ``indexed_by``) holds ``value`` now, in key order:
        without looking at every record (the missing pathway asks for a child's episodes on every event of a
        batch)."""
        keys = self._index[name].get(value)
        if not keys:
            return []
        found = []
        for key in sorted(keys):
            record = self.by_id.get(key)
            if record is not None and getattr(record, name) == value:
                found.append(record)
        return found

    def refreshed(self, record: Any, row: Any) -> None:
        """A kept record read again (e.g. now locked): columns it has not changed take the stored values."""
        key = self._key(record)
        before = self._stored.get(key)
        if before is None:
            return
        for name, value in row._mapping.items():
            if name in before and getattr(record, name) == before[name]:
                object.__setattr__(record, name, value)
                before[name] = value
        self._reindex(record)

    def pending(self) -> Iterator[Any]:
        """The records the next write will insert or update."""
        yield from self._buffered
        yield from self.changed

    def write(self, connection: Connection) -> None:
        """Insert the buffered records in one statement, then write back each stored record's changes."""
        if self._buffered:
            records, self._buffered = self._buffered, []
            rows = [values_of(record) for record in records]
            omitted = self._numbered_by_database
            self._insert.run_many(connection, rows if not omitted else [
                {name: value for name, value in row.items() if name not in omitted} for row in rows])
            for record, row in zip(records, rows, strict=True):
                self._stored[self._key(record)] = row
                object.__setattr__(record, "_watcher", self.as_watcher)
                self.changed.discard(record)
        if not self.changed:
            return
        changed, self.changed = self.changed, set()
        updates: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for record in changed:
            key = self._key(record)
            before = self._stored.get(key)
            if before is None:
                continue  # dropped by a savepoint's rollback
            now = values_of(record)
            columns = {name: value for name, value in now.items() if value != before[name]}
            if columns:
                updates.setdefault(tuple(sorted(columns)), []).append({"record_key": key, **columns})
                self._stored[key] = now
        for rows in updates.values():
            self._unverified.append((self._update.run_many(connection, rows), len(rows)))
        self.verify(synced=False)

    def verify(self, *, synced: bool = True) -> None:
        """Raise ``StaleDataError`` if an UPDATE written changed another number of rows than it had records: a
        record's row was deleted or re-keyed by another writer. ``synced=False``: only the UPDATEs counted already
        (one in a psycopg pipeline is counted when the pipeline has synced: the caller verifies then)."""
        unverified, self._unverified = self._unverified, []
        for index, (changed, expected) in enumerate(unverified):
            if changed.pending and not synced:
                self._unverified.append((changed, expected))
                continue
            count = changed.count()
            if count is not None and count != expected:
                for rest, _expected in unverified[index + 1:]:
                    rest.discard()
                # The ORM's message: the table and the counts, no value.
                raise StaleDataError(f"UPDATE statement on table '{self.table.name}' expected to update {expected} "
                                     f"row(s); {count} were matched.")

    def mark(self, savepoint: object) -> None:
        """A savepoint begins (after a write: nothing buffered): remember what was there and as what."""
        self._marks[savepoint] = (len(self._order), {key: dict(values) for key, values in self._stored.items()})

    def release(self, savepoint: object) -> None:
        """The savepoint ended: committed (its changes belong to the enclosing transaction), or rolled back, which
        SQLAlchemy tells (``after_soft_rollback``) only after it ended: its mark is kept for ``roll_back_to``."""
        mark = self._marks.pop(savepoint, None)
        self._ended = None if mark is None else (weakref.ref(savepoint), mark)

    def roll_back_to(self, savepoint: object) -> None:
        """The savepoint rolled back: records created since are gone, the others hold what they held at it."""
        mark = self._marks.pop(savepoint, None)
        if mark is None and self._ended is not None and self._ended[0]() is savepoint:
            mark = self._ended[1]
        self._ended = None
        if mark is None:
            self.clear()
            return
        self._discard_unverified()
        count, stored = mark
        for record_id in self._order[count:]:
            self.by_id.pop(record_id, None)
        del self._order[count:]
        self._buffered = [record for record in self._buffered if self._key(record) in self.by_id]
        self._stored = stored
        for record_id, values in stored.items():
            record = self.by_id[record_id]
            for name, value in values.items():
                object.__setattr__(record, name, value)
            self._reindex(record)
        self.changed = {record for record in self.changed if self._key(record) in self.by_id}

    def _discard_unverified(self) -> None:
        unverified, self._unverified = self._unverified, []
        for changed, _expected in unverified:
            changed.discard()

    def clear(self) -> None:
        self._discard_unverified()
        self.by_id.clear()
        self._order.clear()
        self._buffered.clear()
        self._stored.clear()
        self._marks.clear()
        self._ended = None
        self.changed.clear()
        for index in self._index.values():
            index.clear()

    def loaded(self, rows: Any, record_class: type[_Watched]) -> list[Any]:
        """Rows read with Core: each as this unit of work's record of it, made (``record_class.new(**columns)``)
        and kept, like a created one, on first sight; so one row is one record, and its changes are written back."""
        records = []
        for row in rows:
            mapping = row._mapping
            record = self.by_id.get(mapping[self.key])
            if record is None:
                record = record_class.new(**mapping)
                self.stored(record)
            records.append(record)
        return records

    def known(self, rows: Any) -> list[Any]:
        """Rows read from the table, each replaced by this unit of work's record of it where there is one."""
        return [self.by_id.get(getattr(row, self.key), row) for row in rows]
