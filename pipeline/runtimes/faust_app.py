"""The Kafka runtime: faust-streaming agents, one per event topic, driving the same handlers.

Agents are thin: values arrive decoded by the faust codec in ``pipeline.adapters.faust_codec`` (the
project's one Avro codec), and each batch goes to ``consumers.kafka_records.handle_batch`` (check, process in
one transaction) on a worker thread, so a partition's records stay in order. A batch is whatever records are
waiting when the agent is free (at most ``runtime.kafka_batch_max``), with no timer: a lone record is handled
at once, and records that arrive while a batch is in the database form the next one. Delivery is
at-least-once (an event is acked, and faust commits its offset, only after its batch committed); the
processed-event row makes effects happen once. Timers drive the deadline sweep, the outbox relay and the
retries of events whose handler failed, which claim rows with ``FOR UPDATE SKIP LOCKED`` so several workers
share them; their work goes between the agents' batches (``BatchesFirst``), the relay one pass at a time, and
within a pass the relay gives way to a batch before each record it publishes (``GivingWayPublisher``).
faust's exactly_once mode is not used.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import faust

from consumers.intake_consumer import IntakeConsumer
from consumers.kafka_records import Delivery, handle_batch
from pipeline import codec
from pipeline.adapters.faust_codec import codec_name, register_codecs
from pipeline.adapters.kafka import producer_id_from
from pipeline.adapters.metrics import EVENTS_CONSUMED
from pipeline.adapters.publisher import Publisher, publish_stored
from pipeline.bootstrap import Services, say_how_notifications_go, var_dir
from pipeline.runtimes.memory import freeze_start_up_objects
from pipeline.service.relay import relay_pass
from pipeline.service.sweep import sweep

log = logging.getLogger(__name__)


def create_app(services: Services, *, partitions: int = 4) -> faust.App:
    settings = services.settings
    bootstrap, app_id, prefix = settings.kafka_bootstrap, settings.kafka_group, settings.kafka_topic_prefix
    assert bootstrap, "the Kafka runtime needs SAFEGUARD_KAFKA_BOOTSTRAP"
    runtime = services.settings.rules.get("runtime", {})
    datadir = var_dir(settings) / "faust"  # faust's default is a folder in the working directory
    datadir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        app_id, broker=f"kafka://{bootstrap}", store="memory://", web_enabled=False, topic_partitions=partitions,
        broker_session_timeout=6.0, broker_heartbeat_interval=1.0, broker_rebalance_timeout=6.0,
        consumer_auto_offset_reset="earliest", producer_acks=-1,
        datadir=str(datadir),
        # faust logs an error for a partition with records waiting that its consumer has not fetched, or its
        # agent not taken, for this long (its default, five minutes, is a long silence for an attendance).
        stream_processing_timeout=float(runtime.get("stream_stall_seconds", 60)),
    )
    register_codecs()
    batch_max = int(runtime.get("kafka_batch_max", 500))

    retries = IntakeConsumer(services.store, services.ctx, services.clock, retries_only=True)
    # The timers give way to the agents: their work starts when no batch is being processed (or once it has
    # waited a batch's worth of time, so a busy worker still relays), and the relay goes pass by pass.
    gate = BatchesFirst(float(runtime.get("timers_yield_seconds", 0.25)))

    @app.timer(interval=float(runtime.get("sweep_interval_seconds", 5)))
    async def deadline_sweep() -> None:
        await gate.timer_work("deadline sweep", sweep, services.store, services.ctx, services.clock())

    publisher = giving_way_publisher(services, gate)

    @app.timer(interval=float(runtime.get("relay_interval_seconds", 1)))
    async def outbox_relay() -> None:
        await relay_until_idle(gate, services, publisher)

    @app.timer(interval=float(runtime.get("retry_interval_seconds", 1)))
    async def failed_event_retries() -> None:
        while await gate.timer_work("failed-event retries", retries.run_once):
            pass

    for event_type in codec.EVENT_TYPES:
        _add_agent(app, services, event_type, prefix, partitions, batch_max, gate)
    return app


def giving_way_publisher(services: Services, gate: BatchesFirst) -> GivingWayPublisher | None:
    """The relay's publisher giving way to batches, on PostgreSQL only: on SQLite a relay pass's transaction holds
    the Store's write lock for the whole pass, so a batch would wait for the relay while the relay waited for it."""
    return GivingWayPublisher(services.publisher, gate) if services.store.is_postgres else None


