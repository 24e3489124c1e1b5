"""Ids of the records the pipeline creates (notifications, deadlines, deliveries, children, dead letters).

Each is a random version-4 UUID as text, as ``str(uuid.uuid4())`` makes it: 122 random bits from the operating
system's CSPRNG (``os.urandom``), so an id that appears in a URL (``/api/notifications/{id}``,
``/api/children/{id}``) can be neither guessed nor enumerated. It is formatted straight from the random bytes,
without building a ``uuid.UUID`` (which cost more than the random bytes themselves): the handlers make about
sixteen ids per event, so the random bytes are drawn for ``DRAWN`` ids at a time (one system call instead of one
per id), per thread. A forked process drops what its parent had drawn and not used (``os.register_at_fork``), so
it never repeats its parent's ids.
"""

from __future__ import annotations

import os
import threading

# The variant field (RFC 4122: binary 10xx) in the high nibble of byte 8: the random nibble's two low bits kept.
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}
DRAWN = 256  # ids' worth of random bytes drawn at once (4 kB)

_drawn = threading.local()  # ``digits``: this thread's random hex strings not used yet, 32 digits each


def _forget_drawn() -> None:
    global _drawn
    _drawn = threading.local()


os.register_at_fork(after_in_child=_forget_drawn)


def new_id() -> str:
    """A new random (version 4) UUID in its canonical text form."""
    unused: list[str] | None = getattr(_drawn, "digits", None)
    if not unused:
        text = os.urandom(16 * DRAWN).hex()
        unused = _drawn.digits = [text[start:start + 32] for start in range(0, len(text), 32)]
    digits = unused.pop()
    return f"{digits[:8]}-{digits[8:12]}-4{digits[13:16]}-{_VARIANT[digits[16]]}{digits[17:20]}-{digits[20:]}"
