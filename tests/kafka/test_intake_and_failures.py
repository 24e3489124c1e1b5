"""The Kafka deployment's HTTP intake and handler failures, against the real broker and PostgreSQL:
an event answers `accepted` to its producer from its 202 and `processed` later; an unreachable broker is a
503 with Retry-After; a handler failure keeps the event accepted, retries it, alerts the front door and
`safeguard events retry` processes it once; lists page through `safeguard api`."""

from __future__ import annotations

import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import yaml
from sqlmodel import select

from pipeline.adapters import tables as t
from tests.kafka.conftest import CLI, Deployment
from tests.support.faulty_worker import FAULTY_PREFIX
from tests.support.world import AMELIA, attendance

EVENTS = "/api/events/self-harm-attendance"


def test_every_event_answers_accepted_from_its_202_and_processed_later(deployment: Deployment) -> None:
    producer = {"Authorization": f"Bearer {deployment.add_user('producer', 'h@k.example')}"}
    other = {"Authorization": f"Bearer {deployment.add_user('producer', 'other@k.example')}"}
    manager = {"Authorization": f"Bearer {deployment.add_user('manager', 'm@k.example')}"}
    base = deployment.start_api()
    events = [attendance(AMELIA, arrived_at=datetime.now(UTC)) for _ in range(20)]
    with httpx.Client(base_url=base, timeout=30) as client:
        # No worker yet: whatever answers now comes from the intake record written with the send.
        for event in events:
            response = client.post(EVENTS, json=event, headers=producer)
            assert response.status_code == 202 and response.json()["status"] == "accepted"
            answer = client.get(f"/api/events/{event['event_id']}", headers=producer)
            assert answer.status_code == 200 and answer.json()["status"] == "accepted"
        assert client.get(f"/api/events/{events[0]['event_id']}", headers=manager).json()["status"] == "accepted"
        assert client.get(f"/api/events/{events[0]['event_id']}", headers=other).status_code == 404

        deployment.start_worker()
        deployment.wait_for(lambda: deployment.count(t.Event, t.Event.status == "processed") == len(events))
        for event in events:  # the producer travelled with the record: it reads its processed event
            body = client.get(f"/api/events/{event['event_id']}", headers=producer).json()
            assert body["status"] == "processed" and len(body["notifications"]) == 2
        assert client.get(f"/api/events/{events[0]['event_id']}", headers=other).status_code == 404
        again = client.post(EVENTS, json=events[0], headers=producer)
        assert again.status_code == 202 and again.json()["status"] == "processed"
    assert deployment.count(t.Event) == len(events) and deployment.count(t.Notification) == 2 * len(events)


def test_a_post_while_the_broker_is_stopped_gets_503_with_retry_after(deployment: Deployment) -> None:
    producer = {"Authorization": f"Bearer {deployment.add_user('producer', 'h@k.example')}"}
    base = deployment.start_api()
    first, during = attendance(AMELIA, arrived_at=datetime.now(UTC)), attendance(AMELIA, arrived_at=datetime.now(UTC))
    with httpx.Client(base_url=base, timeout=60) as client:
        assert client.post(EVENTS, json=first, headers=producer).status_code == 202
        deployment.broker("stop-kafka")
        try:
            started = time.monotonic()
            for _ in range(2):
                response = client.post(EVENTS, json=during, headers=producer)
                assert response.status_code == 503, response.text
                assert int(response.headers["retry-after"]) > 0 and "Amelia" not in response.text
            assert time.monotonic() - started < 45  # bounded waits, not a hang
            assert client.get(f"/api/events/{during['event_id']}", headers=producer).status_code == 404
        finally:
            deployment.broker("start-kafka")
        deadline = time.monotonic() + 120
        while True:  # the producer retries as told, until the broker is back
            response = client.post(EVENTS, json=during, headers=producer)
            if response.status_code == 202:
                break
            assert response.status_code == 503 and time.monotonic() < deadline, response.text
            time.sleep(int(response.headers["retry-after"]))
        assert client.get(f"/api/events/{during['event_id']}", headers=producer).json()["status"] == "accepted"
    assert deployment.count(t.DeadLetter) == 0


