"""Keyset paging for every list the API answers: newest first, ``before`` an item's id, no offsets.

A list is ordered by a sort value that never changes once a row exists (when it was created, say) and
then by the row's unique id, both descending. The next page holds the rows strictly after the previous
page's last row in that order, so an item is read once even while new rows arrive or rows change state
between pages. The ``before`` id is looked up inside the caller's own scope: an id the caller may not see
(or that does not exist) finds no anchor, and the route answers it exactly as not found.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import and_, func, or_
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from pipeline.adapters import tables as t

Row = TypeVar("Row")

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


@dataclass(frozen=True)
class Keyset:
    """How one list is ordered: ``sort`` (never null) then ``key`` (unique), both newest first."""

    sort: Any
    key: Any
    key_attribute: str  # the row attribute holding the key, for the next page's ``before``
    parse_key: Callable[[str], Any] = str  # a ``before`` text as the key's type; ValueError: no such item


@dataclass(frozen=True)
class Page(Generic[Row]):
    rows: Sequence[Row]
    next_before: str | None  # the last row's id when more remain, else None


NOTIFICATIONS = Keyset(col(t.Notification.created_at), col(t.Notification.id), "id")
DEADLINES = Keyset(col(t.Deadline.created_at), col(t.Deadline.id), "id")
AUDIT = Keyset(col(t.AuditEntry.id), col(t.AuditEntry.id), "id", int)
# An episode may be known only from a later event (found before reported), so the first instant it has.
EPISODES = Keyset(func.coalesce(col(t.MissingEpisode.reported_at), col(t.MissingEpisode.found_at),
                                col(t.MissingEpisode.updated_at)),
                  col(t.MissingEpisode.episode_id), "episode_id")


def read_page(session: Session, query: Any, keyset: Keyset, *, limit: int, before: str | None,
              scope: Sequence[Any] = ()) -> Page[Any] | None:
    """One page of ``query`` (a ``select`` of one table, already filtered), newest first.

    ``scope`` holds the WHERE clauses that say which rows the caller may see at all: the ``before`` row
    must be among them (whatever other filter the query has, since a row may have changed state since the
    previous page). None when it is not: the caller answers as not found.
    """
    if before is not None:
        try:
            key = keyset.parse_key(before)
        except ValueError:
            return None
        anchor = session.connection().execute(
            sa_select(keyset.sort, keyset.key).where(keyset.key == key, *scope).limit(1)).first()
        if anchor is None:
            return None
        sort_value, key_value = anchor
        query = query.where(or_(keyset.sort < sort_value, and_(keyset.sort == sort_value, keyset.key < key_value)))
    rows = session.exec(query.order_by(keyset.sort.desc(), keyset.key.desc()).limit(limit + 1)).all()
    if len(rows) <= limit:
        return Page(rows, None)
    rows = rows[:limit]
    return Page(rows, str(getattr(rows[-1], keyset.key_attribute)))
