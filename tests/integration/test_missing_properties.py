"""Properties of the missing pathway under any order of events.

1. Whatever the interleaving, duplication and delay of one child's missing-episode events, the pipeline ends
   in the same state, never notifies twice, never escalates a closed deadline, keeps one return-interview
   deadline per found episode and at most one pending trigger meeting.
2. Whatever the order (and repetition) of one episode's events, and whether the child is known from the
   report or only from a front-door review afterwards, every deadline, its due time, its owner and every
   notification each escalation step sends come out as if the events had arrived in order about a child
   known from the start. Run on SQLite and on PostgreSQL."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlmodel import col, select

from consumers.intake_consumer import IntakeConsumer
from pipeline.adapters import tables as t
from pipeline.adapters.repository import Repository
from pipeline.service.missing import deadline_owner
from pipeline.service.reference import load
from tests.conftest import fresh_postgres_database
from tests.integration.conftest import Pipeline, start_pipeline
from tests.integration.test_missing_api import REPORTED, found, interview, reported
from tests.support.world import INVOLVEMENTS, JACOB, LILY_TYPO


def episode_events(index: int, spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    episode = f"EP-{index}"
    start = REPORTED + timedelta(days=3 * index)
    events: list[tuple[str, dict[str, Any]]] = [
        ("missing-reported", reported(JACOB, episode, at=start, grade=spec["grade"]))]
    if spec["regrade"]:
        events.append(("missing-updated", {"event_id": f"00000000-0000-4000-8000-{index:012d}", "episode_id": episode,
                                           "updated_at": (start + timedelta(hours=2)).isoformat(),
                                           "risk_grade": "HIGH", "exploitation_flags": ["CCE"]}))
    if spec["found_after"] is not None:
        found_at = start + timedelta(hours=spec["found_after"])
        events.append(("missing-found", found(episode, found_at)))
        if spec["interview"]:
            events.append(("return-interview-recorded", interview(episode, found_at + timedelta(hours=30))))
    return events


episodes = st.lists(st.fixed_dictionaries({
    "grade": st.sampled_from(["LOW", "MEDIUM", "HIGH"]), "regrade": st.booleans(),
    "found_after": st.none() | st.integers(min_value=1, max_value=40), "interview": st.booleans(),
}), min_size=1, max_size=3)


def replay(pipeline: Pipeline, batches: list[list[tuple[str, dict[str, Any]]]], step_hours: int) -> None:
    for batch in batches:
        for event_type, event in batch:
            assert pipeline.post_event(event, event_type).status_code == 202
        pipeline.clock.advance(hours=step_hours)
        pipeline.run()
        with pipeline.services.store.read() as session:
            open_meetings = session.exec(select(t.Deadline).where(t.Deadline.kind == "trigger_meeting",
                                                                  t.Deadline.state == "open")).all()
            assert len(open_meetings) <= 1
    pipeline.clock.advance(days=12)
    pipeline.run()


def final_state(pipeline: Pipeline) -> dict[str, Any]:
    with pipeline.services.store.read() as session:
        return {row.episode_id: (row.reported_at, row.last_seen_at, row.risk_grade, row.exploitation_flags,
                                 row.found_at, row.returned_to, row.return_interview_outcome)
                for row in session.exec(select(t.MissingEpisode)).all()}


def check_invariants(pipeline: Pipeline) -> None:
    with pipeline.services.store.read() as session:
        deadlines = session.exec(select(t.Deadline)).all()
        notifications = session.exec(select(t.Notification).where(t.Notification.pathway == "missing")).all()
        episodes_found = {e.episode_id for e in session.exec(select(t.MissingEpisode)).all() if e.found_at}
    interviews = Counter(d.subject_id for d in deadlines if d.kind == "return_interview")
    assert set(interviews) == episodes_found and set(interviews.values()) <= {1}
    by_id = {d.id: d for d in deadlines}
    for note in notifications:
        deadline = by_id.get(note.deadline_id or "")
        if deadline is not None and deadline.closed_at is not None and note.kind in ("reminder", "escalation"):
            assert note.created_at <= deadline.closed_at, f"{deadline.kind} escalated after it closed"
    keys = Counter((n.plan_key, n.recipient_role, n.recipient_ref) for n in notifications
                   if n.kind == "alert")
    assert set(keys.values()) <= {1}, [k for k, v in keys.items() if v > 1]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(specs=episodes, data=st.data())
def test_any_order_same_outcome(specs: list[dict[str, Any]], data: st.DataObject,
                                tmp_path_factory: pytest.TempPathFactory) -> None:
    events = [event for index, spec in enumerate(specs) for event in episode_events(index, spec)]
    shuffled = data.draw(st.permutations(events))
    duplicates = data.draw(st.lists(st.sampled_from(events), max_size=3))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(shuffled)), max_size=3)))
    mixed = shuffled + duplicates
    batches = [mixed[a:b] for a, b in zip([0, *cuts], [*cuts, len(mixed)], strict=True)]

    canonical = start_pipeline(Path(tmp_path_factory.mktemp("canonical")), web_passwords=False)
    replay(canonical, [events], step_hours=1)
    check_invariants(canonical)

    reordered = start_pipeline(Path(tmp_path_factory.mktemp("reordered")), web_passwords=False)
    replay(reordered, batches, step_hours=data.draw(st.integers(0, 30)))
    check_invariants(reordered)
    assert final_state(reordered) == final_state(canonical)
    for pipeline in (canonical, reordered):
        pipeline.services.store.dispose()


# ---- 2: owners and escalations follow the current facts, whatever the order -------------------------------

# Lily Ashworth (a twin: "Lilly" is an uncertain match between her and her sister) is open to a team whose
# name is as the case-management system exports it; her involvement is loaded for this property only.
LILY = {**LILY_TYPO, "given_name": "Lily"}
LILY_INVOLVEMENT = (",F999100100006,Lily,Ashworth,2012-03-03,CHILD_IN_NEED,kit.worker@northshire.gov.example,"
                    "CIN_TEAM_2,cin.manager@northshire.gov.example,,\n")

one_episode = st.fixed_dictionaries({
    "grade": st.sampled_from(["LOW", "MEDIUM", "HIGH"]),
    "update": st.none() | st.fixed_dictionaries({"risk_grade": st.sampled_from([None, "LOW", "HIGH"]),
                                                 "exploitation_flags": st.sampled_from([[], ["CCE"]])}),
    "found_after": st.none() | st.integers(min_value=1, max_value=20),
    "interview": st.booleans(),
    "assignee": st.sampled_from(["RHI_PROVIDER", "worker"]),
})


def one_episode_events(spec: dict[str, Any], child: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """One episode's events, every time before the last-seen time plus 24 hours (so no rule depends on when
    the pipeline happened to read them)."""
    events: list[tuple[str, dict[str, Any]]] = [("missing-reported", reported(child, "EP-P", grade=spec["grade"]))]
    if spec["update"] is not None:
        events.append(("missing-updated", {"event_id": str(uuid.uuid4()), "episode_id": "EP-P",
                                           "updated_at": (REPORTED + timedelta(hours=2)).isoformat(),
                                           **spec["update"]}))
    if spec["found_after"] is not None:
        found_at = REPORTED + timedelta(hours=spec["found_after"])
        events.append(("missing-found", found("EP-P", found_at)))
        if spec["interview"]:
            events.append(("return-interview-recorded", interview("EP-P", found_at + timedelta(hours=1))))
    return events


def _event_time(event: dict[str, Any]) -> datetime:
    stamp = next(event[k] for k in ("reported_at", "updated_at", "found_at", "recorded_at") if k in event)
    return datetime.fromisoformat(stamp)


@contextmanager
def owned_pipeline(backend: str, tmp: Path, services: dict[str, str] | None, assignee: str) -> Iterator[Pipeline]:
    overrides = {"missing": {"return_interview_assignee": assignee}}
    if backend == "postgresql":
        assert services is not None
        with fresh_postgres_database(services) as url:
            pipeline = start_pipeline(tmp, overrides, database_url=url, web_passwords=False)
            try:
                yield pipeline
            finally:
                pipeline.services.store.dispose()
        return
    pipeline = start_pipeline(tmp, overrides, web_passwords=False)
    try:
        yield pipeline
    finally:
        pipeline.services.store.dispose()


def consume(pipeline: Pipeline) -> None:
    IntakeConsumer(pipeline.services.store, pipeline.services.ctx, pipeline.clock).run_once(10_000)


def walk_the_ladders(pipeline: Pipeline, until: datetime) -> None:
    """Sweep at each instant a step falls due (so each fires at its own time), until nothing is left."""
    while True:
        with pipeline.services.store.read() as session:
            next_at = session.exec(select(t.Deadline.next_step_at).where(
                t.Deadline.state == "open", col(t.Deadline.next_step_at).is_not(None))
                .order_by(col(t.Deadline.next_step_at))).first()
        if next_at is None or next_at > until:
            return
        pipeline.clock.now = max(pipeline.clock.now, next_at)
        pipeline.run()


def outcome(pipeline: Pipeline) -> dict[str, Any]:
    """Every deadline (but the match review, which only an uncertain match has) with its due time, state and
    owner; every notification an escalation step sent; the episode's columns."""
    with pipeline.services.store.read() as session:
        repo = Repository(session, postgres=pipeline.services.store.is_postgres)
        policy, now = pipeline.services.ctx.policy, pipeline.clock.now
        people = {c.child_id: c.person_key for c in session.exec(select(t.Child)).all()}
        deadlines = {d.id: d for d in session.exec(select(t.Deadline)).all() if d.kind != "match_review"}
        # A deadline closed before any step fired chased nobody; whether it was written at all depends on
        # whether its closing event came first (found before reported), so it is left out.
        owned = sorted((d.kind, d.subject_id, d.due_at, d.state, d.escalation_level, d.closed_at,
                        people.get(d.child_id or ""), deadline_owner(repo, d, policy, now))
                       for d in deadlines.values() if d.state == "open" or d.escalation_level > 0)
        steps = sorted((deadlines[n.deadline_id].kind, n.plan_key, n.recipient_role, n.recipient_ref, n.created_at)
                       for n in session.exec(select(t.Notification).where(
                           col(t.Notification.kind).in_(["reminder", "escalation"]))).all()
                       if n.deadline_id in deadlines)
        episode = session.exec(select(t.MissingEpisode)).one()
        columns = (people.get(episode.child_id or ""), episode.reported_at, episode.last_seen_at, episode.risk_grade,
                   episode.exploitation_flags, episode.found_at, episode.return_interview_outcome,
                   episode.graded_high_at, episode.flagged_at)
    return {"deadlines": owned, "escalations": steps, "episode": columns}


