"""A real PostgreSQL unique violation on a child's person key (a UPN) logged with its traceback, as a worker's
crash or a failed timer would be: the UPN that PostgreSQL echoes in the error's DETAIL never reaches the log
(pipeline/private_logs.py, installed by ``build`` and ``configure_logging``)."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy.exc import IntegrityError

from pipeline import private_logs
from pipeline.adapters import tables as t
from pipeline.adapters.store import Store

pytestmark = pytest.mark.integration

UPN = "K801200001017"


def test_a_unique_violations_detail_is_not_logged(postgres_url: str, caplog: pytest.LogCaptureFixture) -> None:
    store = Store(postgres_url)
    store.migrate()
    try:
        with store.transaction() as session:
            session.add(t.Child(child_id="c-1", person_key=f"upn:{UPN}"))
        with pytest.raises(IntegrityError) as refused, store.transaction() as session:
            session.add(t.Child(child_id="c-2", person_key=f"upn:{UPN}"))
    finally:
        store.dispose()
    assert UPN in str(refused.value)  # PostgreSQL does echo it: without the withholding it would be logged
    private_logs.install()
    with caplog.at_level(logging.INFO):
        logging.getLogger("pipeline.test").exception("batch failed", exc_info=refused.value)
        logging.getLogger("pipeline.test").warning("insert refused: %s", refused.value)
    text = caplog.text + "".join(record.getMessage() for record in caplog.records)
    assert UPN not in text
    assert "UniqueViolation" in text and "child_person_key_key" in text
