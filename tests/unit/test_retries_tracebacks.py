"""A failed event kept for ``record_failure`` holds no traceback, its own or its chain's: only its type (and a
refusal's text) is recorded, and the frames would hold the list it is kept in, a reference cycle per failure."""

from __future__ import annotations

import gc
from collections.abc import Callable

import pytest

from pipeline.service.retries import without_tracebacks

pytestmark = pytest.mark.unit


def _handler() -> None:
    try:
        {}["missing"]  # noqa: B018 - the inner failure (a driver's error, say)
    except KeyError as inner:
        raise RuntimeError("the handler's failure") from inner  # as SQLAlchemy wraps a driver's error


def _consume(keep: Callable[[Exception], Exception]) -> Exception:
    """As the consumers do: the failure kept in a list of the frame that caught it."""
    failed: list[tuple[int, Exception]] = []
    try:
        _handler()
    except RuntimeError as error:
        failed.append((1, keep(error)))
    return failed[0][1]


def _cyclic_garbage_after(keep: Callable[[Exception], Exception]) -> list[str]:
    gc.collect()
    gc.disable()
    try:
        kept = _consume(keep)
        assert str(kept) == "the handler's failure" and type(kept.__cause__) is KeyError
        del kept
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            gc.collect()
            return sorted({type(o).__name__ for o in gc.garbage})
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
    finally:
        gc.enable()


def test_a_kept_failure_and_the_failure_it_was_raised_from_hold_no_frame() -> None:
    assert _cyclic_garbage_after(without_tracebacks) == []


def test_dropping_only_the_outer_traceback_still_leaves_a_cycle_through_the_chain() -> None:
    """Why ``without_tracebacks`` walks the chain: the inner failure's traceback still reaches the frame holding
    the list (``with_traceback(None)`` alone, as the consumers did at first)."""
    assert "frame" in _cyclic_garbage_after(lambda error: error.with_traceback(None))
