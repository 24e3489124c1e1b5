"""The web app's lists at volume, on SQLite and PostgreSQL: a case still waiting on its deadline stays in the inbox
however many notifications come after it, the inbox narrows to what waits for action, and the front door's
queues are paged, the soonest due first, with nothing left off the end."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import pipeline.adapters.inbox as inbox_queries
import pipeline.web.pagination as pagination
from tests.integration.conftest import Pipeline
from tests.integration.test_web_pages import signed_in
from tests.support.world import AMELIA, JACOB, LILY_TYPO, TERM_EVENING, attendance

pytestmark = pytest.mark.integration

DSL = "dsl@riverside.sch.example"


def caseload_user(session: Any) -> Any:
    from pipeline.adapters.accounts import user_by_email

    return user_by_email(session, "sam.worker@northshire.gov.example")


def notification_ids(pipeline: Pipeline, event: dict[str, object]) -> list[str]:
    return [n["id"] for n in pipeline.get(f"/api/events/{event['event_id']}", "manager").json()["notifications"]
            if n["recipient_role"] in ("dsl", "deputy_dsl")]


def inbox_items(html: str) -> list[str]:
    """Each inbox item's link, in the order shown."""
    return re.findall(r'<li class="app-inbox__item">\s*<h2[^>]*>\s*<a class="govuk-link" href="([^"]+)"', html)


def test_an_overdue_case_stays_in_the_inbox_behind_many_newer_ones(pipeline: Pipeline,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inbox_queries, "NEWEST_KEPT", 4)  # the newest-notifications window, made small
    old = attendance(AMELIA)
    pipeline.post_event(old)
    pipeline.run()
    pipeline.clock.now = datetime(2026, 11, 25, 12, 1, tzinfo=UTC)  # past its acknowledgement deadline
    pipeline.run()
    (old_alert,) = [n for n in notification_ids(pipeline, old)
                    if (detail := pipeline.get(f"/api/notifications/{n}", "dsl").json())["recipient_role"] == "dsl"
                    and detail["kind"] == "alert"]
    newer = [attendance(AMELIA, arrived_at=pipeline.clock.now + timedelta(minutes=10 * i)) for i in range(1, 4)]
    pipeline.clock.now += timedelta(hours=1)
    for event in newer:
        pipeline.post_event(event)
    pipeline.run()
    for event in newer:  # handled at once: nothing about them waits
        for note in notification_ids(pipeline, event):
            acknowledged = pipeline.client.post(f"/api/notifications/{note}/acknowledge", json={"outcome": "seen"},
                                                headers=pipeline.headers("dsl"))
            assert acknowledged.status_code == 200

    client, _ = signed_in(pipeline, DSL)
    everything = client.get("/notifications").text
    items = inbox_items(everything)
    assert items[0] == f"/notifications/{old_alert}", "the overdue case, first, though nine newer rows came after"
    assert "1 waiting for action" in everything and "1 overdue" in everything

    waiting = client.get("/notifications?show=waiting").text
    assert inbox_items(waiting) == [f"/notifications/{old_alert}"]
    assert 'aria-current="true">cases waiting for action<' in waiting

    pipeline.client.post(f"/api/notifications/{old_alert}/acknowledge", json={"outcome": "called the family"},
                         headers=pipeline.headers("dsl"))
    assert "Nothing is waiting for action." in client.get("/notifications?show=waiting").text


