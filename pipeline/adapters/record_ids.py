"""Ids of the records the pipeline creates (notifications, deadlines, deliveries, children, dead letters).

Each is a version-7 UUID as text (RFC 9562): the creation time in milliseconds (48 bits), then 74 random bits
from the operating system's CSPRNG (``os.urandom``). So an id that appears in a URL (``/api/notifications/{id}``,
``/api/children/{id}``) still can be neither guessed nor enumerated (74 random bits per millisecond), and
what it tells beyond that is when the record was made, which its own ``created_at`` tells anyone shown it.

Why time-ordered and not version 4: every table's primary key, and every index holding these ids, is a B-tree.
Random keys land on a random leaf page each, so a unit of work of a few events dirtied (and its commit wrote to
the write-ahead log) a page per id per index; keys in creation order land on the rightmost pages. Measured on the
embedded runtime (SQLite), batches of 16 events: 205 KiB written to the WAL per event with version 4, 108 KiB
with version 7, and processing CPU per event down by a quarter (bench/results/intake.md, 2026-12-03).

Formatted straight from the random bytes, without building a ``uuid.UUID`` (which cost more than the random
bytes themselves): the handlers make about sixteen ids per event, so the random bytes are drawn for ``DRAWN``
ids at a time (one system call instead of one per id), per thread. A forked process drops what its parent had
drawn and not used (``os.register_at_fork``), so it never repeats its parent's ids.
"""

from __future__ import annotations

import os
import threading
import time

# The variant field (RFC 9562: binary 10xx) in the high nibble of byte 8: the random nibble's two low bits kept.
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}
DRAWN = 256  # ids' worth of random bytes drawn at once (2.5 kB)
_RANDOM_DIGITS = 20  # 10 bytes an id, of which 74 bits are used: 3 digits, 2 bits of the variant's, 15 digits

_drawn = threading.local()  # ``digits``: this thread's random hex strings not used yet, 20 digits each


def _forget_drawn() -> None:
    global _drawn
    _drawn = threading.local()


os.register_at_fork(after_in_child=_forget_drawn)


def new_id() -> str:
    """A new version-7 UUID (creation time, then random bits) in its canonical text form."""
    unused: list[str] | None = getattr(_drawn, "digits", None)
    if not unused:
        text = os.urandom(_RANDOM_DIGITS // 2 * DRAWN).hex()
        unused = _drawn.digits = [text[start:start + _RANDOM_DIGITS] for start in range(0, len(text), _RANDOM_DIGITS)]
    digits = unused.pop()
    stamp = f"{time.time_ns() // 1_000_000:012x}"
    return f"{stamp[:8]}-{stamp[8:]}-7{digits[:3]}-{_VARIANT[digits[3]]}{digits[4:7]}-{digits[7:19]}"