def run_in_order(pipeline: Pipeline, events: list[tuple[str, dict[str, Any]]], start: datetime) -> None:
    pipeline.clock.now = start
    for event_type, event in events:
        assert pipeline.post_event(event, event_type).status_code == 202
    consume(pipeline)


def run_reordered(pipeline: Pipeline, batches: list[list[tuple[str, dict[str, Any]]]], start: datetime,
                  review: dict[str, Any] | None) -> None:
    pipeline.clock.now = start
    for batch in batches:
        for event_type, event in batch:
            assert pipeline.post_event(event, event_type).status_code == 202
        consume(pipeline)
    if review is not None:  # the front door links the report to the child once everything has arrived
        status = pipeline.get(f"/api/events/{review['event_id']}", "manager").json()
        assert status["status"] == "review", status
        with pipeline.services.store.read() as session:
            child_id = session.exec(select(t.Child.child_id).where(
                t.Child.person_key == "upn:F999100100006")).one()
        assert child_id in status["match"]["breakdown"]["candidate_child_ids"]
        decided = pipeline.client.post(f"/api/events/{review['event_id']}/review",
                                       json={"child_id": child_id, "reason": "police confirmed the address"},
                                       headers=pipeline.headers("front_door"))
        assert decided.status_code == 200, decided.text