def test_the_inbox_is_paged_and_keeps_its_filter_across_pages(pipeline: Pipeline,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pagination, "PER_PAGE", 2)
    events = [attendance(AMELIA, arrived_at=TERM_EVENING - timedelta(minutes=5 - i)) for i in range(5)]
    for event in events:
        pipeline.post_event(event)
        pipeline.run()
        pipeline.clock.advance(minutes=1)
    client, _ = signed_in(pipeline, DSL)

    seen: list[str] = []
    for number in (1, 2, 3):
        html = client.get(f"/notifications?show=waiting&page={number}").text
        seen += inbox_items(html)
        assert f"Showing {2 * number - 1} to {min(2 * number, 5)} of 5 cases." in html
        if number < 3:
            assert f'href="/notifications?show=waiting&amp;page={number + 1}"' in html  # next keeps the filter
    assert len(seen) == len(set(seen)) == 5, "every case once, across the pages"
    newest_first = [f"/notifications/{n}" for event in reversed(events) for n in notification_ids(pipeline, event)]
    assert seen == [link for link in newest_first if link in seen]
    beyond = client.get("/notifications?show=waiting&page=99").text  # past the end: the last page
    assert inbox_items(beyond) == seen[4:]
    assert inbox_items(client.get("/notifications?page=nonsense").text) == seen[:2]


def test_the_review_queue_is_paged_the_soonest_due_first(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pagination, "PER_PAGE", 2)
    routine = [attendance(LILY_TYPO, arrived_at=TERM_EVENING - timedelta(minutes=5 - i)) for i in range(4)]
    urgent = attendance(LILY_TYPO, arrived_at=TERM_EVENING, exploitation_screening="CONCERN")  # to review at once
    for event in [*routine, urgent]:  # the routine ones due in the working hours ahead, the urgent one now
        pipeline.post_event(event)
        pipeline.run()
    assert all(pipeline.get(f"/api/events/{e['event_id']}", "manager").json()["status"] == "review"
               for e in [*routine, urgent])
    due = [r["event_id"] for r in pipeline.get("/api/reviews", "front_door").json()]
    assert due[0] == urgent["event_id"], "due first, though received last"

    client, _ = signed_in(pipeline, "fd@test.example")
    shown: list[str] = []
    for number in (1, 2, 3):
        html = client.get(f"/reviews?page={number}").text
        shown += re.findall(r'href="/reviews/([0-9a-f-]{36})"', html)
        assert f"Showing {2 * number - 1} to {min(2 * number, 5)} of 5, the soonest due first." in html
    assert shown == due, "every open review once, in the API's order (the soonest due first)"


