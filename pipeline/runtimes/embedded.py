"""The embedded runtime: one process, no servers. The web app and API, the intake consumer thread,
the outbox relay and the APScheduler-driven deadline sweep, all over one SQLite database.

SQLite's WAL checkpoints run in a thread of their own too (pipeline/adapters/wal_checkpoint.py), so no event's
commit pays for one.

The relay runs in a thread of its own: woken as soon as the intake consumer commits (new notifications are
due at once), and otherwise every ``relay_interval_seconds`` for retries, the sweep's and the API's rows.

APScheduler only calls the sweep on an interval; the deadlines themselves are rows, so a restart loses
none, and the first sweep after start fires whatever fell due while the process was down.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from apscheduler.schedulers.background import BackgroundScheduler

from consumers.intake_consumer import IntakeConsumer
from pipeline.bootstrap import Services, say_how_notifications_go
from pipeline.entrypoints.api import create_app
from pipeline.runtimes.memory import freeze_start_up_objects
from pipeline.service.relay import relay_until_idle
from pipeline.service.sweep import sweep

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    """uvicorn re-raises SIGTERM/SIGINT after its graceful shutdown, which would end the process by the
    signal before our own clean-up runs; we have shut down cleanly, so we exit 0 instead."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            try:
                yield
            finally:
                self._captured_signals.clear()


class EmbeddedRuntime:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.consumer = IntakeConsumer(services.store, services.ctx, services.clock)
        services.on_accepted = self.consumer.wake.set
        services.intake.on_stored = self.consumer.wake.set  # straight from the intake's commit
        self.relay_wake = threading.Event()
        self.consumer.on_committed = self.relay_wake.set
        self.stop = threading.Event()
        self.scheduler = BackgroundScheduler(timezone="UTC")
        self._threads: list[threading.Thread] = []
        self._checkpoints: threading.Thread | None = None
        self._checkpoints_stop = threading.Event()
        self.relay_batch = int(services.settings.rules.get("runtime", {}).get("relay_batch", 500))

    def sweep_once(self) -> None:
        try:
            sweep(self.services.store, self.services.ctx, self.services.clock())
        except Exception as error:  # noqa: BLE001 - the next interval tries again
            log.error("deadline sweep failed (%s)", type(error).__name__)  # type only: no personal data

    def relay_once(self) -> None:
        try:
            relay_until_idle(self.services.store, self.services.delivery, self.services.publisher, self.services.clock,
                             self.relay_batch)
        except Exception as error:  # noqa: BLE001 - the next interval tries again
            log.error("relay pass failed (%s); the next one tries again", type(error).__name__)

    def relay_forever(self, interval: float, linger: float = 0.0) -> None:
        while not self.stop.is_set():
            self.relay_once()
            if self.relay_wake.wait(interval) and linger > 0:
                # Woken by a commit: wait a moment for the next ones, so a trickle of events shares one relay
                # transaction (and its fsync) instead of paying one each (Kafka's linger.ms, for the outbox).
                self.stop.wait(linger)
            self.relay_wake.clear()

    def start_background(self) -> None:
        runtime = self.services.settings.rules.get("runtime", {})
        say_how_notifications_go(self.services)
        self.services.ctx.warm_up(self.services.store)  # the match index and model, before the first event
        checkpointer = self.services.store.take_over_wal_checkpoints(
            float(runtime.get("wal_checkpoint_seconds", 1)), int(runtime.get("wal_restart_pages", 8_000)))
        if checkpointer is not None:
            checkpoints = threading.Thread(target=checkpointer.run, args=(self._checkpoints_stop,),
                                           name="wal-checkpoint", daemon=True)
            checkpoints.start()
            self._checkpoints = checkpoints
        freeze_start_up_objects()
        self.sweep_once()  # whatever fell due while we were down fires now, once
        consumer = threading.Thread(target=self.consumer.run_forever, args=(self.stop,), name="intake-consumer",
                                    kwargs={"watch_seconds": float(runtime.get("commit_watch_seconds", 0.05))},
                                    daemon=True)
        consumer.start()
        self._threads.append(consumer)
        relayer = threading.Thread(target=self.relay_forever, name="outbox-relay", daemon=True,
                                   args=(float(runtime.get("relay_interval_seconds", 1)),
                                         float(runtime.get("relay_linger_seconds", 0))))
        relayer.start()
        self._threads.append(relayer)
        options = {"max_instances": 1, "coalesce": True, "misfire_grace_time": None}
        self.scheduler.add_job(self.sweep_once, "interval", seconds=float(runtime.get("sweep_interval_seconds", 5)),
                               id="deadline-sweep", **options)
        self.scheduler.start()
        self.services.ready.set()

    def stop_background(self) -> None:
        self.stop.set()
        self.consumer.wake.set()
        self.relay_wake.set()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        for thread in self._threads:
            thread.join(timeout=10)
        if self._checkpoints is not None:  # the last checkpoint, once every writer has stopped
            self._checkpoints_stop.set()
            self._checkpoints.join(timeout=30)
        self.services.store.dispose()

    def serve(self, host: str, port: int) -> None:
        """Run until SIGINT or SIGTERM (uvicorn handles both), then stop cleanly."""
        app = create_app(self.services)
        # uvloop and httptools by name (both pinned dependencies), not uvicorn's "auto", which would fall back to
        # asyncio's loop and h11 silently should either be missing; no access log line per request.
        server = _Server(uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False, loop="uvloop",
                                        http="httptools"))
        self.start_background()
        try:
            server.run()
        finally:
            self.stop_background()
            log.info("stopped cleanly")
