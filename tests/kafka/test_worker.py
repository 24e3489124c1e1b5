"""The faust worker against a real Apache Kafka broker and PostgreSQL."""

from __future__ import annotations

import os
import signal
import time
import uuid
from datetime import UTC, datetime

from sqlmodel import select

from pipeline import codec
from pipeline.adapters import tables as t
from tests.kafka.conftest import Deployment
from tests.support.world import AMELIA, IDENTITY_VALUES, ISLA, attendance


def test_avro_record_to_notification_row_and_output_record(deployment: Deployment) -> None:
    deployment.start_worker()
    event = attendance(AMELIA, arrived_at=datetime.now(UTC))
    producer = deployment.producer()
    deployment.send(producer, "self-harm-attendance", event, key=event["attendance_id"].encode())
    producer.flush()
    deployment.wait_for(lambda: deployment.count(t.Notification) == 2)
    with deployment.store.read() as session:
        row = session.exec(select(t.Event).where(t.Event.event_id == event["event_id"])).one()
        assert row.status == "processed" and row.match_outcome == "linked"
    deployment.wait_for(lambda: len(deployment.records("pathway-notifications", 3000)) == 2)
    for record in deployment.records("pathway-notifications"):
        name, value = codec.decode(record.value)
        assert name == "pathway-notification" and value["event_id"] == event["event_id"]
        assert value["recipient_role"] in ("dsl", "deputy_dsl")


def test_a_poison_record_is_dead_lettered_and_the_partition_keeps_flowing(deployment: Deployment) -> None:
    deployment.start_worker()
    producer = deployment.producer()
    good = [attendance(AMELIA, arrived_at=datetime.now(UTC)), attendance(ISLA, arrived_at=datetime.now(UTC))]
    deployment.send(producer, "self-harm-attendance", good[0], key=b"same")
    deployment.send(producer, "self-harm-attendance", b"Amelia Hartley 9990000018 not avro", key=b"same")
    unknown = b"\xc3\x01" + b"\x01" * 8 + b"\x00"
    deployment.send(producer, "self-harm-attendance", unknown, key=b"same")
    deployment.send(producer, "self-harm-attendance", good[1], key=b"same")
    producer.flush()
    deployment.wait_for(lambda: deployment.count(t.Event, t.Event.status == "processed") == 2)
    assert deployment.count(t.DeadLetter) == 2
    deployment.wait_for(lambda: len(deployment.records("dead-letters", 3000)) == 2)
    for record in deployment.records("dead-letters"):
        headers = {key: value.decode() for key, value in record.headers}
        assert headers["topic"] == deployment.prefix + "self-harm-attendance"
        assert {"reason", "partition", "offset"} <= set(headers)
        assert not any(secret in value for value in headers.values() for secret in IDENTITY_VALUES)


def test_two_workers_share_the_partitions_without_duplicates(deployment: Deployment) -> None:
    deployment.start_worker()
    deployment.start_worker()
    producer = deployment.producer()
    events = [attendance(AMELIA, arrived_at=datetime.now(UTC)) for _ in range(200)]
    for event in events:
        deployment.send(producer, "self-harm-attendance", event, key=event["attendance_id"].encode())
        deployment.send(producer, "self-harm-attendance", event, key=event["attendance_id"].encode())  # again
    producer.flush()
    deployment.wait_for(lambda: deployment.count(t.Event, t.Event.status == "processed") == 200, timeout=180)
    assert deployment.count(t.Notification, t.Notification.kind == "alert") == 400


def test_a_worker_killed_mid_stream_and_restarted_loses_and_repeats_nothing(deployment: Deployment) -> None:
    # Seconds-scale windows, so every acknowledgement deadline falls due while the stream is processed and
    # the sweep fires both ladder steps of each one, some before the kill and the rest after the restart.
    config = deployment.tmp / "council.yaml"
    config.write_text(
        "runtime: {sweep_interval_seconds: 1}\n"
        "timescales:\n"
        "  self_harm_acknowledgement: PT5S\n"
        "  self_harm_acknowledgement_ladder:\n"
        "    - {after: PT0S, notify: [dsl, deputy_dsl], action: reminder}\n"
        "    - {after: PT2S, notify: [SCIES], action: escalation}\n")
    deployment.env["SAFEGUARD_CONFIG"] = str(config)
    worker = deployment.start_worker()
    producer = deployment.producer()
    now = datetime.now(UTC)
    events = [attendance(AMELIA, arrived_at=now, attendance_id=f"ED-{uuid.uuid4().hex[:8]}") for _ in range(2000)]
    for event in events:
        deployment.send(producer, "self-harm-attendance", event, key=event["attendance_id"].encode())
    producer.flush()
    deployment.wait_for(lambda: deployment.count(t.Event) >= 200, timeout=120)
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(timeout=10)
    done_before = deployment.count(t.Event)
    assert done_before < 2000
    deployment.start_worker()
    deployment.wait_for(lambda: deployment.count(t.Event, t.Event.status == "processed") == 2000, timeout=400)
    ack = t.Deadline.kind == "self_harm_acknowledgement"
    deployment.wait_for(lambda: deployment.count(t.Deadline, ack, t.Deadline.escalation_level == 2) == 2000,
                        timeout=120)
    time.sleep(2)  # a step fired twice would show up in the next sweeps
    assert deployment.count(t.Event) == 2000
    assert deployment.count(t.Deadline, ack) == 2000
    school = t.Notification.recipient_role.in_(("dsl", "deputy_dsl"))  # type: ignore[attr-defined]
    assert deployment.count(t.Notification, t.Notification.kind == "alert", school) == 4000
    assert deployment.count(t.Notification, t.Notification.kind == "reminder", school) == 4000
    assert deployment.count(t.Notification, t.Notification.plan_key == "self_harm_acknowledgement:2:SCIES") == 2000
    with deployment.store.read() as session:
        # (The holiday rule may add a SCiES alert and deadline on some days; those are unique per event too.)
        fired = session.exec(select(t.Notification.event_id, t.Notification.kind, t.Notification.plan_key,
                                    t.Notification.recipient_role)).all()
        escalated = session.exec(select(t.AuditEntry.subject_id, t.AuditEntry.reason).where(
            t.AuditEntry.action == "escalated")).all()
    assert len(set(fired)) == len(fired) >= 10000
    assert {row[0] for row in fired} == {event["event_id"] for event in events}
    assert len(set(escalated)) == len(escalated)


