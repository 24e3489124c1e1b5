"""The scorecard with a known answer: a month of events (14 September to 16 October 2026, across the second
and third financial quarters) replayed through the real API, consumer, sweep and relay with a controlled
clock, then every measure asserted exactly for the partnership, per school, per team and per quarter, on
SQLite and on PostgreSQL.

Times are UTC; London is UTC+1 throughout (British Summer Time ends on 25 October).

Self-harm attendances (school alerts, due 12:00 London = 11:00 UTC on the next school day):
  S1 Amelia (Riverside 100001), Tue 15 Sep 19:00, acknowledged Wed 16 Sep 08:00: on time, 780 minutes.
  S2 Oliver (Hilltop 100002, early help), Tue 22 Sep 19:00; every delivery fails; acknowledged Wed 23 Sep 14:00:
     late, 1140 minutes.
  S3 Amelia, Mon 5 Oct 19:00, never acknowledged: late, and open at level 3 at the period's end.
  S5 Amelia, Thu 15 Oct 19:00, due Fri 16 Oct 11:00, acknowledged Mon 19 Oct (after the period): open and
     overdue at the period's end, so not on time; left out when asked before it was due.
Missing episodes (return interview due 72 hours after found):
  M1 Oliver, Mon 14 Sep, found 15 Sep 02:00, completed 16 Sep: within 72 hours.
  M2 Oliver, Mon 21 Sep, found 22 Sep 02:00, completed 26 Sep: after 72 hours.
  M3 Oliver, Mon 28 Sep: his third in 30 days (trigger meeting due Thu 1 Oct, held 1 Oct 10:00: on time),
     found 29 Sep 02:00, declined 30 Sep.
  M4 Jacob (Riverside, looked after, CLA_TEAM), Mon 5 Oct HIGH risk (trigger meeting held Mon 12 Oct: late;
     a strategy discussion nobody closes), found 5 Oct 23:00, never interviewed.
  M5 Amelia, Mon 12 Oct, found 13 Oct 00:00, not possible (attempts recorded) 15 Oct.
  M6 Amelia, Wed 14 Oct, found 15 Oct 06:00: interview due 18 Oct, after the period: left out.
Front door:
  R1 an uncertain match (Lilly Ashworth, twins on the roll), Wed 16 Sep 09:00, decided 10:00: on time.
  R2 the same, Wed 7 Oct 09:00, decided 15:00: late.
  W1 Oliver, consent refused with no reason, Thu 17 Sep 08:00 (due 17:00 London), closed at 12:00: on time.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import col, select

from consumers.intake_consumer import IntakeConsumer
from pipeline.adapters import tables as t
from pipeline.adapters.channels import RecordingChannel
from pipeline.domain.delivery import Outcome
from pipeline.service.relay import relay
from tests.integration.conftest import Pipeline
from tests.integration.test_missing_api import found, interview, reported
from tests.support.world import AMELIA, JACOB, LILY_TYPO, OLIVER, attendance


def at(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


FIRST, LAST = "2026-09-14", "2026-10-16"
FINAL = at(10, 20, 12)
Q2, Q3 = "2026-27 Q2", "2026-27 Q3"


class Replay:
    def __init__(self, pipeline: Pipeline) -> None:
        self.p = pipeline
        self.events: dict[str, str] = {}  # name -> event_id

    def post(self, name: str, body: dict[str, Any], event_type: str = "self-harm-attendance") -> None:
        response = self.p.post_event(body, event_type)
        assert response.status_code == 202, response.text
        self.events[name] = body["event_id"]

    def alert(self, name: str, role: str = "dsl") -> str:
        body = self.p.get(f"/api/events/{self.events[name]}", "manager").json()
        return next(n["id"] for n in body["notifications"] if n["recipient_role"] == role)

    def acknowledge(self, name: str, who: str) -> None:
        response = self.p.client.post(f"/api/notifications/{self.alert(name)}/acknowledge",
                                      json={"outcome": "spoken to the pupil"}, headers=self.p.headers(who))
        assert response.status_code == 200, response.text

    def review_none(self, name: str) -> None:
        response = self.p.client.post(f"/api/events/{self.events[name]}/review",
                                      json={"child_id": None, "reason": "neither twin: checked with school"},
                                      headers=self.p.headers("front_door"))
        assert response.status_code == 200, response.text

    def close_withheld(self, name: str) -> None:
        response = self.p.client.post(f"/api/events/{self.events[name]}/decision",
                                      json={"decision": "close", "reason": "already known to the school"},
                                      headers=self.p.headers("front_door"))
        assert response.status_code == 200, response.text

    def child_of(self, name: str) -> str:
        with self.p.services.store.read() as session:
            event = session.exec(select(t.Event).where(t.Event.event_id == self.events[name])).one()
        assert event.child_id is not None
        return event.child_id

    def meeting(self, name: str, held: datetime) -> None:
        self.post(f"meeting-{name}", {"event_id": str(uuid.uuid4()), "child_id": self.child_of(name),
                                      "held_at": held.isoformat(), "outcome": "plan agreed"},
                  "trigger-meeting-recorded")

    def post_with_failed_delivery(self, name: str, body: dict[str, Any]) -> None:
        """Every channel refuses this event's notifications (permanently) until the relay gives up on them;
        then the channels work again, so the recipients' teams are told."""
        self.post(name, body)
        services = self.p.services
        IntakeConsumer(services.store, services.ctx, self.p.clock).run_once(10_000)
        with services.store.read() as session:
            own = [n.id for n in session.exec(select(t.Notification).where(
                t.Notification.event_id == body["event_id"])).all()]
        assert len(own) == 2  # Hilltop's DSL (no deputy) and Oliver's early-help worker
        channels = [c for c in services.delivery.channels.values() if isinstance(c, RecordingChannel)]
        assert channels
        for channel in channels:
            channel.always_fail = Outcome.PERMANENT
        for _ in range(20):
            relay(services.store, services.delivery, services.publisher, self.p.clock(), batch=10_000)
            with services.store.read() as session:
                statuses = {n.status for n in session.exec(select(t.Notification).where(
                    col(t.Notification.id).in_(own))).all()}
            if statuses == {"failed"}:
                break
        assert statuses == {"failed"}
        for channel in channels:
            channel.always_fail = None

    def scorecard(self, by: str, **query: str) -> list[dict[str, Any]]:
        params = {"from": FIRST, "to": LAST, "by": by, **query}
        response = self.p.client.get("/api/scorecard", params=params, headers=self.p.headers("manager"))
        assert response.status_code == 200, response.text
        return list(response.json())


