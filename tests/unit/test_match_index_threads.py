"""The match index is shared by every worker thread of a process: a build in one thread is never seen half
done (or emptied under it) by another (the cause of tests/integration/test_missing_concurrency.py's rare
second trigger meeting: a worker matched against an index another worker's build had just emptied)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import date

from pipeline.adapters.match_index import ReferenceIndex, ReferenceRow
from pipeline.domain.model import Identity

JACOB = Identity("Jacob", "Hartley", date(2012, 5, 3), "M", None, "NS1 4AB")
ROWS = [ReferenceRow("pupils", "P1", JACOB, upn="P1"),
        ReferenceRow("pupils", "P2", Identity("Ava", "Stone", date(2011, 1, 9), "F", None, "NS2 1CD"), upn="P2")]


def _paused_rows(started: threading.Event, go_on: threading.Event) -> Iterator[ReferenceRow]:
    """The rows, pausing after the first: the build is then under way (the old contents already emptied)."""
    yield ROWS[0]
    started.set()
    assert go_on.wait(timeout=10)
    yield from ROWS[1:]


def _start_paused_build(index: ReferenceIndex) -> tuple[threading.Thread, threading.Event]:
    started, go_on = threading.Event(), threading.Event()
    builder = threading.Thread(target=index.load, args=(_paused_rows(started, go_on),))
    builder.start()
    assert started.wait(timeout=10)
    return builder, go_on


def test_a_worker_matching_during_another_workers_build_waits_for_it_and_finds_the_child() -> None:
    index = ReferenceIndex()
    builder, go_on = _start_paused_build(index)
    found: list[list[str]] = []
    reader = threading.Thread(target=lambda: found.append([c.record_key for c in index.candidates(JACOB)]))
    reader.start()
    reader.join(timeout=0.3)
    assert reader.is_alive(), "candidates answered from a half-built index"
    go_on.set()
    builder.join(timeout=10)
    reader.join(timeout=10)
    assert found == [["P1"]]


def test_a_second_build_during_the_first_waits_for_it_and_leaves_each_record_once() -> None:
    index = ReferenceIndex()
    builder, go_on = _start_paused_build(index)
    second = threading.Thread(target=index.load, args=(iter(ROWS),))
    second.start()
    second.join(timeout=0.3)
    assert second.is_alive(), "a second build ran inside the first"
    go_on.set()
    builder.join(timeout=10)
    second.join(timeout=10)
    assert index.live == len(ROWS) == len(index.records)
    assert [c.record_key for c in index.candidates(JACOB)] == ["P1"]
