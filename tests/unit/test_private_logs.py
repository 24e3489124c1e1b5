"""The database's echo of a row's values never reaches a log record (pipeline/private_logs.py)."""

from __future__ import annotations

import logging

import pytest

from pipeline import private_logs

pytestmark = pytest.mark.unit

UPN = "A123456789012"
POSTGRES_TEXT = (f'duplicate key value violates unique constraint "child_person_key_key"\n'
                 f"DETAIL:  Key (person_key)=(upn:{UPN}) already exists.\n"
                 f"CONTEXT:  COPY child, line 1: \"upn:{UPN}\"")


class UniqueViolation(Exception):
    pass


def records_logged(emit: object) -> list[str]:
    lines: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(logging.Formatter("%(message)s").format(record))

    logger = logging.getLogger("tests.private_logs")
    handler = Capture(logging.DEBUG)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        assert callable(emit)
        emit(logger)
    finally:
        logger.removeHandler(handler)
    return lines


def test_detail_and_context_fields_are_withheld_and_the_primary_message_kept() -> None:
    text = private_logs.withhold_echoed_values(POSTGRES_TEXT)
    assert UPN not in text
    assert text.startswith('duplicate key value violates unique constraint "child_person_key_key"\n')
    assert f"DETAIL: {private_logs.WITHHELD}" in text and f"CONTEXT: {private_logs.WITHHELD}" in text


def test_a_repr_on_one_line_is_withheld_up_to_its_escaped_newline() -> None:
    text = private_logs.withhold_echoed_values(repr(UniqueViolation(POSTGRES_TEXT)))
    assert UPN not in text
    assert "\\n" in text and "child_person_key_key" in text


def test_text_without_database_fields_is_left_alone() -> None:
    assert private_logs.withhold_echoed_values("event seq 4 failed (IntegrityError)") == \
        "event seq 4 failed (IntegrityError)"


def test_every_record_made_after_install_has_the_values_withheld_from_message_and_traceback() -> None:
    def log_both(logger: logging.Logger) -> None:
        error = UniqueViolation(POSTGRES_TEXT)
        logger.warning("insert refused: %s", error)
        try:
            raise error
        except UniqueViolation:
            logger.exception("batch failed")

    raw = logging.LogRecord("tests", logging.WARNING, __file__, 1, "insert refused: %s",
                            (UniqueViolation(POSTGRES_TEXT),), None)
    assert UPN in logging.Formatter().format(raw)  # without the factory the UPN is logged: the check can fail
    private_logs.install()
    private_logs.install()  # idempotent: one wrapper, not two
    after = records_logged(log_both)
    assert len(after) == 2
    assert not [line for line in after if UPN in line]
    assert "insert refused: duplicate key value" in after[0]
    assert "Traceback" in after[1] and "UniqueViolation" in after[1]
