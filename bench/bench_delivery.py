"""Benchmark: delivery to local fake providers through the public entry points.

Notifications are stored with ``pipeline.service.notify.notify`` (as routing, the missing pathway and the sweep
store them) and delivered by ``pipeline.service.relay.relay`` with the real adapter wired by
``pipeline.bootstrap.build_channels`` from settings, against the fake provider APIs of tests/support/providers.py
running in a process of their own (pinned to the other core). Three figures:

1. throughput: N notifications stored, then the relay alone until all are accepted: notifications per second;
2. latency at a steady 50 notifications/s: stored (committed) -> the provider accepted it, p50/p99;
3. a 30 s provider outage (the fake answers 500) while 50/s keep coming: lost, duplicated, and how long after
   the provider recovered until everything stored was accepted (retry settings as shipped).

    taskset -c 0 .venv/bin/python bench/bench_delivery.py [--channel notify|twilio|webhook] [--count 3000]

Appends a dated section to bench/results/delivery.md.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from sqlmodel import func, select  # noqa: E402

from bench.results_file import append, machine  # noqa: E402
from pipeline.adapters import tables as t  # noqa: E402
from pipeline.adapters.channels import Channel, Message  # noqa: E402
from pipeline.adapters.publisher import FilePublisher  # noqa: E402
from pipeline.adapters.repository import Repository  # noqa: E402
from pipeline.adapters.store import Store  # noqa: E402
from pipeline.bootstrap import build_delivery  # noqa: E402
from pipeline.domain.model import Contact, PlannedNotification  # noqa: E402
from pipeline.service.notify import notify  # noqa: E402
from pipeline.service.relay import relay  # noqa: E402
from pipeline.settings import Settings  # noqa: E402
from tests.support.providers import NOTIFY_KEY, TWILIO_SID, TWILIO_TOKEN, WEBHOOK_SECRET  # noqa: E402


class Timed:
    """Wraps the real channel: when each delivery was accepted (wall clock), and how often it was sent."""

    def __init__(self, inner: Channel) -> None:
        self.inner, self.kind, self.provider = inner, inner.kind, inner.provider
        self.accepted: dict[str, float] = {}
        self.sends: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:  # url_for of the webhook channel
        return getattr(self.inner, name)

    def send(self, message: Message) -> str | None:
        reference = self.inner.send(message)
        with self._lock:
            self.accepted.setdefault(message.notification_id, time.time())
            self.sends[message.notification_id] += 1
        return reference


def settings_for(channel: str, url: str, var: Path) -> Settings:
    common: dict[str, Any] = {"database_url": f"sqlite:///{var / 'bench.db'}", "var_dir": var}
    if channel == "notify":
        config = var / "config.yaml"
        config.write_text("delivery: {email: notify, notify: {email_template_id: bench-template}}\n")
        return Settings(**common, config=config, notify_api_key=NOTIFY_KEY, notify_base_url=url)
    if channel == "twilio":
        return Settings(**common, twilio_account_sid=TWILIO_SID, twilio_auth_token=TWILIO_TOKEN,
                        twilio_from="+447700900999", twilio_base_url=url)
    return Settings(**common, webhook_secret=WEBHOOK_SECRET, webhook_url=f"{url}/hook/100001")


def item(channel: str, n: int) -> PlannedNotification:
    contact = Contact("team@council.example") if channel == "notify" else Contact(None, "+447700900100")
    role, ref, urn = ("dsl", "100001", "100001") if channel == "webhook" else ("SCIES", "SCIES", None)
    if channel == "webhook":
        contact = Contact("dsl@school.example")
    return PlannedNotification(key=f"bench:{n}", recipient_role=role, recipient_ref=ref, contact=contact,
                               reason="benchmark", urgency="ROUTINE", content={}, school_urn=urn)


class Bench:
    def __init__(self, channel: str, url: str, var: Path) -> None:
        self.settings = settings_for(channel, url, var)
        self.store = Store(self.settings.database_url)
        self.store.migrate()
        self.delivery = build_delivery(self.settings)
        if channel == "webhook":  # school roles get webhook and email; only the webhook is configured here
            self.delivery.routes = type(self.delivery.routes)({"default": {"ROUTINE": _route(["webhook"])}})
        kind = "email" if channel == "notify" else "sms" if channel == "twilio" else "webhook"
        self.timed = Timed(self.delivery.channels[kind])
        self.delivery.channels = {kind: self.timed}
        self.publisher = FilePublisher(var / "topics")
        self.channel, self.stored_at, self.n = channel, {}, 0  # type: dict[str, float]
        self.wake = threading.Event()

    def store_batch(self, count: int) -> None:
        with self.store.transaction() as session:
            repo = Repository(session)
            now = datetime.now(UTC)
            for _ in range(count):
                self.n += 1
                row = notify(repo, f"event-{self.n}", item(self.channel, self.n), "self-harm", now)
                assert row is not None
                self.stored_at[row.id] = -1.0
        committed = time.time()
        for key, value in self.stored_at.items():
            if value < 0:
                self.stored_at[key] = committed

    def relay_until_idle(self) -> None:
        while relay(self.store, self.delivery, self.publisher, datetime.now(UTC), batch=500):
            pass

    def undelivered(self) -> int:
        with self.store.read() as session:
            return int(session.exec(select(func.count()).select_from(t.Notification).where(
                t.Notification.status != "delivered")).one())


def _route(send: list[str]) -> Any:
    from pipeline.domain.delivery import Route

    return Route(tuple(send), ())


def steady(bench: Bench, rate: float, seconds: float, relay_interval: float,
           after: Any = None) -> tuple[list[str], threading.Thread]:
    """Store ``rate`` notifications a second for ``seconds`` while a relay loop runs, woken after each commit as
    the embedded runtime's consumer wakes its relay, else every ``relay_interval``."""
    stop = threading.Event()
    ids: list[str] = []

    def relayer() -> None:
        while not stop.is_set():
            bench.relay_until_idle()
            bench.wake.wait(relay_interval)
            bench.wake.clear()

    thread = threading.Thread(target=relayer, daemon=True)
    thread.start()
    start = time.monotonic()
    sent = 0
    while time.monotonic() - start < seconds:
        due = int((time.monotonic() - start) * rate)
        if due > sent:
            before = set(bench.stored_at)
            bench.store_batch(due - sent)
            bench.wake.set()
            ids += [i for i in bench.stored_at if i not in before]
            sent = due
        if after is not None:
            after(time.monotonic() - start)
        time.sleep(0.002)
    return ids, _stopper(stop, thread)


