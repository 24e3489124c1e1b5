"""Keeps the values a database echoes back out of the logs.

PostgreSQL explains a refused row in the error's DETAIL (and sometimes CONTEXT) field, and libpq puts those
fields in the exception's text: a unique violation on ``child.person_key`` reads
``DETAIL:  Key (person_key)=(upn:A123...) already exists.``, which is a child's UPN or NHS number. SQLAlchemy's
``hide_parameters`` hides the statement's parameters but not this text, and psycopg has no setting to leave it
out. So every log record, from our code or a library's (faust, uvicorn, APScheduler, asyncio), has those fields
withheld from its message and its traceback when it is made: one record factory for the whole process, so a
handler added later (faust's, a test's) sees only the withheld text. The exception objects themselves keep the
detail (``error.orig.diag``) for code that must tell one constraint from another.
"""

from __future__ import annotations

import logging
import re
from typing import Any

# A field to the end of its line: a real newline in a traceback, or the two characters \n inside a repr().
_ECHOED_FIELDS = re.compile(r"(DETAIL|CONTEXT):[^\n]*?(?=\\n|\n|$)")
WITHHELD = "(withheld: it can hold a row's values)"

_installed = False


def withhold_echoed_values(text: str) -> str:
    """``text`` with each DETAIL and CONTEXT field of a database error replaced by a placeholder."""
    if "DETAIL:" not in text and "CONTEXT:" not in text:
        return text
    return _ECHOED_FIELDS.sub(lambda match: f"{match.group(1)}: {WITHHELD}", text)


def withhold_from_record(record: logging.LogRecord) -> None:
    """Withhold echoed values from a record's message, traceback and stack text, in place."""
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a malformed call: logging reports it when the record is emitted
        return
    withheld = withhold_echoed_values(message)
    if withheld != message:
        record.msg, record.args = withheld, None
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = withhold_echoed_values(record.exc_text)
    if record.stack_info:
        record.stack_info = withhold_echoed_values(record.stack_info)


def install() -> None:
    """Make every log record of this process through ``withhold_from_record`` (once; later calls do nothing)."""
    global _installed
    if _installed:
        return
    make_record = logging.getLogRecordFactory()

    def private_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        withhold_from_record(record)
        return record

    logging.setLogRecordFactory(private_record)
    _installed = True