def test_a_handler_failure_is_retried_held_alerted_and_retried_once_after_the_fix(deployment: Deployment) -> None:
    fault = deployment.tmp / "fault-present"
    fault.touch()
    config = deployment.tmp / "retries.yaml"
    config.write_text(yaml.safe_dump({"runtime": {"handler_retries": {
        "attempts": 3, "first_delay": "PT1S", "max_delay": "PT2S"}}}), encoding="utf-8")
    env = {"SAFEGUARD_CONFIG": str(config)}
    deployment.start_worker([sys.executable, "-m", "tests.support.faulty_worker", str(fault)], env)
    now = datetime.now(UTC)
    good = [attendance(AMELIA, arrived_at=now), attendance(AMELIA, arrived_at=now)]
    bad = attendance(AMELIA, arrived_at=now, attendance_id=f"{FAULTY_PREFIX}{uuid.uuid4().hex[:8]}")
    producer = deployment.producer()
    for event in (good[0], bad, good[1]):  # one key: one partition, one batch
        deployment.send(producer, "self-harm-attendance", event, key=b"one-key")
    producer.flush()

    def stored() -> t.Event:
        with deployment.store.read() as session:
            row = session.exec(select(t.Event).where(t.Event.event_id == bad["event_id"])).first()
        return row or t.Event(event_id="", event_type="", content_hash="", record_json="", status="not stored")

    deployment.wait_for(lambda: deployment.count(t.Event, t.Event.status == "processed") == 2)
    deployment.wait_for(lambda: stored().attempts >= 1)
    assert stored().status == "accepted"
    deployment.wait_for(lambda: stored().held_at is not None, timeout=60)
    held = stored()
    assert (held.status, held.attempts, held.error) == ("accepted", 3, "RuntimeError")
    with deployment.store.read() as session:
        alerts = session.exec(select(t.Notification).where(t.Notification.recipient_role == "FRONT_DOOR",
                                                           t.Notification.event_id == bad["event_id"])).all()
        assert len(alerts) == 1 and alerts[0].urgency == "URGENT" and "Hartley" not in alerts[0].content_json
        audit = session.exec(select(t.AuditEntry.action).where(t.AuditEntry.subject_id == bad["event_id"])).all()
        assert list(audit) == ["processing_failed"]
    assert deployment.count(t.DeadLetter) == 0
    time.sleep(3)  # held: the workers' retry timer leaves it alone
    assert stored().attempts == 3

    fault.unlink()  # the fix
    import subprocess

    retried = subprocess.run([*CLI, "events", "retry"], env={**deployment.env, **env}, capture_output=True,
                             text=True, timeout=120)
    assert retried.returncode == 0 and f"{bad['event_id']}: processed" in retried.stdout, retried.stderr
    assert stored().status == "processed"
    time.sleep(3)
    with deployment.store.read() as session:
        for event in (*good, bad):
            roles = session.exec(select(t.Notification.recipient_role).where(
                t.Notification.event_id == event["event_id"], t.Notification.recipient_role == "dsl")).all()
            assert list(roles) == ["dsl"]  # processed once each


def test_2500_notifications_read_page_by_page_through_the_api(deployment: Deployment) -> None:
    dsl = {"Authorization": f"Bearer {deployment.add_user('dsl', 'dsl@riverside.sch.example', '--school', '100001')}"}
    start = datetime.now(UTC) - timedelta(days=1)
    rows = [t.Notification(id=str(uuid.uuid4()), event_id=str(uuid.uuid4()), pathway="self-harm", kind="alert",
                           plan_key="paging", recipient_role="dsl", recipient_ref="100001", school_urn="100001",
                           urgency="ROUTINE", reason="paging", status="delivered", content_json="{}",
                           created_at=start + timedelta(seconds=n // 7)) for n in range(2500)]
    with deployment.store.transaction() as session:
        session.add_all(rows)
    base = deployment.start_api()
    seen: list[str] = []
    url: str | None = "/api/notifications?limit=400"
    with httpx.Client(base_url=base, timeout=30) as client:
        while url is not None:
            response = client.get(url, headers=dsl)
            assert response.status_code == 200
            seen += [item["id"] for item in response.json()]
            link = response.headers.get("link")
            url = link[1:link.index(">")] if link else None
            assert url is None or url.startswith("/api/notifications?")
    assert len(seen) == len(set(seen)) == 2500 and set(seen) == {row.id for row in rows}
