"""Ids of the records the pipeline creates: ``new_id`` for notifications, deadlines, deliveries and dead letters,
``new_child_id`` for children.

``new_id`` makes version-7 UUIDs as text (RFC 9562): the creation time in milliseconds (48 bits, from the wall
clock, not the pipeline's clock), then 74 random bits from the operating system's CSPRNG (``os.urandom``). An id
that appears in a URL (``/api/notifications/{id}``) still can be neither guessed nor enumerated (74 random bits
per millisecond); beyond that it tells when the record was made. Why time-ordered: every primary key and index
holding these ids is a B-tree. Random keys land on a random leaf page each, so a unit of work of a few events
dirtied (and its commit wrote to the write-ahead log) a page per id per index; keys in creation order land on the
rightmost pages. Measured on the embedded runtime (SQLite), batches of 16 events: 205 KiB written to the WAL per
event with version 4, 108 KiB with version 7 (bench/results/intake.md, 2026-12-03).

``new_child_id`` makes version-4 UUIDs (122 random bits), as ``str(uuid.uuid4())`` does: a child id is made when
a person first comes to the pipeline's notice and is shown to producers (``match.child_id``) and sent back by
social care, so its time would tell a hospital when police or another trust first reported the child. Children
are few beside the other records, so their ids gain little from time order.

Both are formatted straight from the random bytes, without building a ``uuid.UUID`` (which cost more than the
random bytes themselves): the handlers make about sixteen ids per event, so the random bytes are drawn for
``DRAWN`` ids at a time (one system call instead of one per id), per thread. A forked process drops what its
parent had drawn and not used (``os.register_at_fork``), so it never repeats its parent's ids.
"""

from __future__ import annotations

import os
import threading
import time

# The variant field (RFC 9562: binary 10xx) in the high nibble of byte 8: the random nibble's two low bits kept.
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}
DRAWN = 256  # ids' worth of random bytes drawn at once (4 kB)

_drawn = threading.local()  # ``digits``: this thread's random hex strings not used yet, 32 digits each


def _forget_drawn() -> None:
    global _drawn
    _drawn = threading.local()


os.register_at_fork(after_in_child=_forget_drawn)


def _random_digits() -> str:
    """32 random hex digits (16 bytes) from this thread's drawn bytes."""
    unused: list[str] | None = getattr(_drawn, "digits", None)
    if not unused:
        text = os.urandom(16 * DRAWN).hex()
        unused = _drawn.digits = [text[start:start + 32] for start in range(0, len(text), 32)]
    return unused.pop()


def new_id() -> str:
    """A new version-7 UUID (creation time, then 74 random bits) in its canonical text form."""
    digits = _random_digits()
    stamp = f"{time.time_ns() // 1_000_000:012x}"
    return f"{stamp[:8]}-{stamp[8:]}-7{digits[:3]}-{_VARIANT[digits[3]]}{digits[4:7]}-{digits[7:19]}"


def new_child_id() -> str:
    """A new random (version 4) UUID in its canonical text form: a child's id, which must not tell when the child
    first came to notice."""
    digits = _random_digits()
    return f"{digits[:8]}-{digits[8:12]}-4{digits[13:16]}-{_VARIANT[digits[16]]}{digits[17:20]}-{digits[20:]}"