def test_two_of_one_childs_events_on_two_workers_raise_one_trigger_meeting(deployment: Deployment) -> None:
    from tests.integration.test_missing_api import reported
    from tests.support.world import JACOB

    deployment.start_worker()
    deployment.start_worker()
    producer = deployment.producer()
    # Different episode keys land on different partitions, so the two workers can take them at once.
    for index, key in enumerate((b"a", b"b", b"c", b"d")):
        deployment.send(producer, "missing-reported", reported(JACOB, f"EP-{index}", grade="HIGH"), key=key)
    producer.flush()
    deployment.wait_for(lambda: deployment.count(t.Event, t.Event.status == "processed") == 4)
    assert deployment.count(t.Deadline, t.Deadline.kind == "trigger_meeting") == 1


def test_http_intake_answers_202_only_after_the_broker_acknowledged(deployment: Deployment) -> None:
    import socket
    import subprocess
    import time

    import httpx

    from tests.kafka.conftest import CLI

    token = subprocess.run([*CLI, "users", "add", "--role", "producer", "--email", "h@k.example"],
                           env=deployment.env, capture_output=True, text=True, check=True).stdout.split()[-1]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    api = subprocess.Popen([*CLI, "api", "--port", str(port)], env=deployment.env, start_new_session=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deployment.workers.append(api)
    deployment.start_worker()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the API did not start"
        time.sleep(0.2)
    headers = {"Authorization": f"Bearer {token}"}
    event = attendance(AMELIA, arrived_at=datetime.now(UTC))
    response = httpx.post(f"{base}/api/events/self-harm-attendance", json=event, headers=headers, timeout=20)
    assert response.status_code == 202 and response.json()["status"] == "accepted"
    on_topic = deployment.records("self-harm-attendance", 3000)
    assert [codec.decode(r.value)[1]["event_id"] for r in on_topic] == [event["event_id"]]
    bad = httpx.post(f"{base}/api/events/self-harm-attendance", json={**event, "consent": "MAYBE"}, headers=headers)
    assert bad.status_code == 422 and "MAYBE" not in bad.text
    deployment.wait_for(lambda: deployment.count(t.Notification) == 2)
    again = httpx.post(f"{base}/api/events/self-harm-attendance", json=event, headers=headers, timeout=20)
    assert again.status_code == 202 and again.json()["status"] == "processed"
    conflict = httpx.post(f"{base}/api/events/self-harm-attendance", json={**event, "admitted": True},
                          headers=headers, timeout=20)
    assert conflict.status_code == 409
    metrics = httpx.get(f"{base}/metrics").text
    assert "safeguard_events_dead_lettered_total" in metrics
    assert 'safeguard_consumer_lag{topic="self-harm-attendance"}' in metrics


def test_the_broker_stopped_and_restarted_mid_stream_loses_nothing(deployment: Deployment) -> None:
    deployment.start_worker()
    producer = deployment.producer()
    events = [attendance(AMELIA, arrived_at=datetime.now(UTC)) for _ in range(300)]
    for event in events[:150]:
        deployment.send(producer, "self-harm-attendance", event, key=event["attendance_id"].encode())
    producer.flush()
    # Mid-stream: the worker is up and consuming (on a loaded machine it can take longer to start than the
    # test takes to send, and a worker cannot start while the broker is away).
    deployment.wait_for(lambda: deployment.count(t.Event, t.Event.status == "processed") > 0)
    deployment.broker("stop-kafka")
    deployment.broker("start-kafka")
    producer = deployment.producer()
    for event in events[150:]:
        deployment.send(producer, "self-harm-attendance", event, key=event["attendance_id"].encode())
    producer.flush()
    deployment.wait_for(lambda: deployment.count(t.Event, t.Event.status == "processed") == 300, timeout=240)
    assert deployment.count(t.Notification, t.Notification.kind == "alert") == 600
