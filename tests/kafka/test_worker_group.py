"""Two real `safeguard worker` processes in one consumer group share a topic: each takes some of the partitions
and does some of the work, and every event is processed exactly once, its effects once, however the records
fall between them (several records of one new child on both workers at once included)."""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime

import httpx
from sqlmodel import func, select

from bench.processes import free_port
from pipeline.adapters import tables as t
from tests.kafka.conftest import Deployment
from tests.support.world import AMELIA, FREYA, HARVEY, ISLA, JACOB, NOAH, OLIVER, RUBY, attendance

CONSUMED = 'safeguard_events_consumed_total{event_type="self-harm-attendance"}'


def consumed_by(port: int) -> float:
    """The records of the attendance topic a worker took so far (its Prometheus counter), 0 before any."""
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except httpx.HTTPError:
        return 0.0
    return next((float(line.split()[-1]) for line in text.splitlines() if line.startswith(CONSUMED)), 0.0)


def test_two_workers_share_a_topic_and_each_event_is_processed_once(deployment: Deployment) -> None:
    ports = [free_port(), free_port()]
    for port in ports:
        deployment.start_worker(env={"SAFEGUARD_METRICS_PORT": str(port)})
    producer = deployment.producer()
    children = itertools.cycle((AMELIA, OLIVER, ISLA, NOAH, RUBY, JACOB, HARVEY, FREYA))
    sent: list[dict[str, object]] = []
    # Waves of 40 records (distinct keys: all four partitions) until both workers have taken some: the second one
    # joins the group, and the partitions are shared out again, while the first is already working.
    deadline = time.monotonic() + 120
    while not all(consumed_by(port) for port in ports):
        assert time.monotonic() < deadline, f"records taken per worker: {[consumed_by(p) for p in ports]}"
        wave = [attendance(next(children), arrived_at=datetime.now(UTC)) for _ in range(40)]
        futures = [deployment.send(producer, "self-harm-attendance", event, key=str(event["attendance_id"]).encode())
                   for event in wave]
        producer.flush()
        for future in futures:
            future.get(timeout=60)  # each acknowledged by the broker, or the test says so
        sent += wave
        total = len(sent)
        deployment.wait_for(lambda total=total: deployment.count(t.Event, t.Event.status == "processed") == total,
                            timeout=120, progress=lambda total=total: (
                                f"{total} sent; records taken per worker: {[consumed_by(p) for p in ports]}"))
    with deployment.store.read() as session:
        events = session.exec(select(t.Event.event_id, t.Event.status)).all()
        fired = session.exec(select(t.Notification.event_id, t.Notification.kind, t.Notification.plan_key,
                                    t.Notification.recipient_role)).all()
        children_issued = session.exec(select(t.Child.person_key)).all()
        per_event = session.exec(select(t.Notification.event_id, func.count()).where(
            t.Notification.kind == "alert").group_by(t.Notification.event_id)).all()
    assert sorted(event_id for event_id, _ in events) == sorted(str(event["event_id"]) for event in sent)
    assert {status for _, status in events} == {"processed"}
    assert len(set(fired)) == len(fired)  # no effect twice
    assert {event_id for event_id, *_ in fired} == {str(event["event_id"]) for event in sent}
    # One child id per person, though both workers met the same new children at once.
    assert len(children_issued) == len(set(children_issued)) <= 8
    # Every event of a child has as many alerts as every other event of that child: none lost, none twice.
    alerts = dict(per_event)
    by_child: dict[str, set[int]] = {}
    for event in sent:
        child = event["child"]
        assert isinstance(child, dict)
        by_child.setdefault(str(child["given_name"]), set()).add(alerts.get(str(event["event_id"]), 0))
    assert all(len(counts) == 1 for counts in by_child.values()), by_child