def replay_month(pipeline: Pipeline, checkpoint: Callable[[Replay], None]) -> Replay:
    r = Replay(pipeline)
    ep = {name: f"EP-{name}-{uuid.uuid4().hex[:6]}" for name in ("M1", "M2", "M3", "M4", "M5", "M6")}
    refused = {"consent": "REFUSED", "shared_without_consent_reason": None}
    actions: list[tuple[datetime, Callable[[], None]]] = [
        (at(9, 14, 18), lambda: r.post("M1", reported(OLIVER, ep["M1"], at(9, 14, 18)), "missing-reported")),
        (at(9, 15, 2), lambda: r.post("M1f", found(ep["M1"], at(9, 15, 2)), "missing-found")),
        (at(9, 15, 19), lambda: r.post("S1", attendance(AMELIA, at(9, 15, 19)))),
        (at(9, 16, 8), lambda: r.acknowledge("S1", "dsl")),
        (at(9, 16, 9), lambda: r.post("R1", attendance(LILY_TYPO, at(9, 16, 9)))),
        (at(9, 16, 10), lambda: r.review_none("R1")),
        (at(9, 16, 10, 30), lambda: r.post("M1i", interview(ep["M1"], at(9, 16, 10, 30)),
                                           "return-interview-recorded")),
        (at(9, 17, 8), lambda: r.post("W1", attendance(OLIVER, at(9, 17, 8), **refused))),
        (at(9, 17, 12), lambda: r.close_withheld("W1")),
        (at(9, 21, 18), lambda: r.post("M2", reported(OLIVER, ep["M2"], at(9, 21, 18)), "missing-reported")),
        (at(9, 22, 2), lambda: r.post("M2f", found(ep["M2"], at(9, 22, 2)), "missing-found")),
        (at(9, 22, 19), lambda: r.post_with_failed_delivery("S2", attendance(OLIVER, at(9, 22, 19)))),
        (at(9, 23, 14), lambda: r.acknowledge("S2", "dsl_other")),
        (at(9, 26, 10), lambda: r.post("M2i", interview(ep["M2"], at(9, 26, 10)), "return-interview-recorded")),
        (at(9, 28, 18), lambda: r.post("M3", reported(OLIVER, ep["M3"], at(9, 28, 18)), "missing-reported")),
        (at(9, 29, 2), lambda: r.post("M3f", found(ep["M3"], at(9, 29, 2)), "missing-found")),
        (at(9, 30, 10), lambda: r.post("M3i", interview(ep["M3"], at(9, 30, 10), "DECLINED"),
                                       "return-interview-recorded")),
        (at(10, 1, 10), lambda: r.meeting("M3", at(10, 1, 10))),
        (at(10, 5, 18), lambda: r.post("M4", reported(JACOB, ep["M4"], at(10, 5, 18), grade="HIGH"),
                                       "missing-reported")),
        (at(10, 5, 19), lambda: r.post("S3", attendance(AMELIA, at(10, 5, 19)))),
        (at(10, 5, 23), lambda: r.post("M4f", found(ep["M4"], at(10, 5, 23)), "missing-found")),
        (at(10, 7, 9), lambda: r.post("R2", attendance(LILY_TYPO, at(10, 7, 9)))),
        (at(10, 7, 15), lambda: r.review_none("R2")),
        (at(10, 12, 10), lambda: r.meeting("M4", at(10, 12, 10))),
        (at(10, 12, 18), lambda: r.post("M5", reported(AMELIA, ep["M5"], at(10, 12, 18)), "missing-reported")),
        (at(10, 13, 0), lambda: r.post("M5f", found(ep["M5"], at(10, 13, 0)), "missing-found")),
        (at(10, 14, 18), lambda: r.post("M6", reported(AMELIA, ep["M6"], at(10, 14, 18)), "missing-reported")),
        (at(10, 15, 6), lambda: r.post("M6f", found(ep["M6"], at(10, 15, 6)), "missing-found")),
        (at(10, 15, 12), lambda: r.post("M5i", interview(ep["M5"], at(10, 15, 12), "NOT_POSSIBLE", attempts=[
            {"at": at(10, 14, 9).isoformat(), "method": "home visit"}]), "return-interview-recorded")),
        (at(10, 15, 19), lambda: r.post("S5", attendance(AMELIA, at(10, 15, 19)))),
        (at(10, 16, 10), lambda: checkpoint(r)),
        (at(10, 16, 20), lambda: None),  # the sweep runs in the evening, inside the period
        (at(10, 19, 9), lambda: r.acknowledge("S5", "dsl")),
    ]
    daily = [(datetime(2026, 9, 14, 7, tzinfo=UTC) + timedelta(days=n), lambda: None) for n in range(37)]
    for when, action in sorted([*actions, *daily], key=lambda item: item[0]):
        pipeline.clock.now = when
        pipeline.run()
        action()
        pipeline.run()
    pipeline.clock.now = FINAL
    pipeline.run()
    return r


