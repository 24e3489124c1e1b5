"""The API token lookup's kept SQLite connections (``TokenLookup`` in pipeline/adapters/accounts.py): each has the
set-up every connection of the engine has (its connect listeners: foreign keys, cache size, busy timeout) and holds
no pool slot; closing the lookup (the store's disposal at shutdown) while a lookup is under way lets it finish and
answer, and a lookup after that opens a connection again."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from sqlalchemy import event

from pipeline.adapters.store import Store
from pipeline.service.users import add_user, token_hash

EMAIL = "manager@test.example"


def _store_with_a_user(tmp_path: Path) -> tuple[Store, str]:
    store = Store(f"sqlite:///{tmp_path / 'tokens.db'}")
    store.migrate()
    with store.unit_of_work() as port:
        _user, token = add_user(port, "manager", EMAIL)
    return store, token_hash(token)


def test_the_kept_connection_has_every_connections_set_up_and_holds_no_pool_slot(tmp_path: Path) -> None:
    store, hashed = _store_with_a_user(tmp_path)
    seen: list[Any] = []
    event.listen(store.engine, "connect", lambda dbapi_connection, _record: seen.append(dbapi_connection))
    store.engine.dispose()  # every connection from now on is a new one
    try:
        found = store.tokens.user(hashed)
        assert found is not None and found.email == EMAIL
        # The engine's own connect listeners ran on the lookup's connection (the one that only reads).
        lookups = [c for c in seen if c.execute("PRAGMA query_only").fetchone()[0] == 1]
        assert len(lookups) == 1
        kept = lookups[0]
        pragmas = {name: kept.execute(f"PRAGMA {name}").fetchone()[0]
                   for name in ("foreign_keys", "busy_timeout", "cache_size", "synchronous", "query_only")}
        with store.engine.connect() as connection:
            pooled = {name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
                      for name in ("foreign_keys", "busy_timeout", "cache_size", "synchronous")}
        assert pragmas == {**pooled, "query_only": 1}
        assert pooled["foreign_keys"] == 1 and pooled["cache_size"] == -32768
        assert store.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    finally:
        store.dispose()


class _HeldBind:
    """The lookup's compiled query, whose binding (done while the lookup holds its connection) waits to be let go."""

    def __init__(self, query: Any) -> None:
        self._query = query
        self.sql = query.sql
        self.rows = query.rows
        self.binding = threading.Event()
        self.go_on = threading.Event()

    def bind(self, params: Any) -> Any:
        self.binding.set()
        assert self.go_on.wait(30)
        return self._query.bind(params)


def test_closing_the_lookup_while_a_lookup_is_under_way_lets_it_answer(tmp_path: Path) -> None:
    store, hashed = _store_with_a_user(tmp_path)
    tokens = store.tokens
    try:
        assert tokens.user(hashed) is not None  # this thread's connection is open
        held = _HeldBind(tokens._query)
        tokens._query = held  # type: ignore[assignment]
        answers: list[Any] = []
        asking = threading.Thread(target=lambda: answers.append(_answer(tokens, hashed)))
        asking.start()
        assert held.binding.wait(30)  # the request is under way on its thread's connection
        closing = threading.Thread(target=tokens.close)
        closing.start()
        closing.join(0.2)
        held.go_on.set()
        asking.join(30)
        closing.join(30)
        assert not asking.is_alive() and not closing.is_alive()
        assert len(answers) == 1 and not isinstance(answers[0], Exception), answers
        assert answers[0] is not None and answers[0].email == EMAIL
        tokens._query = held._query
        again = tokens.user(hashed)  # after the close: a new connection
        assert again is not None and again.email == EMAIL
    finally:
        store.dispose()


def _answer(tokens: Any, hashed: str) -> Any:
    try:
        return tokens.user(hashed)
    except Exception as error:  # noqa: BLE001 - the test reports it
        return error
