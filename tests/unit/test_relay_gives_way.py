"""The Kafka worker's relay gives way to the agents' batches record by record (``GivingWayPublisher``), within a
budget per relay pass, and publishes what it was given as the wrapped publisher takes it."""

from __future__ import annotations

import asyncio
import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest

from pipeline.runtimes import faust_app
from pipeline.runtimes.faust_app import BatchesFirst, GivingWayPublisher


class Recording:
    """A publisher that records what it was given and when."""

    def __init__(self) -> None:
        self.published: list[tuple[float, str, str, Any]] = []
        self.flushed = 0

    def publish(self, topic: str, key: str, record: dict[str, Any]) -> None:
        self.published.append((time.monotonic(), topic, key, record))

    def flush(self) -> None:
        self.flushed += 1


class RecordingJson(Recording):
    def publish_json(self, topic: str, key: str, record_json: str) -> None:
        self.published.append((time.monotonic(), topic, key, record_json))


async def _batch_beside_relay(gate: BatchesFirst, batch_seconds: float, relay: Any) -> float:
    """A batch that takes ``batch_seconds`` and, once it started, ``relay`` in a thread; when the batch ended."""
    started = threading.Event()

    def batch() -> float:
        started.set()
        time.sleep(batch_seconds)
        return time.monotonic()

    batch_task = asyncio.create_task(gate.batch(batch))
    await asyncio.to_thread(started.wait)
    await asyncio.to_thread(relay)
    return await batch_task


def test_the_relay_publishes_only_once_the_batch_in_progress_ended() -> None:
    gate, inner = BatchesFirst(2.0), Recording()
    publisher = GivingWayPublisher(inner, gate)

    def relay() -> None:
        publisher.new_pass()
        publisher.publish("pathway-notifications", "k1", {"n": 1})
        publisher.publish("deliveries", "k2", {"n": 2})
        publisher.flush()

    batch_ended = asyncio.run(_batch_beside_relay(gate, 0.3, relay))
    assert [(topic, key, record) for _, topic, key, record in inner.published] == [
        ("pathway-notifications", "k1", {"n": 1}), ("deliveries", "k2", {"n": 2})]
    assert inner.published[0][0] >= batch_ended
    assert inner.flushed == 1


def _give_ways(gate: BatchesFirst) -> list[tuple[float, float]]:
    """Each ``give_way`` the gate is asked for from now on: the budget it was given and how long it waited."""
    calls: list[tuple[float, float]] = []
    real = gate.give_way

    def give_way(most: float) -> float:
        waited = real(most)
        calls.append((most, waited))
        return waited

    gate.give_way = give_way  # type: ignore[method-assign]
    return calls


def test_a_relay_pass_waits_at_most_the_gates_budget_then_goes_on() -> None:
    gate, inner = BatchesFirst(0.1), Recording()
    publisher = GivingWayPublisher(inner, gate)
    calls = _give_ways(gate)
    started, relay_done = threading.Event(), threading.Event()
    batch_still_running: list[bool] = []

    def long_batch() -> None:
        started.set()
        # Ends once the relay is done, or (the relay waiting for it, the bug) after a minute.
        batch_still_running.append(relay_done.wait(60))

    async def both() -> None:
        batch = asyncio.create_task(gate.batch(long_batch))
        await asyncio.to_thread(started.wait)
        await asyncio.to_thread(relay)
        await batch

    def relay() -> None:
        publisher.new_pass()
        for n in range(5):
            publisher.publish("deliveries", f"k{n}", {"n": n})
        relay_done.set()

    asyncio.run(both())
    assert len(inner.published) == 5
    assert batch_still_running == [True]  # every record went while the batch was still in progress
    (first_budget, first_wait), later = calls[0], calls[1:]
    assert first_budget == 0.1 and first_wait >= 0.09  # it gave way to the batch, the whole budget
    # One budget for the whole pass, not one per record: what the later records were given is what was left.
    assert sum(max(budget, 0.0) for budget, _ in later) < 0.1