async def relay_until_idle(gate: BatchesFirst, services: Services, publisher: GivingWayPublisher | None) -> None:
    """Relay passes, each between the agents' batches, until one is not full (or fails). A pass after a full one
    (a backlog) does not give way within itself: giving way in every pass of a backlog halved the relay's floor,
    and the outbox could fall behind a steady load without bound."""
    backlog = False
    while backlog := bool(await gate.timer_work("relay", _relay_pass, services, publisher, backlog)):
        pass


def _relay_pass(services: Services, publisher: GivingWayPublisher | None, backlog: bool) -> bool:
    if publisher is None:
        return relay_pass(services.store, services.delivery, services.publisher, services.clock())[1]
    publisher.new_pass(give_way=not backlog)
    return relay_pass(services.store, services.delivery, publisher, services.clock())[1]


class BatchesFirst:
    """Orders the worker's thread work: the agents' batches first, the timers' work (relay, sweep, retries)
    between them. All of it shares one interpreter lock and, in a pinned worker, one core: a timer's long run
    (the relay working off the outbox of thousands of events just processed) beside a batch made every database
    round trip of the batch wait for the lock, and events waited seconds. A timer's piece of work starts once no
    batch is in progress, or after ``most`` seconds of waiting, so timers are never starved."""

    def __init__(self, most: float) -> None:
        self.most = most
        self._batches = 0
        self._idle: asyncio.Event | None = None
        self._no_batch = threading.Event()  # the same as ``_idle``, for the timers' threads
        self._no_batch.set()

    def _event(self) -> asyncio.Event:
        if self._idle is None:  # made on the worker's event loop, on first use
            self._idle = asyncio.Event()
            self._idle.set()
        return self._idle

    async def batch(self, work: Callable[..., Any], *args: Any) -> Any:
        """An agent's batch, in a thread."""
        idle = self._event()
        self._batches += 1
        idle.clear()
        self._no_batch.clear()
        try:
            return await asyncio.to_thread(work, *args)
        finally:
            self._batches -= 1
            if not self._batches:
                self._no_batch.set()
                idle.set()

    def give_way(self, most: float) -> float:
        """From a timer's thread, in the middle of its work: wait while a batch is in progress, at most ``most``
        seconds; how long it waited."""
        if self._no_batch.is_set() or most <= 0:
            return 0.0
        started = time.monotonic()
        self._no_batch.wait(most)
        return time.monotonic() - started

    async def timer_work(self, name: str, work: Callable[..., Any], *args: Any) -> Any:
        """A timer's piece of work, in a thread, once the agents are idle (or ``most`` seconds passed); its result,
        or None if it failed. A failure (the broker or the database away for a moment) is logged by type and left
        to the next tick: the rows it concerns stay where they are, and a timer that raised would stop the whole
        worker."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event().wait(), self.most)
        try:
            return await asyncio.to_thread(work, *args)
        except Exception as error:  # noqa: BLE001 - the next tick tries again
            log.warning("%s failed (%s); trying again at the next tick", name, type(error).__name__)
            return None


class GivingWayPublisher:
    """The relay's publisher in a worker: before each record, and after the flush, it gives way to a batch in progress
    (``BatchesFirst``), waiting at most ``gate.most`` seconds in all per relay pass so the relay still moves under a
    steady load. One per worker, used by its relay timer alone (one pass at a time).

    A relay pass publishes its outbox rows (one per notification) in one burst of CPU: a one-record batch that
    started just after it took two to four times as long (its dozen database round trips each waited for the
    interpreter lock the relay held, bench/results/kafka.md), and such batches made the latency's tail at 50 events/s.
    Waiting here holds the pass's transaction open (its outbox rows stay locked, ``SKIP LOCKED`` for others); the
    records already sent are flushed as before, so durability is unchanged."""

    def __init__(self, publisher: Publisher, gate: BatchesFirst) -> None:
        self.publisher = publisher
        self.gate = gate
        self._left = gate.most

    def new_pass(self, *, give_way: bool = True) -> None:
        """A relay pass begins: with the gate's budget for giving way, or none (a backlog: it goes straight on)."""
        self._left = self.gate.most if give_way else 0.0

    def publish(self, topic: str, key: str, record: dict[str, Any]) -> None:
        self._left -= self.gate.give_way(self._left)
        self.publisher.publish(topic, key, record)

    def publish_json(self, topic: str, key: str, record_json: str) -> None:
        """``publish`` of a stored JSON body, passed on as the wrapped publisher takes it (``publish_stored``)."""
        self._left -= self.gate.give_way(self._left)
        publish_stored(self.publisher, topic, key, record_json)

    def flush(self) -> None:
        """Everything published acknowledged (the broker's wait, no CPU), then, before the relay marks its rows and
        commits (about a fifth of a pass's CPU), way given to a batch in progress again."""
        self.publisher.flush()
        self._left -= self.gate.give_way(self._left)


