"""The Kafka worker freezes what faust made at start-up, as ``run_worker`` froze what came before it."""

from __future__ import annotations

import asyncio
import gc

import faust
import pytest

from pipeline.runtimes.faust_app import QuietWorker


def test_objects_made_during_faust_start_up_are_frozen_once_it_finished(monkeypatch: pytest.MonkeyPatch) -> None:
    happened: list[str] = []

    async def started(_self: faust.Worker) -> None:
        happened.append("faust start-up finished")

    monkeypatch.setattr(faust.Worker, "on_startup_finished", started)
    # The freeze recorded, not done: the test process's garbage collector is left as the test found it.
    monkeypatch.setattr(gc, "freeze", lambda: happened.append("frozen"))
    worker = QuietWorker.__new__(QuietWorker)  # only the hook: no app, nothing started
    frozen_before = gc.get_freeze_count()
    asyncio.run(worker.on_startup_finished())
    assert happened == ["faust start-up finished", "frozen"]
    assert gc.get_freeze_count() == frozen_before
