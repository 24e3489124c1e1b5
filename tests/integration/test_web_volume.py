"""The web app's lists at volume, on SQLite and PostgreSQL: a case still waiting on its deadline stays in the inbox
however many notifications come after it, the inbox narrows to what waits for action, and the front door's
queues are paged, the soonest due first, with nothing left off the end."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

import pipeline.adapters.inbox as inbox_queries
import pipeline.web.pagination as pagination
from tests.integration.conftest import Pipeline
from tests.integration.test_web_pages import signed_in
from tests.support.world import AMELIA, LILY_TYPO, TERM_EVENING, attendance

pytestmark = pytest.mark.integration

DSL = "dsl@riverside.sch.example"


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
    assert 'aria-current="page">cases waiting for action<' in waiting

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
    reviews = [attendance(LILY_TYPO, arrived_at=TERM_EVENING - timedelta(minutes=5 - i)) for i in range(5)]
    for event in reversed(reviews):  # received newest first; due in the order they arrived
        pipeline.post_event(event)
        pipeline.run()
        pipeline.clock.advance(minutes=1)
    assert all(pipeline.get(f"/api/events/{e['event_id']}", "manager").json()["status"] == "review" for e in reviews)
    due = [r["event_id"] for r in pipeline.get("/api/reviews", "front_door").json()]
    assert sorted(due) == sorted(e["event_id"] for e in reviews)

    client, _ = signed_in(pipeline, "fd@test.example")
    shown: list[str] = []
    for number in (1, 2, 3):
        html = client.get(f"/reviews?page={number}").text
        shown += re.findall(r'href="/reviews/([0-9a-f-]{36})"', html)
        assert f"Showing {2 * number - 1} to {min(2 * number, 5)} of 5, the soonest due first." in html
    assert shown == due, "every open review once, in the API's order (the soonest due first)"