def _stopper(stop: threading.Event, thread: threading.Thread) -> threading.Thread:
    def finish() -> None:
        stop.set()
        thread.join()

    return threading.Thread(target=finish)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--channel", choices=["notify", "twilio", "webhook"], default="notify")
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--outage", type=float, default=30.0)
    parser.add_argument("--relay-interval", type=float, default=0.05)
    args = parser.parse_args()
    fake = subprocess.Popen(["taskset", "-c", "1", sys.executable, "-m", "tests.support.providers"], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert fake.stdout is not None
        url = fake.stdout.readline().strip()
        lines = run(args, url)
    finally:
        fake.terminate()
        fake.wait(timeout=10)
    print(append(ROOT / "bench" / "results" / "delivery.md", "Delivery benchmark results", lines))


def run(args: argparse.Namespace, url: str) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        bench = Bench(args.channel, url, Path(tmp))
        bench.store_batch(50)
        bench.relay_until_idle()  # warm up (connections, JWT, imports)
        bench.store_batch(args.count)
        start, cpu_start = time.monotonic(), time.process_time()
        bench.relay_until_idle()
        elapsed = time.monotonic() - start
        cpu_ms = (time.process_time() - cpu_start) * 1000 / args.count
        throughput = args.count / elapsed
        assert bench.undelivered() == 0

        ids, finish = steady(bench, 50, 20, args.relay_interval)
        finish.start()
        finish.join()
        bench.relay_until_idle()
        latencies = [(bench.timed.accepted[i] - bench.stored_at[i]) * 1000 for i in ids]

        outage_until: list[float] = []

        def start_outage(elapsed_s: float) -> None:
            if not outage_until and elapsed_s >= 5:
                provider = {"notify": "notify", "twilio": "twilio", "webhook": "webhook"}[args.channel]
                httpx.post(f"{url}/control/outage/{provider}/{args.outage}")
                outage_until.append(time.monotonic() + args.outage)

        stored_before = len(bench.stored_at)
        ids, finish = steady(bench, 50, 5 + args.outage + 5, args.relay_interval, start_outage)
        recovered = outage_until[0]
        while bench.undelivered() and time.monotonic() - recovered < 300:
            time.sleep(0.2)
        caught_up = time.monotonic() - recovered
        finish.start()
        finish.join()
        lost = bench.undelivered()
        duplicates = sum(count - 1 for count in bench.timed.sends.values())
        outage_ids = len(bench.stored_at) - stored_before
    return [
        f"machine: {machine()}, pinned with taskset: benchmark on core 0, fake providers on core 1",
        f"channel: {args.channel} (the real client against the local fake API), store: SQLite as shipped "
        f"(WAL, synchronous=FULL), send_concurrency {bench.delivery.concurrency}, relay loop every "
        f"{args.relay_interval * 1000:.0f} ms when idle and woken after each commit",
        f"throughput: {args.count} notifications stored, then relayed: {throughput:.0f} delivered/s per process "
        f"(target >= 500), {cpu_ms:.2f} CPU ms per notification in the relaying process",
        f"latency at 50/s for 20 s ({len(latencies)} notifications), committed -> provider accepted: "
        f"p50 {percentile(latencies, 50):.1f} ms, p99 {percentile(latencies, 99):.1f} ms (target p99 < 200 ms)",
        f"outage: provider answered 500 for {args.outage:.0f} s while 50/s kept coming ({outage_ids} stored): "
        f"lost {lost}, sent twice {duplicates}, everything accepted {caught_up:.1f} s after recovery "
        "(retry as shipped: 2 s doubling, jitter 20%; target within 60 s)",
    ]


if __name__ == "__main__":
    main()
