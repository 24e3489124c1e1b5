"""The Kafka worker's record handling (the body of the faust agents), on both stores, without a broker:
a record that lost a deadlock to another worker is tried again; a handler bug keeps only its event for a later
try (accepted, never a dead letter), the intake record the HTTP intake stored is the row processed, and a batch right
after PostgreSQL dropped every connection (a restart) is processed once, with nothing lost or dead-lettered."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import event as sa_event
from sqlalchemy.exc import OperationalError
from sqlmodel import select

from consumers import kafka_records
from consumers.kafka_records import Delivery, handle_batch
from pipeline import codec
from pipeline.adapters import tables as t
from pipeline.adapters.faust_codec import Decoded
from pipeline.adapters.publisher import BrokerUnavailable
from tests.integration.conftest import Pipeline, start_pipeline
from tests.support.store_ports import statements_run
from tests.support.world import AMELIA, ISLA, JACOB, OLIVER, UNKNOWN, attendance

TOPIC = "self-harm-attendance"


def delivery(event: dict[str, Any], offset: int) -> Delivery:
    return Delivery(TOPIC, TOPIC, 0, offset, codec.encode(TOPIC, codec.from_json(TOPIC, event)))


class _Deadlock(Exception):
    sqlstate = "40P01"


def test_a_record_that_lost_a_deadlock_is_retried_and_processed_once(pipeline: Pipeline,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = attendance(AMELIA), attendance(ISLA)
    real = kafka_records.process
    losses = {first["event_id"]: 2}  # loses twice, then wins

    def contended(repo: Any, event: t.Event, ctx: Any, now: Any) -> None:
        real(repo, event, ctx, now)  # effects written first, so the retry proves they were rolled back
        if losses.get(event.event_id, 0) > 0:
            losses[event.event_id] -= 1
            raise OperationalError("UPDATE child ...", {}, _Deadlock())

    monkeypatch.setattr(kafka_records, "process", contended)
    monkeypatch.setattr(kafka_records.time, "sleep", lambda _seconds: None)
    assert handle_batch(pipeline.services, [delivery(first, 0), delivery(second, 1)]) == ["processed", "processed"]
    with pipeline.services.store.read() as session:
        assert session.exec(select(t.DeadLetter)).all() == []
        events = session.exec(select(t.Event)).all()
        assert sorted(e.event_id for e in events) == sorted([first["event_id"], second["event_id"]])
        assert all(e.status == "processed" for e in events)
        for event, roles in ((first, ["deputy_dsl", "dsl"]), (second, ["SCIES"])):  # Isla's school is independent
            alerts = session.exec(select(t.Notification).where(t.Notification.event_id == event["event_id"])).all()
            assert sorted(n.recipient_role for n in alerts) == roles
            matched = session.exec(select(t.AuditEntry).where(t.AuditEntry.subject_id == event["event_id"],
                                                              t.AuditEntry.action == "matched")).all()
            assert len(matched) == 1


def test_a_handler_bug_keeps_its_event_for_a_retry_and_the_rest_are_processed(
        pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    good, broken, later = attendance(AMELIA), attendance(ISLA), attendance(AMELIA)
    real = kafka_records.process

    def buggy(repo: Any, event: t.Event, ctx: Any, now: Any) -> None:
        real(repo, event, ctx, now)
        if event.event_id == broken["event_id"]:
            raise KeyError("simulated bug")

    monkeypatch.setattr(kafka_records, "process", buggy)
    outcomes = handle_batch(pipeline.services, [delivery(good, 0), delivery(broken, 1), delivery(later, 2)])
    assert outcomes == ["processed", "retrying", "processed"]
    assert handle_batch(pipeline.services, [delivery(good, 0)]) == ["duplicate"]  # redelivered: effects once
    assert handle_batch(pipeline.services, [delivery(broken, 1)]) == ["retrying"]  # left to the retry timer
    with pipeline.services.store.read() as session:
        assert session.exec(select(t.DeadLetter)).all() == []
        kept = session.exec(select(t.Event).where(t.Event.event_id == broken["event_id"])).one()
        assert (kept.status, kept.attempts, kept.error) == ("accepted", 1, "KeyError")
        assert kept.next_attempt_at is not None and kept.held_at is None
        assert session.exec(select(t.Notification).where(t.Notification.event_id == broken["event_id"])).all() == []
        assert len(session.exec(select(t.Notification).where(t.Notification.event_id == good["event_id"])).all()) == 2
        assert session.exec(select(t.Outbox).where(t.Outbox.topic == "dead-letters")).all() == []

    monkeypatch.setattr(kafka_records, "process", real)  # fixed: the workers' retry timer processes it once
    pipeline.clock.advance(minutes=1)
    from consumers.intake_consumer import IntakeConsumer

    retries = IntakeConsumer(pipeline.services.store, pipeline.services.ctx, pipeline.clock, retries_only=True)
    assert retries.run_once() == 1 and retries.run_once() == 0
    with pipeline.services.store.read() as session:
        assert session.exec(select(t.Event).where(t.Event.event_id == broken["event_id"])).one().status == "processed"
        assert len(session.exec(select(t.Notification).where(t.Notification.event_id == broken["event_id"])).all()) == 1


def test_the_intake_record_is_the_row_processed_and_keeps_its_producer(pipeline: Pipeline) -> None:
    """On Kafka the HTTP intake stores the event (with its producer) when it sends it; the worker processes
    that row, and a record whose event_id was stored with other content is a dead letter."""
    from pipeline.service.intake import Submission

    event = attendance(AMELIA)
    body = json.dumps(event).encode()
    record = pipeline.services.intake.validate(Submission(TOPIC, body, producer_id=7))
    assert isinstance(record, dict)
    assert pipeline.services.intake.record_sent(TOPIC, record, producer_id=7).body["status"] == "accepted"
    new_only = IntakeConsumerProbe(pipeline)
    assert new_only.pending() == []  # on Kafka the agents bring new events, not the retry timer
    sent = Delivery(TOPIC, TOPIC, 0, 0, codec.encode(TOPIC, codec.from_json(TOPIC, event)), producer_id=7)
    assert handle_batch(pipeline.services, [sent]) == ["processed"]
    with pipeline.services.store.read() as session:
        rows = session.exec(select(t.Event)).all()
        assert [(row.event_id, row.status, row.producer_id) for row in rows] == [(event["event_id"], "processed", 7)]
    other = {**event, "admitted": True}
    assert handle_batch(pipeline.services, [delivery(other, 1)]) == ["dead_lettered"]
    with pipeline.services.store.read() as session:
        assert [letter.reason for letter in session.exec(select(t.DeadLetter)).all()] == [kafka_records.CONFLICT]


class IntakeConsumerProbe:
    def __init__(self, pipeline: Pipeline) -> None:
        from consumers.intake_consumer import IntakeConsumer

        self.consumer = IntakeConsumer(pipeline.services.store, pipeline.services.ctx, pipeline.clock,
                                       retries_only=True)

    def pending(self) -> list[int]:
        return self.consumer.pending(10)


class _Sender:
    """Stands in for the broker in this tier (the real one is in tests/kafka)."""

    def __init__(self, reachable: bool) -> None:
        self.reachable = reachable
        self.sent: list[tuple[str, int | None]] = []

    def send(self, event_type: str, record: dict[str, Any], producer_id: int | None = None) -> None:
        if not self.reachable:
            raise BrokerUnavailable("KafkaTimeoutError")
        self.sent.append((record["event_id"], producer_id))


def test_the_kafka_intake_answers_503_with_retry_after_while_the_broker_is_away(pipeline: Pipeline) -> None:
    event = attendance(AMELIA)
    pipeline.services.event_sender = _Sender(reachable=False)
    response = pipeline.post_event(event)
    assert response.status_code == 503 and response.headers["retry-after"] == "5"
    assert "Amelia" not in response.text
    assert pipeline.get(f"/api/events/{event['event_id']}", "producer").status_code == 404  # nothing stored
    sender = pipeline.services.event_sender = _Sender(reachable=True)
    response = pipeline.post_event(event)  # the producer's retry
    assert response.status_code == 202 and response.json()["status"] == "accepted"
    assert pipeline.get(f"/api/events/{event['event_id']}", "producer").json()["status"] == "accepted"
    assert pipeline.get(f"/api/events/{event['event_id']}", "manager").json()["status"] == "accepted"
    assert pipeline.get(f"/api/events/{event['event_id']}", "producer2").status_code == 404
    assert pipeline.post_event(event).status_code == 202 and len(sender.sent) == 1  # known: not sent again
    assert pipeline.post_event(event, who="producer2").status_code == 409  # another producer's event_id


def test_a_batch_is_decoded_once_and_its_new_events_written_together(pipeline: Pipeline,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """As the faust agents hand it over: each record decoded by the faust codec, which the handler takes rather
    than decoding the stored JSON again; and the batch's new event rows written in one statement at its commit,
    not flushed record by record."""
    events = [attendance(AMELIA if n % 2 else ISLA) for n in range(6)]
    batch = []
    for offset, event in enumerate(events):
        value = codec.encode(TOPIC, codec.from_json(TOPIC, event))
        batch.append(Delivery(TOPIC, TOPIC, 0, offset, value, Decoded(*codec.decode(value, expected=TOPIC))))

    def second_decode(name: str, obj: Any) -> dict[str, Any]:
        raise AssertionError(f"{name} decoded again from its stored JSON")

    monkeypatch.setattr(codec, "from_json", second_decode)
    steps: list[str] = []  # "handled" per record, "insert" per INSERT INTO event statement, in order
    real = kafka_records.process

    def handled(repo: Any, event: t.Event, ctx: Any, now: Any) -> None:
        real(repo, event, ctx, now)
        steps.append("handled")

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO EVENT "):
            steps.append("insert")

    monkeypatch.setattr(kafka_records, "process", handled)

    engine = pipeline.services.store.engine
    sa_event.listen(engine, "before_cursor_execute", count)
    try:
        assert handle_batch(pipeline.services, batch) == ["processed"] * len(events)
    finally:
        sa_event.remove(engine, "before_cursor_execute", count)
    inserts = steps[len(events):]
    assert steps[:len(events)] == ["handled"] * len(events) and set(inserts) == {"insert"}
    # One statement for all of them, at the commit (an executemany: on PostgreSQL one multi-row INSERT).
    assert len(inserts) == 1
    with pipeline.services.store.read() as session:
        stored = session.exec(select(t.Event)).all()
        assert sorted(e.event_id for e in stored) == sorted(e["event_id"] for e in events)
        assert all(e.status == "processed" and e.processed_at is not None for e in stored)


def _candidate_look_ups(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The given names the matching index is asked for candidates of, from now on, in order."""
    index = pipeline.services.ctx.index
    looked_up: list[str] = []
    real_candidates_at = index.candidates_at  # what the matcher asks (``candidates`` asks it too)

    def candidates_at(identity: Any, *args: Any, **kwargs: Any) -> Any:
        looked_up.append(identity.given_name)
        return real_candidates_at(identity, *args, **kwargs)

    monkeypatch.setattr(index, "candidates_at", candidates_at)
    return looked_up


