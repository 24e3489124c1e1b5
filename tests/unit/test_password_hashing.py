"""The Argon2 cost of web password hashes: from the settings, RFC 9106's low-memory profile by default, and a
hash made at one cost still verifies after the cost changes (tests run at the lowest cost)."""

from __future__ import annotations

from argon2 import PasswordHasher

from pipeline.service import users
from pipeline.settings import Settings


def test_the_default_cost_is_rfc_9106_low_memory_and_a_lowered_cost_still_verifies() -> None:
    defaults = Settings()
    assert (defaults.argon2_time_cost, defaults.argon2_memory_kib) == (3, 65536)
    try:
        users.use_password_hashing(1, 64)
        cheap = users._hasher.hash("correct horse battery")
        assert "m=64,t=1," in cheap
        users.use_password_hashing(defaults.argon2_time_cost, defaults.argon2_memory_kib)
        assert users._hasher.verify(cheap, "correct horse battery")
        assert "m=65536,t=3," in users._hasher.hash("correct horse battery")
    finally:
        users._hasher = PasswordHasher()
