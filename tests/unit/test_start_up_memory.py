"""After start-up both runtimes freeze what is alive and collect the youngest generation less often."""

from __future__ import annotations

import gc

import pytest

from pipeline.runtimes.memory import YOUNGEST_THRESHOLD, freeze_start_up_objects

pytestmark = pytest.mark.unit


def test_start_up_objects_are_frozen_and_the_youngest_generation_collected_less_often() -> None:
    before = gc.get_threshold()
    kept = object(), [1, 2]
    try:
        freeze_start_up_objects()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (YOUNGEST_THRESHOLD, before[1], before[2])
        assert not any(obj is kept[1] for obj in gc.get_objects())  # frozen: no collection walks it
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