ORDER_SETTINGS: dict[str, Any] = {
    "deadline": None, "phases": (Phase.explicit, Phase.reuse, Phase.generate),  # no shrinking: bounded time
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]}


@settings(max_examples=10, **ORDER_SETTINGS)
@given(spec=one_episode, data=st.data())
def test_owners_and_escalations_follow_the_current_facts_whatever_the_order_sqlite(
        spec: dict[str, Any], data: st.DataObject, tmp_path_factory: pytest.TempPathFactory) -> None:
    check_owners_and_escalations("sqlite", None, spec, data, tmp_path_factory)


# The same property as the SQLite run (10 examples); three on PostgreSQL check the store's own behaviour.
@settings(max_examples=3, **ORDER_SETTINGS)
@given(spec=one_episode, data=st.data())
def test_owners_and_escalations_follow_the_current_facts_whatever_the_order_postgresql(
        spec: dict[str, Any], data: st.DataObject, tmp_path_factory: pytest.TempPathFactory,
        real_services: dict[str, str]) -> None:
    check_owners_and_escalations("postgresql", real_services, spec, data, tmp_path_factory)


def check_owners_and_escalations(backend: str, services: dict[str, str] | None, spec: dict[str, Any],
                                 data: st.DataObject, tmp_path_factory: pytest.TempPathFactory) -> None:
    in_order = one_episode_events(spec, LILY)
    reviewed = data.draw(st.booleans(), label="a later review links the child")
    events = one_episode_events(spec, LILY_TYPO) if reviewed else [
        (kind, {**event, "event_id": str(uuid.uuid4())}) for kind, event in in_order]
    shuffled = data.draw(st.permutations(events), label="order")
    repeats = data.draw(st.lists(st.tuples(st.sampled_from(events), st.booleans()), max_size=3), label="repeats")
    # A repeat is the same event again, or the same content sent again under a new event id.
    mixed = shuffled + [(kind, {**event, "event_id": str(uuid.uuid4())} if resent else event)
                        for (kind, event), resent in repeats]
    cuts = sorted(data.draw(st.lists(st.integers(0, len(mixed)), max_size=3), label="batches"))
    batches = [mixed[a:b] for a, b in zip([0, *cuts], [*cuts, len(mixed)], strict=True)]
    start = max(_event_time(event) for _, event in events) + timedelta(minutes=1)
    until = start + timedelta(days=14)

    results = []
    for name in ("in order, child known", "reordered"):
        with owned_pipeline(backend, Path(tmp_path_factory.mktemp("owners")), services, spec["assignee"]) as p:
            with p.services.store.unit_of_work() as port:
                load(port, "involvements", INVOLVEMENTS + LILY_INVOLVEMENT, p.clock())
            if name == "reordered":
                run_reordered(p, batches, start, events[0][1] if reviewed else None)
            else:
                run_in_order(p, in_order, start)
            walk_the_ladders(p, until)
            results.append(outcome(p))
    expected, actual = results
    assert actual["episode"] == expected["episode"]
    assert actual["deadlines"] == expected["deadlines"]
    assert actual["escalations"] == expected["escalations"]
    if spec["found_after"] is not None and not spec["interview"]:  # chased: the child's people, not the front door
        owners = {d[7] for d in expected["deadlines"] if d[0] == "return_interview"}
        assert owners == {("worker", "kit.worker@northshire.gov.example") if spec["assignee"] == "worker"
                          else ("RHI_PROVIDER", "RHI_PROVIDER")}
        managers = {e[3] for e in expected["escalations"] if e[0] == "return_interview" and e[2] == "team_manager"}
        assert managers <= {"cin.manager@northshire.gov.example"}