def ratio(numerator: int, denominator: int) -> dict[str, Any]:
    return {"numerator": numerator, "denominator": denominator,
            "value": round(numerator / denominator, 4) if denominator else None}


def empty(group: str) -> dict[str, Any]:
    return {"group": group, **{key: ratio(0, 0) for key in (
        "ack_on_time", "rhi_within_72h", "rhi_offered", "trigger_meeting_on_time", "reviews_on_time",
        "withheld_decided_on_time")}, "median_minutes_to_ack": {"value": None, "count": 0},
        "repeat_missing_children": 0, "open_escalations": {"1": 0, "2": 0, "3": 0}, "delivery_failures": 0}


def row(group: str, **measures: Any) -> dict[str, Any]:
    body = empty(group)
    for key, value in measures.items():
        body[key] = ratio(*value) if isinstance(value, tuple) else value
    return body


EXPECTED_ALL = row("ALL", ack_on_time=(1, 4), median_minutes_to_ack={"value": 960.0, "count": 2},
                   rhi_within_72h=(1, 5), rhi_offered=(4, 5), trigger_meeting_on_time=(1, 2),
                   repeat_missing_children=1, reviews_on_time=(1, 2), withheld_decided_on_time=(1, 1),
                   open_escalations={"1": 0, "2": 1, "3": 3}, delivery_failures=2)