async def waiting_batches(stream: Any, most: int) -> AsyncIterator[list[Any]]:
    """The stream's events in batches, acked once the caller is done with each: a batch ends when no further
    event is waiting in the stream's channel (or at ``most`` events), so nothing waits for a timer ("natural
    batching": batches are one record at a quiet time and grow by themselves when records queue up behind a
    batch in the database). The caller's work on a batch happens before its events are acked, so faust never
    commits an offset past a record whose effects are not committed."""
    manual = stream.noack()
    waiting = manual.channel.queue
    batch: list[Any] = []
    async for event in manual.events():
        batch.append(event)
        if len(batch) < most and not waiting.empty():
            continue
        yield batch
        # Reached only once the caller's work on the batch returned: a batch whose work raised is never acked,
        # so its offsets are never committed and its records come again to the next worker of the group.
        for done in batch:
            await manual.ack(done)
        batch = []


def _add_agent(app: faust.App, services: Services, event_type: str, prefix: str, partitions: int,
               batch_max: int, gate: BatchesFirst) -> None:
    topic = app.topic(prefix + event_type, key_type=bytes, value_serializer=codec_name(event_type),
                      key_serializer="raw", partitions=partitions)

    async def consume(stream: Any) -> None:
        # A batch of records shares one transaction (one commit).
        async for events in waiting_batches(stream, batch_max):
            EVENTS_CONSUMED.labels(event_type).inc(len(events))
            deliveries = [Delivery(event_type, e.message.topic, e.message.partition, e.message.offset,
                                   e.message.value, e.value, producer_id_from(e.message.headers)) for e in events]
            await gate.batch(handle_batch, services, deliveries)

    app.agent(topic, name=f"consume-{event_type}")(consume)


def run_worker(services: Services, partitions: int = 4) -> None:
    from pipeline.adapters.kafka import ensure_topics

    assert services.settings.kafka_bootstrap
    ensure_topics(services.settings.kafka_bootstrap, partitions, services.settings.kafka_topic_prefix)
    app = create_app(services, partitions=partitions)
    if services.settings.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(services.settings.metrics_port, addr="127.0.0.1")
    say_how_notifications_go(services)
    services.ctx.warm_up(services.store)
    freeze_start_up_objects()
    # The agents' batches, the timers' work, faust's event loop and the Kafka clients' threads share one
    # interpreter lock; a batch gives it up at every database round trip and waits up to the switch interval to
    # get it back. Configurable (config/defaults.yaml keeps Python's 5 ms: 1 ms measured no better).
    runtime = services.settings.rules.get("runtime", {})
    sys.setswitchinterval(float(runtime.get("worker_switch_interval_seconds", 0.005)))
    services.ready.set()
    worker = QuietWorker(app, loglevel="WARNING", quiet=True)
    worker.execute_from_commandline()


class QuietWorker(faust.Worker):
    """faust's worker without its terminal spinner. At a log level of WARNING or above, faust turns the spinner
    on by setting the root logger to DEBUG (every record spins it) and leaves it there after start-up, so every
    debug call of aiokafka, kafka-python, SQLAlchemy and psycopg then builds a log record that the handlers
    drop: CPU on every fetch, send and statement. Without the spinner the root logger keeps the level asked for."""

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        self.spinner = None
        super().on_setup_root_logger(logger, level)

    async def on_startup_finished(self) -> None:
        """Once faust has started (its consumer, producer, agents and timers made after ``run_worker`` froze the
        start-up objects): those too out of the garbage collector's reach, as the embedded runtime does, so a full
        collection while events flow does not walk them (on this machine a full collection over the worker's
        200,000 unfrozen objects at start-up took 300 to 550 ms with every thread stopped: bench/results/kafka.md)."""
        await super().on_startup_finished()
        freeze_start_up_objects()