def test_a_caseload_keeps_an_old_episode_still_open_and_an_old_notification_not_acknowledged(
        pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.adapters import caseload

    monkeypatch.setattr(caseload, "EPISODES_KEPT", 1)
    monkeypatch.setattr(caseload, "NOTIFICATIONS_KEPT", 1)
    reported_at = datetime(2026, 11, 24, 18, 0, tzinfo=UTC)
    old = {"event_id": str(uuid.uuid4()), "episode_id": "EP-OLD", "force_code": "NS01",
           "reported_at": reported_at.isoformat(), "last_seen_at": (reported_at - timedelta(hours=2)).isoformat(),
           "child": dict(JACOB), "risk_grade": "MEDIUM", "missing_from": "CARE", "exploitation_flags": []}
    newer = {**old, "event_id": str(uuid.uuid4()), "episode_id": "EP-NEW",
             "reported_at": (reported_at + timedelta(hours=2)).isoformat()}
    pipeline.clock.now = reported_at + timedelta(hours=3)
    for event in (old, newer):
        assert pipeline.post_event(event, "missing-reported").status_code == 202
    pipeline.run()
    child_id = pipeline.get(f"/api/events/{old['event_id']}", "manager").json()["match"]["child_id"]
    worker_notes = [n for n in pipeline.get("/api/notifications", "worker").json()]
    assert len(worker_notes) == 2
    with pipeline.services.store.read() as s:
        episodes = [e.episode_id for e in caseload.episodes_of(s, [child_id])]
        worker = caseload_user(s)
        notes = [n.id for n, _ in caseload.notifications_about(s, worker, [child_id])]
    assert episodes == ["EP-NEW", "EP-OLD"], "the old one is still missing: its deadlines are open"
    assert sorted(notes) == sorted(n["id"] for n in worker_notes), "neither is acknowledged"


def test_an_escalation_copy_stops_waiting_once_the_owner_acknowledges(pipeline: Pipeline) -> None:
    """SCiES's copy of an escalation on a school's deadline asks nothing more of SCiES once the DSL acknowledges
    (the deadline closes), though SCiES never acknowledged it."""
    event = attendance(AMELIA)
    pipeline.post_event(event)
    pipeline.run()
    pipeline.clock.now = datetime(2026, 11, 25, 14, 1, tzinfo=UTC)  # reminder at 12:00, SCiES two working hours on
    pipeline.run()
    scies = [n for n in pipeline.get("/api/notifications", "scies").json() if n["kind"] == "escalation"]
    assert scies, "SCiES was told"
    client, _ = signed_in(pipeline, "scies@test.example")
    assert inbox_items(client.get("/notifications?show=waiting").text) == [f"/notifications/{scies[0]['id']}"]

    dsl_alert = next(n for n in notification_ids(pipeline, event)
                     if pipeline.get(f"/api/notifications/{n}", "dsl").json()["kind"] == "alert")
    pipeline.client.post(f"/api/notifications/{dsl_alert}/acknowledge", json={"outcome": "spoke to the family"},
                         headers=pipeline.headers("dsl"))
    assert inbox_items(client.get("/notifications?show=waiting").text) == []
    assert inbox_items(client.get("/notifications").text) == [f"/notifications/{scies[0]['id']}"]  # still listed


def test_a_page_number_that_is_not_one_shows_the_first_page(pipeline: Pipeline) -> None:
    pipeline.post_event(attendance(AMELIA))
    pipeline.run()
    client, _ = signed_in(pipeline, DSL)
    front_door, _ = signed_in(pipeline, "fd@test.example")
    for page in ("%C2%B2", "1" * 5000, "-1", "", "0x10"):
        assert client.get(f"/notifications?page={page}").status_code == 200, page
        assert front_door.get(f"/reviews?page={page}").status_code == 200, page
        assert front_door.get(f"/decisions?page={page}").status_code == 200, page


def test_the_decision_queue_is_paged_and_its_links_drop_the_banner(pipeline: Pipeline,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pagination, "PER_PAGE", 2)
    withheld = [attendance(AMELIA, arrived_at=TERM_EVENING - timedelta(minutes=5 - i), consent="REFUSED")
                for i in range(3)]
    for event in withheld:
        pipeline.post_event(event)
        pipeline.run()
        pipeline.clock.advance(days=1)  # each decision due a working day after the one before
    client, _ = signed_in(pipeline, "fd@test.example")
    first = client.get("/decisions?decided=1").text
    assert "Decision recorded." in first
    assert 'href="/decisions?page=2"' in first, "the next page, without the banner's parameter"
    shown = re.findall(r'href="/decisions/([0-9a-f-]{36})"', first)
    shown += re.findall(r'href="/decisions/([0-9a-f-]{36})"', client.get("/decisions?page=2").text)
    assert shown == [e["event_id"] for e in withheld], "the soonest due first, every one once"


def test_the_boards_download_has_every_row_and_a_case_page_finds_its_own(pipeline: Pipeline,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import csv
    import io

    import pipeline.web.overdue as overdue

    monkeypatch.setattr(overdue, "DOWNLOAD_PAGE", 1)  # read a row at a time
    events = [attendance(child) for child in (AMELIA, LILY_TYPO)]
    for event in events:
        pipeline.post_event(event)
    pipeline.run()
    pipeline.clock.now = datetime(2026, 11, 25, 12, 5, tzinfo=UTC)  # the DSL's and the review's deadlines passed
    pipeline.run()
    board = pipeline.get("/api/deadlines?state=overdue", "manager").json()
    assert len(board) >= 2

    manager, _ = signed_in(pipeline, "manager@test.example")
    download = manager.get("/overdue/download")
    assert download.status_code == 200
    rows = list(csv.DictReader(io.StringIO(download.text)))
    assert sorted(r["deadline_id"] for r in rows) == sorted(d["id"] for d in board)
    last = rows[-1]  # not the board's first row: its case page still finds it on the board
    page = manager.get(f"/overdue/cases/{last['deadline_id']}").text
    assert '<span class="govuk-caption-l">Overdue</span>' in page and "How late" in page
