"""JSON text exactly as ``json.dumps`` writes it (its separators, ASCII escapes, floats), for the records the
pipeline stores on every event: a notification's content, a match decision, a deadline's ladder, an event's body.

``json.dumps`` (like ``JSONEncoder.encode``) makes a new C encoder on every call, through two Python frames; for
the small dicts stored per event that set-up is most of the cost (3.9 µs against 1.4 µs for a notification's
content here). ``text_encoder`` makes the C encoder once and returns the function that runs it. Its encoders do
not check for reference cycles (the records are made just now and never refer to themselves: a cycle would be
a ``RecursionError`` rather than ``ValueError``), because a cycle check shared across calls would keep the marks
of a call that failed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from json.encoder import encode_basestring_ascii
from typing import Any

_c_make_encoder: Any
try:
    from _json import make_encoder as _c_make_encoder
except ImportError:  # an interpreter without CPython's accelerator
    _c_make_encoder = None


def text_encoder(default: Callable[[Any], Any] | None = None) -> Callable[[Any], str]:
    """A function giving ``json.dumps(value, default=default)``'s text (a value JSON has no type for is passed to
    ``default``, else refused with ``TypeError`` as ``json.dumps`` refuses it)."""
    refuse = default if default is not None else json.JSONEncoder().default
    if _c_make_encoder is None:
        return json.JSONEncoder(default=refuse, check_circular=False).encode
    chunks_of = _c_make_encoder(None, refuse, encode_basestring_ascii, None, ": ", ", ", False, False, True)

    def encode(value: Any) -> str:
        return "".join(chunks_of(value, 0))

    return encode


json_text = text_encoder()  # ``json.dumps(value)``
