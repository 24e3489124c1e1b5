"""The child ids this process has seen committed, by person key: a read fewer for every linked event.

A child id is issued once for a person key (``Repository.child_id``) and never changed or deleted, so an id
read from or written to a transaction that then committed holds for every later unit of work of every process.
Each ``Store`` keeps one ``IssuedChildIds``; a ``Repository`` adds the pairs its unit of work saw only after its
commit, and forgets them if any part of it rolls back (a savepoint included), so an id whose row was never
committed is never handed out. Bounded: emptied when full, which costs a read per child until it fills again.

On PostgreSQL the store's ``IssuedChildIds`` also issues new ids, apart from the unit of work
(``pipeline/adapters/child_id_issuer.py``): committed when ``issue`` returns, so kept at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipeline.adapters.child_id_issuer import ChildIdIssuer


class IssuedChildIds:
    """person key -> child id, for committed children only."""

    LIMIT = 250_000  # about 40 MB of keys and ids at most

    def __init__(self, limit: int = LIMIT, issuer: ChildIdIssuer | None = None) -> None:
        self._ids: dict[str, str] = {}
        self._limit = limit
        self.issuer = issuer

    def issue(self, child_id: str, person_key: str, now: datetime) -> str:
        """With an ``issuer``: the id of ``person_key`` (``child_id`` if new), committed apart, and kept."""
        assert self.issuer is not None
        issued = self.issuer.issue(child_id, person_key, now)
        self.add_committed({person_key: issued})
        return issued

    def issue_many(self, fresh: Mapping[str, str], now: datetime) -> dict[str, str]:
        """With an ``issuer``: ``issue`` of each person key in ``fresh`` (its new id as the value), together."""
        assert self.issuer is not None
        issued = self.issuer.issue_many(fresh, now)
        self.add_committed(issued)
        return issued

    def get(self, person_key: str) -> str | None:
        return self._ids.get(person_key)

    def add_committed(self, pairs: Mapping[str, str]) -> None:
        """Keep ``pairs`` (from a committed unit of work). Dict updates are atomic under the GIL."""
        if not pairs:
            return
        if len(self._ids) + len(pairs) > self._limit:
            self._ids = {}
        self._ids.update(pairs)

    def __len__(self) -> int:
        return len(self._ids)
