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
    assert text.endswith(f"DETAIL: {private_logs.WITHHELD}")  # the CONTEXT after it withheld with it
    assert private_logs.withhold_echoed_values('refused\nCONTEXT:  COPY child, line 1: "x"') == \
        f"refused\nCONTEXT: {private_logs.WITHHELD}"


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


SQLALCHEMY_TEXT = ('(psycopg.errors.UniqueViolation) duplicate key value violates unique constraint "ix_address"\n'
                   "DETAIL:  Key (address)=(1 High St\nLondon SW1A 1AA) already exists.\n"
                   "[SQL: INSERT INTO pupil (address) VALUES (%(address)s::VARCHAR)]\n"
                   "(Background on this error at: https://sqlalche.me/e/20/gkpj)")


def test_a_detail_over_several_lines_is_withheld_to_the_end_of_the_drivers_message() -> None:
    text = private_logs.withhold_echoed_values(SQLALCHEMY_TEXT)
    assert "SW1A" not in text and "High St" not in text
    assert "[SQL: INSERT INTO pupil" in text and "(Background on this error" in text
    escaped = private_logs.withhold_echoed_values(repr(UniqueViolation(SQLALCHEMY_TEXT)))
    assert "SW1A" not in escaped and "[SQL: INSERT INTO pupil" in escaped


def test_a_failing_row_in_a_chained_traceback_is_withheld_and_the_traceback_goes_on() -> None:
    chained = ('psycopg.errors.NotNullViolation: null value in column "school_urn" violates not-null constraint\n'
               'DETAIL:  Failing row contains (p-1, Amelia, 12 Road\nSW1A 1AA, null).\n\n'
               "The above exception was the direct cause of the following exception:\n\nTraceback (most recent")
    text = private_logs.withhold_echoed_values(chained)
    assert "Amelia" not in text and "SW1A" not in text
    assert "The above exception was the direct cause" in text


def test_the_input_a_data_exception_quotes_is_withheld() -> None:
    text = private_logs.withhold_echoed_values('invalid input syntax for type date: "2012-31-02 Amelia"')
    assert "Amelia" not in text and text.startswith("invalid input syntax for type date: ")
    enum = private_logs.withhold_echoed_values('invalid input value for enum risk: "Oliver \\"O\\" Smith"')
    assert "Oliver" not in enum and "Smith" not in enum


def test_an_exception_nothing_caught_in_a_thread_is_logged_withheld() -> None:
    import threading

    private_logs.install()

    def fail() -> None:
        raise UniqueViolation(POSTGRES_TEXT)

    def run_thread(logger: logging.Logger) -> None:
        logging.getLogger("pipeline.uncaught").addHandler(logger.handlers[0])
        try:
            hook = threading.excepthook
            threading.excepthook = private_logs._log_uncaught_in_thread  # pytest swaps its own in per test
            try:
                thread = threading.Thread(target=fail, name="consumer")
                thread.start()
                thread.join()
            finally:
                threading.excepthook = hook
        finally:
            logging.getLogger("pipeline.uncaught").removeHandler(logger.handlers[0])

    lines = records_logged(run_thread)
    assert len(lines) == 1 and "uncaught UniqueViolation in thread consumer" in lines[0]
    assert "Traceback" in lines[0] and UPN not in lines[0]