def test_without_a_batch_in_progress_the_relay_does_not_wait() -> None:
    gate, inner = BatchesFirst(5.0), Recording()
    publisher = GivingWayPublisher(inner, gate)
    calls = _give_ways(gate)
    publisher.new_pass()
    for n in range(20):
        publisher.publish("deliveries", f"k{n}", {"n": n})
    assert calls == [(5.0, 0.0)] * 20  # never a wait (``give_way`` measures none when no batch is in progress)
    assert len(inner.published) == 20


def test_a_stored_body_reaches_the_wrapped_publisher_as_it_takes_it() -> None:
    gate = BatchesFirst(1.0)
    decoding, as_text = Recording(), RecordingJson()
    GivingWayPublisher(decoding, gate).publish_json("deliveries", "k", '{"notification_id": "n1"}')
    GivingWayPublisher(as_text, gate).publish_json("deliveries", "k", '{"notification_id": "n1"}')
    assert decoding.published[0][1:] == ("deliveries", "k", {"notification_id": "n1"})
    assert as_text.published[0][1:] == ("deliveries", "k", '{"notification_id": "n1"}')


def test_after_its_flush_the_relay_waits_for_a_batch_before_marking_its_rows() -> None:
    gate, inner = BatchesFirst(2.0), Recording()
    publisher = GivingWayPublisher(inner, gate)
    flushed_at: list[float] = []

    def relay() -> None:
        publisher.new_pass()
        publisher.flush()  # nothing published: the wait is the flush's own
        flushed_at.append(time.monotonic())

    batch_ended = asyncio.run(_batch_beside_relay(gate, 0.3, relay))
    assert inner.flushed == 1
    assert flushed_at[0] >= batch_ended


def _relay_passes(monkeypatch: pytest.MonkeyPatch, *, postgres: bool, full: list[bool]) -> tuple[Any, list[Any]]:
    """``relay_until_idle`` over passes that come back full or not as ``full`` says; the services and, for each
    pass, the publisher it was given and the budget each of its ``give_way`` calls had."""
    gate = BatchesFirst(0.25)
    calls = _give_ways(gate)
    services = SimpleNamespace(store=SimpleNamespace(is_postgres=postgres), delivery=None, publisher=Recording(),
                               clock=lambda: None)
    passes: list[Any] = []
    answers = iter(full)

    def relay_pass(store: Any, delivery: Any, publisher: Any, now: Any) -> tuple[int, bool]:
        calls.clear()
        publisher.publish("deliveries", "k", {"n": len(passes)})
        publisher.flush()
        passes.append((publisher, [budget for budget, _ in calls]))
        return 1, next(answers)

    monkeypatch.setattr(faust_app, "relay_pass", relay_pass)
    asyncio.run(faust_app.relay_until_idle(gate, services, faust_app.giving_way_publisher(services, gate)))  # type: ignore[arg-type]
    return services, passes


def test_a_pass_after_a_full_pass_does_not_give_way(monkeypatch: pytest.MonkeyPatch) -> None:
    _, passes = _relay_passes(monkeypatch, postgres=True, full=[True, True, False])
    assert len(passes) == 3  # until a pass was not full
    assert all(isinstance(publisher, GivingWayPublisher) for publisher, _ in passes)
    budgets = [asked for _, asked in passes]
    assert budgets[0] == [0.25, 0.25]  # a small pass (no backlog before it) gives way, within the gate's budget
    assert budgets[1] == budgets[2] == [0.0, 0.0]  # a backlog: no way given, so no wait, within the pass


def test_on_sqlite_the_relay_publishes_without_giving_way(monkeypatch: pytest.MonkeyPatch) -> None:
    services, passes = _relay_passes(monkeypatch, postgres=False, full=[False])
    assert [(publisher, asked) for publisher, asked in passes] == [(services.publisher, [])]
    assert len(services.publisher.published) == 1
