"""The Kafka worker freezes what faust made at start-up, as ``run_worker`` froze what came before it."""

from __future__ import annotations

import asyncio
import gc

import faust
import pytest

from pipeline.runtimes.faust_app import QuietWorker


def test_objects_made_during_faust_start_up_are_frozen_once_it_finished(monkeypatch: pytest.MonkeyPatch) -> None:
    async def started(_self: faust.Worker) -> None:
        return None

    monkeypatch.setattr(faust.Worker, "on_startup_finished", started)
    worker = QuietWorker.__new__(QuietWorker)  # only the hook: no app, nothing started
    made_during_start_up = [{"consumer": n} for n in range(1000)]
    before = gc.get_freeze_count()
    try:
        asyncio.run(worker.on_startup_finished())
        assert gc.get_freeze_count() >= before + len(made_during_start_up)
    finally:
        gc.unfreeze()
