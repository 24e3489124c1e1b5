"""``mark_relayed`` is told the dialect by every caller: left out, the call fails instead of silently taking the
SQLite path (one statement per row) on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from pipeline.adapters import deliveries


def test_marking_rows_relayed_without_saying_the_dialect_is_refused() -> None:
    unsaid: Any = deliveries.mark_relayed
    with pytest.raises(TypeError, match="postgres"):
        unsaid(None, [1], datetime(2026, 1, 5, tzinfo=UTC))
