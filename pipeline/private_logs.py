"""Keeps the values a database echoes back out of the logs.

PostgreSQL explains a refused row in the error's DETAIL (and sometimes CONTEXT) field, and libpq puts those
fields in the exception's text: a unique violation on ``child.person_key`` reads
``DETAIL:  Key (person_key)=(upn:A123...) already exists.``, which is a child's UPN or NHS number. SQLAlchemy's
``hide_parameters`` hides the statement's parameters but not this text, and psycopg has no setting to leave it
out. So every log record, from our code or a library's (faust, uvicorn, APScheduler, asyncio), has those fields
withheld from its message and its traceback when it is made: one record factory for the whole process, so a
handler added later (faust's, a test's) sees only the withheld text. An exception nothing caught, in any thread,
is logged through the same records instead of printed by Python's hooks. The exception objects themselves keep the
detail (``error.orig.diag``) for code that must tell one constraint from another.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from types import TracebackType
from typing import Any

# A field runs to the end of the driver's message, not of its line: a row's values may hold newlines. The message
# ends where SQLAlchemy appends the statement or its link, where a chained traceback goes on, or at the end; each
# either as real newlines (a traceback) or as the two characters \n (inside a repr()). Where none of these comes,
# the rest of the text is withheld.
_NL = r"(?:\n|\\n)"
_MESSAGE_ENDS = (rf"(?={_NL}\[SQL: |{_NL}\(Background on this error|{_NL}{_NL}The above exception|"
                 rf"{_NL}{_NL}During handling|{_NL}Traceback \(most recent call|\Z)")
_ECHOED_FIELDS = re.compile(rf"(DETAIL|CONTEXT):.*?{_MESSAGE_ENDS}", re.DOTALL)
# Errors of class 22 (data exception) quote the refused input in the primary message itself.
_ECHOED_INPUT = re.compile(r'((?:invalid input syntax for type|invalid input value for enum|out of range'
                           r'|malformed [\w ]+ literal)[^:\n]*): "(?:[^"\\]|\\.)*"')
WITHHELD = "(withheld: it can hold a row's values)"

_installed = False


def withhold_echoed_values(text: str) -> str:
    """``text`` with each DETAIL and CONTEXT field of a database error, and the input a data exception quotes,
    replaced by a placeholder."""
    if "DETAIL:" in text or "CONTEXT:" in text:
        text = _ECHOED_FIELDS.sub(lambda match: f"{match.group(1)}: {WITHHELD}", text)
    if '"' in text:
        text = _ECHOED_INPUT.sub(lambda match: f"{match.group(1)}: {WITHHELD}", text)
    return text


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
    # An exception nothing caught (in the main thread or another) is logged, not printed by Python's own hooks:
    # so its text goes through the factory above too.
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread
    _installed = True


def _log_uncaught(kind: type[BaseException], error: BaseException, trace: TracebackType | None) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, error, trace)
        return
    logging.getLogger("pipeline.uncaught").critical("uncaught %s", kind.__name__, exc_info=(kind, error, trace))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else "?"
    logging.getLogger("pipeline.uncaught").critical(
        "uncaught %s in thread %s", args.exc_type.__name__, name,
        exc_info=(args.exc_type, args.exc_value or args.exc_type(), args.exc_traceback))