EXPECTED = {
    "school": [
        row("100001", ack_on_time=(1, 3), median_minutes_to_ack={"value": 780.0, "count": 1},
            rhi_within_72h=(0, 2), rhi_offered=(1, 2), trigger_meeting_on_time=(0, 1),
            open_escalations={"1": 0, "2": 1, "3": 3}),
        row("100002", ack_on_time=(0, 1), median_minutes_to_ack={"value": 1140.0, "count": 1},
            rhi_within_72h=(1, 3), rhi_offered=(3, 3), trigger_meeting_on_time=(1, 1), repeat_missing_children=1,
            withheld_decided_on_time=(1, 1), delivery_failures=2),
        row("NONE", reviews_on_time=(1, 2)),
        EXPECTED_ALL,
    ],
    "team": [
        row("CLA_TEAM", rhi_within_72h=(0, 1), rhi_offered=(0, 1), trigger_meeting_on_time=(0, 1),
            open_escalations={"1": 0, "2": 1, "3": 1}),
        row("EARLY_HELP", ack_on_time=(0, 1), median_minutes_to_ack={"value": 1140.0, "count": 1},
            rhi_within_72h=(1, 3), rhi_offered=(3, 3), trigger_meeting_on_time=(1, 1), repeat_missing_children=1,
            withheld_decided_on_time=(1, 1), delivery_failures=2),
        row("UNALLOCATED", ack_on_time=(1, 3), median_minutes_to_ack={"value": 780.0, "count": 1},
            rhi_within_72h=(0, 1), rhi_offered=(1, 1), reviews_on_time=(1, 2),
            open_escalations={"1": 0, "2": 0, "3": 2}),
        EXPECTED_ALL,
    ],
    "quarter": [
        row(Q2, ack_on_time=(1, 2), median_minutes_to_ack={"value": 960.0, "count": 2}, rhi_within_72h=(1, 3),
            rhi_offered=(3, 3), repeat_missing_children=1, reviews_on_time=(1, 1), withheld_decided_on_time=(1, 1),
            delivery_failures=2),
        row(Q3, ack_on_time=(0, 2), rhi_within_72h=(0, 2), rhi_offered=(1, 2), trigger_meeting_on_time=(1, 2),
            reviews_on_time=(0, 1), open_escalations={"1": 0, "2": 1, "3": 3}),
        EXPECTED_ALL,
    ],
}


def differences(actual: list[dict[str, Any]], expected: list[dict[str, Any]]) -> list[tuple[str, str, Any, Any]]:
    """(group, measure, actual, expected) wherever they differ, for a readable failure."""
    found = {row["group"]: row for row in actual}
    wanted = {row["group"]: row for row in expected}
    return [(group, key, found.get(group, {}).get(key), wanted.get(group, {}).get(key))
            for group in sorted(set(found) | set(wanted)) for key in (*wanted.get(group, {}), *found.get(group, {}))
            if found.get(group, {}).get(key) != wanted.get(group, {}).get(key)]


def test_a_month_of_events_gives_a_known_scorecard(pipeline: Pipeline) -> None:
    seen_before_due: list[dict[str, Any]] = []
    replay = replay_month(pipeline, lambda r: seen_before_due.extend(r.scorecard("quarter")))

    # Asked at 10:00 on 16 October, S5's deadline (11:00) was not yet due: left out, not counted late.
    before = {row["group"]: row for row in seen_before_due}
    assert before["ALL"]["ack_on_time"] == ratio(1, 3)
    assert before[Q3]["ack_on_time"] == ratio(0, 1)

    for by, expected in EXPECTED.items():
        actual = replay.scorecard(by)
        assert actual == expected, (by, differences(actual, expected))


def test_the_scorecard_is_for_managers_and_checks_its_query(pipeline: Pipeline) -> None:
    for who in ("dsl", "worker", "front_door", "producer", "admin"):
        assert pipeline.get(f"/api/scorecard?from={FIRST}&to={LAST}&by=school", who).status_code == 403
    assert pipeline.client.get(f"/api/scorecard?from={FIRST}&to={LAST}").status_code == 401
    assert pipeline.get(f"/api/scorecard?from={FIRST}&to={LAST}&by=week", "manager").status_code == 422
    assert pipeline.get(f"/api/scorecard?from=2026-13-01&to={LAST}", "manager").status_code == 422
    assert pipeline.get(f"/api/scorecard?from={LAST}&to={FIRST}", "manager").status_code == 422
    body = pipeline.get(f"/api/scorecard?from={FIRST}&to={LAST}&by=quarter", "manager").json()
    assert [r["group"] for r in body] == [Q2, Q3, "ALL"]
    assert body[-1] == empty("ALL")
