"""The overdue board through the API: an item appears when its deadline passes, with the child, school, owner,
lateness, level and who has been told; filters and counts; every named row viewed is audited; it goes once
closed. And every CSV neutralises cells a spreadsheet would take for a formula."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

from sqlmodel import select

from pipeline.adapters import tables as t
from pipeline.service.reference import load
from tests.integration.conftest import Pipeline
from tests.integration.test_missing_api import found, reported
from tests.support.world import AMELIA, JACOB, SCHOOLS, attendance

ARRIVED = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)  # Tuesday evening; due Wednesday 12:00 (UTC in winter)
DUE = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def board(pipeline: Pipeline, query: str = "") -> dict:  # type: ignore[type-arg]
    response = pipeline.get(f"/api/overdue{query}", "manager")
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_an_unacknowledged_alert_is_on_the_board_from_its_deadline_until_it_is_acknowledged(
        pipeline: Pipeline) -> None:
    pipeline.clock.now = ARRIVED
    event = attendance(AMELIA, ARRIVED)
    assert pipeline.post_event(event).status_code == 202
    pipeline.run()
    pipeline.clock.now = DUE - timedelta(minutes=1)
    pipeline.run()
    assert board(pipeline) == {"counts_by_level": {}, "items": []}

    pipeline.clock.now = DUE + timedelta(hours=2, minutes=30)  # reminder at 12:00, SCiES at 14:00
    pipeline.run()
    body = board(pipeline)
    assert body["counts_by_level"] == {"2": 1}
    [item] = body["items"]
    assert item["kind"] == "self_harm_acknowledgement"
    assert item["kind_in_words"] == "School acknowledgement of a self-harm alert"
    assert item["pathway"] == "self-harm"
    assert item["child_name"] == "Amelia Hartley"
    assert (item["school_urn"], item["school_name"]) == ("100001", "Riverside Primary School")
    assert item["team"] == "UNALLOCATED"
    assert item["owner"] == "dsl: 100001"
    assert item["due_at"] == DUE.isoformat()
    assert item["minutes_late"] == 150
    assert item["escalation_level"] == 2
    assert item["told"] == ["deputy_dsl", "dsl", "SCIES"]
    assert item["case"] == f"/overdue/cases/{item['deadline_id']}"

    with pipeline.services.store.read() as session:
        views = session.exec(select(t.AuditEntry).where(t.AuditEntry.action == "viewed",
                                                        t.AuditEntry.actor == "manager@test.example")).all()
    assert [(v.subject_id, v.reason) for v in views] == [  # the empty board named no one
        (item["child_id"], f"overdue board row (deadline {item['deadline_id']})")]

    assert board(pipeline, "?pathway=missing")["items"] == []
    assert board(pipeline, "?kind=self_harm_acknowledgement&level=2&school=100001")["items"][0]["deadline_id"] == \
        item["deadline_id"]
    assert board(pipeline, "?level=1")["items"] == []
    assert board(pipeline, "?team=CLA_TEAM")["items"] == []
    assert pipeline.get("/api/overdue?pathway=other", "manager").status_code == 422
    for who in ("dsl", "worker", "front_door", "producer", "admin"):
        assert pipeline.get("/api/overdue", who).status_code == 403

    alert = next(n["id"] for n in pipeline.get(f"/api/events/{event['event_id']}", "manager").json()["notifications"]
                 if n["recipient_role"] == "dsl")
    assert pipeline.client.post(f"/api/notifications/{alert}/acknowledge", json={"outcome": "seen"},
                                headers=pipeline.headers("dsl")).status_code == 200
    assert board(pipeline) == {"counts_by_level": {}, "items": []}


def test_missing_items_are_oldest_first_owned_and_paged(pipeline: Pipeline) -> None:
    reported_at = datetime(2026, 11, 23, 18, 0, tzinfo=UTC)
    pipeline.clock.now = reported_at
    assert pipeline.post_event(reported(JACOB, "EP-B1", reported_at), "missing-reported").status_code == 202
    pipeline.run()
    pipeline.clock.now = reported_at + timedelta(hours=1)
    assert pipeline.post_event(found("EP-B1", pipeline.clock.now), "missing-found").status_code == 202
    pipeline.run()
    pipeline.clock.now = reported_at + timedelta(hours=1, days=4)  # the return interview is a day late
    pipeline.run()
    items = board(pipeline, "?pathway=missing")["items"]
    assert [i["kind"] for i in items] == ["return_interview"]
    rhi = items[0]
    assert (rhi["child_name"], rhi["school_urn"], rhi["team"]) == ("Jacob Merriman", "100001", "CLA_TEAM")
    assert rhi["owner"] == "RHI_PROVIDER"
    assert rhi["minutes_late"] == 24 * 60
    assert rhi["told"] == ["RHI_PROVIDER", "team_manager", "HEAD_OF_SERVICE"]

    pipeline.clock.now += timedelta(hours=1)
    assert pipeline.post_event(attendance(AMELIA, pipeline.clock.now)).status_code == 202
    pipeline.run()
    pipeline.clock.now += timedelta(days=3)
    pipeline.run()
    everything = board(pipeline)["items"]
    assert [i["kind"] for i in everything] == ["return_interview", "self_harm_acknowledgement"]
    first = pipeline.get("/api/overdue?limit=1", "manager")
    assert [i["kind"] for i in first.json()["items"]] == ["return_interview"]
    next_page = first.headers["link"].split(">")[0].lstrip("<")
    assert "before=" in next_page and "limit=1" in next_page
    second = pipeline.get(next_page, "manager")
    assert [i["kind"] for i in second.json()["items"]] == ["self_harm_acknowledgement"]
    assert "link" not in second.headers
    assert pipeline.get("/api/overdue?before=no-such-deadline", "manager").status_code == 404


def test_every_csv_neutralises_formula_cells(pipeline: Pipeline) -> None:
    hostile = '=HYPERLINK("http://attacker.example","Riverside")'
    quoted = '"' + hostile.replace('"', '""') + '"'
    with pipeline.services.store.unit_of_work() as port:
        load(port, "schools", SCHOOLS.replace("Riverside Primary School", quoted), pipeline.clock())
    pipeline.clock.now = ARRIVED
    assert pipeline.post_event(attendance(AMELIA, ARRIVED)).status_code == 202
    pipeline.run()
    pipeline.clock.now = DUE + timedelta(minutes=5)
    pipeline.run()

    response = pipeline.client.get("/api/overdue", headers={**pipeline.headers("manager"), "Accept": "text/csv"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["school_name"] for r in rows] == ["'" + hostile]
    assert rows[0]["child_name"] == "Amelia Hartley" and rows[0]["told"] == "deputy_dsl dsl"

    json_rows = pipeline.get("/api/scorecard?from=2026-11-01&to=2026-11-30&by=school", "manager").json()
    response = pipeline.client.get("/api/scorecard?from=2026-11-01&to=2026-11-30&by=school",
                                   headers={**pipeline.headers("manager"), "Accept": "text/csv"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["group"] for r in table] == [r["group"] for r in json_rows] == ["100001", "ALL"]
    assert table[1]["ack_on_time_numerator"] == "0" and table[1]["ack_on_time_denominator"] == "1"
    assert table[1]["ack_on_time_value"] == "0.0"
    assert table[1]["open_escalations_level_1"] == "1"
