"""Ids of the records the pipeline creates (notifications, deadlines, deliveries, children, dead letters).

Each is a random version-4 UUID as text, as ``str(uuid.uuid4())`` makes it: 122 random bits from the operating
system's CSPRNG (``os.urandom``), so an id that appears in a URL (``/api/notifications/{id}``,
``/api/children/{id}``) can be neither guessed nor enumerated. It is formatted straight from the random bytes,
without building a ``uuid.UUID`` (which cost more than the random bytes themselves): the handlers make about
sixteen ids per event. Nothing is buffered, so a forked process never repeats its parent's ids.
"""

from __future__ import annotations

import os

# The variant field (RFC 4122: binary 10xx) in the high nibble of byte 8: the random nibble's two low bits kept.
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def new_id() -> str:
    """A new random (version 4) UUID in its canonical text form."""
    digits = os.urandom(16).hex()
    return f"{digits[:8]}-{digits[8:12]}-4{digits[13:16]}-{_VARIANT[digits[16]]}{digits[17:20]}-{digits[20:]}"