def test_a_batchs_children_are_matched_once_and_issued_together(pipeline: Pipeline,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The children of a batch's attendances are resolved before its records are handled: each child matched once
    (not again by its handler), the new child ids in one insert and the linked pupils in one read on PostgreSQL;
    the effects are each record's own, as handled one by one."""
    children = [AMELIA, OLIVER, AMELIA, ISLA, UNKNOWN, JACOB]
    events = [attendance(child) for child in children]
    looked_up = _candidate_look_ups(pipeline, monkeypatch)
    with statements_run(pipeline.services.store) as statements:
        assert handle_batch(pipeline.services, [delivery(e, n) for n, e in enumerate(events)]) == \
            ["processed"] * len(events)
    assert sorted(looked_up) == sorted({child["given_name"] for child in children})  # once per child
    if pipeline.services.store.is_postgres:
        assert len([s for s in statements if s.startswith("INSERT INTO child")]) == 1, statements
        assert len([s for s in statements if "WHERE pupil.upn" in " ".join(s.split())]) == 1, statements
    with pipeline.services.store.read() as session:
        stored = {e.event_id: e for e in session.exec(select(t.Event)).all()}
        child_of = {child["given_name"]: stored[event["event_id"]].child_id for child, event in zip(
            children, events, strict=True)}
        assert child_of["Zebedee"] is None and len({child_of[name] for name in child_of if name != "Zebedee"}) == 4
        assert stored[events[0]["event_id"]].child_id == stored[events[2]["event_id"]].child_id  # Amelia twice
        issued = {row.child_id: row.person_key for row in session.exec(select(t.Child)).all()}
        assert issued[child_of["Amelia"]] == "upn:A999100100001" and issued[child_of["Jacob"]] == "upn:G999100100008"
        for event, roles in ((events[0], ["deputy_dsl", "dsl"]), (events[3], ["SCIES"])):
            alerts = session.exec(select(t.Notification).where(t.Notification.event_id == event["event_id"])).all()
            assert sorted(n.recipient_role for n in alerts) == roles
    assert handle_batch(pipeline.services, [delivery(events[1], 9)]) == ["duplicate"]


def test_a_batchs_missing_reports_lock_their_episodes_together_and_match_once(pipeline: Pipeline,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Missing reports in one batch: their episodes locked (and created) together before the records are handled,
    their children matched once each and issued together; a report on an episode that already has its child is
    not matched; each episode ends up with its own child, as handled one by one."""
    reported = "missing-reported"

    def report(child: dict[str, Any], episode: str, grade: str = "MEDIUM") -> dict[str, Any]:
        return {"event_id": str(uuid.uuid4()), "episode_id": episode, "force_code": "NS01",
                "reported_at": "2026-11-24T18:00:00+00:00", "last_seen_at": "2026-11-24T16:00:00+00:00",
                "child": dict(child), "risk_grade": grade, "missing_from": "CARE", "exploitation_flags": []}

    def deliver(event: dict[str, Any], offset: int) -> Delivery:
        return Delivery(reported, reported, 0, offset, codec.encode(reported, codec.from_json(reported, event)))

    assert handle_batch(pipeline.services, [deliver(report(JACOB, "EP-0"), 0)]) == ["processed"]
    events = [report(AMELIA, "EP-1", "HIGH"), report(OLIVER, "EP-2"), report(JACOB, "EP-0"), report(AMELIA, "EP-3")]
    looked_up = _candidate_look_ups(pipeline, monkeypatch)
    with statements_run(pipeline.services.store) as statements:
        assert handle_batch(pipeline.services, [deliver(e, n + 1) for n, e in enumerate(events)]) == \
            ["processed"] * len(events)
    assert sorted(looked_up) == ["Amelia", "Amelia", "Oliver"]  # Amelia urgent and not; EP-0 has Jacob already
    if pipeline.services.store.is_postgres:
        assert len([s for s in statements if s.startswith("INSERT INTO child")]) == 1, statements
        assert len([s for s in statements if "FROM missingepisode" in s and "FOR UPDATE" in s]) == 1, statements
    with pipeline.services.store.read() as session:
        episodes = {e.episode_id: e.child_id for e in session.exec(select(t.MissingEpisode)).all()}
        people = {row.child_id: row.person_key for row in session.exec(select(t.Child)).all()}
    assert {people[episodes[e]] for e in ("EP-1", "EP-3")} == {"upn:A999100100001"}
    assert people[episodes["EP-2"]] == "upn:B999100100002" and people[episodes["EP-0"]] == "upn:G999100100008"


@pytest.fixture
def postgres_pipeline(postgres_url: str, tmp_path: Path) -> Iterator[Pipeline]:
    p = start_pipeline(tmp_path, database_url=postgres_url)
    yield p
    p.services.store.dispose()


def test_a_batch_right_after_postgresql_dropped_its_connections_is_processed_once(
        postgres_pipeline: Pipeline) -> None:
    # The pool pings only a connection idle over store.PING_IDLE_SECONDS, so the pooled connection the next batch
    # takes here (used a moment ago) is dead and not pinged: its first statement fails, and the batch must go again
    # on a new connection, nothing committed twice, nothing dead-lettered, no attempt counted against the event.
    services = postgres_pipeline.services
    first, second = attendance(AMELIA), attendance(ISLA)
    assert handle_batch(services, [delivery(first, 0)]) == ["processed"]
    url = services.store.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as other:
        dropped = other.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                                " WHERE pid <> pg_backend_pid() AND datname = current_database()").fetchone()
    assert dropped is not None and dropped[0] >= 1

    assert handle_batch(services, [delivery(second, 1)]) == ["processed"]
    assert handle_batch(services, [delivery(first, 0)]) == ["duplicate"]
    with services.store.read() as session:
        events = session.exec(select(t.Event)).all()
        assert sorted(e.event_id for e in events) == sorted([first["event_id"], second["event_id"]])
        assert all(e.status == "processed" and not e.attempts for e in events)
        assert session.exec(select(t.DeadLetter)).all() == []


def test_a_trigger_meeting_another_writer_raised_after_the_batch_read_ahead_is_kept_and_no_event_is_lost(
        postgres_pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """A batch decides its trigger meetings from what it read ahead under its locks; a writer that takes no child
    lock (the sweep) may store the child's pending meeting in between. The batch's own then clashes with it at the
    write, and the worker takes the batch again one record at a time, where the guarded insert keeps the other's:
    every record processed, one pending meeting for the child, nothing dead-lettered or left for a retry."""
    from pipeline.adapters.repository import Repository
    from pipeline.adapters.store import Store
    from pipeline.domain.model import DeadlineKind, LadderStep, PlannedDeadline

    services = postgres_pipeline.services
    reported = "missing-reported"

    def report(episode: str, grade: str) -> Delivery:
        record = {"event_id": str(uuid.uuid4()), "episode_id": episode, "force_code": "NS01",
                  "reported_at": "2026-11-24T18:00:00+00:00", "last_seen_at": "2026-11-24T16:00:00+00:00",
                  "child": dict(AMELIA), "risk_grade": grade, "missing_from": "CARE", "exploitation_flags": []}
        return Delivery(reported, reported, 0, 0, codec.encode(reported, codec.from_json(reported, record)))

    assert handle_batch(services, [report("EP-0", "LOW")]) == ["processed"]  # Amelia's child, no meeting
    with services.store.read() as session:
        child = session.exec(select(t.MissingEpisode.child_id).where(t.MissingEpisode.episode_id == "EP-0")).one()
    assert child is not None
    real = Repository._read_meetings_ahead
    raised: list[str] = []
    sweeper = Store(services.store.url)

    def then_the_sweep_raises_one(repo: Repository) -> None:
        real(repo)
        if raised:
            return  # once (the sweep's own unit of work comes through here too)
        raised.append("")
        due = postgres_pipeline.clock()
        with sweeper.unit_of_work() as sweep:  # another process's connection, committed now
            made = sweep.add_deadline(PlannedDeadline(DeadlineKind.TRIGGER_MEETING, "child", due,
                                                      (LadderStep(due, ("assignee",), "reminder"),)),
                                      "trigger:EP-SWEPT", due, event_id=None, child_id=child, once=True)
            assert made is not None
            raised[0] = made.id

    monkeypatch.setattr(Repository, "_read_meetings_ahead", then_the_sweep_raises_one)
    caplog.set_level(logging.INFO, logger=kafka_records.log.name)
    assert handle_batch(services, [report("EP-1", "HIGH"), report("EP-2", "HIGH")]) == ["processed", "processed"]
    sweeper.dispose()
    assert raised and raised[0]
    assert "a batch of 2 records failed together (IntegrityError)" in caplog.text  # then one by one
    with services.store.read() as session:
        meetings = session.exec(select(t.Deadline).where(t.Deadline.kind == "trigger_meeting",
                                                         t.Deadline.child_id == child)).all()
        assert [(m.id, m.state) for m in meetings] == [(raised[0], "open")]
        assert session.exec(select(t.DeadLetter)).all() == []
        events = session.exec(select(t.Event)).all()
        assert len(events) == 3 and all(e.status == "processed" and not e.attempts for e in events)
