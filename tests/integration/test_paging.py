"""Paging on every list: `limit` (default 100, at most 1,000), `before` (the last item's id), a `Link` header."""

from __future__ import annotations

import re
import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

from sqlmodel import select

from pipeline.adapters import tables as t
from pipeline.entrypoints.api import NOT_FOUND
from tests.integration.conftest import Pipeline
from tests.integration.test_missing_api import reported
from tests.support.world import AMELIA, JACOB, attendance

NEXT = re.compile(r'^<(/[^>]*)>; rel="next"$')


def insert_notifications(pipeline: Pipeline, count: int, school_urn: str, minutes_after: int = 0) -> list[str]:
    """``count`` DSL notifications for one school, many sharing a created_at (so the id breaks ties)."""
    rows = []
    for n in range(count):
        rows.append(t.Notification(
            id=str(uuid.uuid4()), event_id=str(uuid.uuid4()), pathway="self-harm", kind="alert",
            plan_key=f"paging:{n}", recipient_role="dsl", recipient_ref=school_urn, school_urn=school_urn,
            urgency="routine", reason="paging test", status="delivered", content_json="{}",
            created_at=pipeline.clock() + timedelta(minutes=minutes_after, seconds=n // 100)))
    with pipeline.services.store.transaction() as session:
        session.add_all(rows)
    return [row.id for row in rows]


def read_all(pipeline: Pipeline, first: str, who: str, between_pages: Any = None) -> tuple[list[Any], int]:
    """Follow the Link headers from ``first``; every item of every page, and how many pages."""
    items: list[Any] = []
    url: str | None = first
    pages = 0
    while url is not None:
        response = pipeline.get(url, who)
        assert response.status_code == 200, response.text
        items += response.json()
        pages += 1
        link = response.headers.get("link")
        if link is None:
            url = None
            continue
        match = NEXT.match(link)
        assert match, link  # relative: nothing built from the Host header
        url = match.group(1)
        if between_pages is not None:
            between_pages()
    return items, pages


def test_2500_notifications_read_page_by_page_each_once(pipeline: Pipeline) -> None:
    mine = insert_notifications(pipeline, 2500, "100001")
    insert_notifications(pipeline, 150, "100002")  # another school's: never on this DSL's pages
    arriving = iter(range(100))

    def more_arrive() -> None:  # newer items arriving while the DSL pages through must not shift the pages
        insert_notifications(pipeline, 5, "100001", minutes_after=60 + next(arriving))

    items, pages = read_all(pipeline, "/api/notifications?limit=300", "dsl", more_arrive)
    ids = [item["id"] for item in items]
    assert pages == 9 and len(ids) == 2500
    assert set(ids) == set(mine)  # each once, none missing, none out of scope
    created = [item["created_at"] for item in items]
    assert created == sorted(created, reverse=True)  # newest first


def test_default_page_size_and_link_carries_only_declared_parameters(sqlite_pipeline: Pipeline) -> None:
    p = sqlite_pipeline
    insert_notifications(p, 250, "100001")
    response = p.get("/api/notifications?status=delivered&unknown=Amelia", "dsl")
    assert response.status_code == 200 and len(response.json()) == 100
    link = response.headers["link"]
    last = response.json()[-1]["id"]
    assert link == f'</api/notifications?status=delivered&limit=100&before={last}>; rel="next"'
    assert "Amelia" not in link and "127.0.0.1" not in link and "testserver" not in link
    everything, pages = read_all(p, "/api/notifications?limit=1000", "dsl")
    assert pages == 1 and len(everything) == 250
    assert "link" not in p.get("/api/notifications?limit=1000", "dsl").headers


def test_limit_out_of_range_is_422_naming_the_field(sqlite_pipeline: Pipeline) -> None:
    for limit in ("0", "-1", "1001", "100000", "ten", ""):
        for path in ("/api/notifications", "/api/deadlines", "/api/audit?subject=x"):
            response = sqlite_pipeline.get(f"{path}{'&' if '?' in path else '?'}limit={limit}",
                                           "dsl" if path == "/api/notifications" else "manager")
            assert response.status_code == 422, (path, limit)
            assert [e["field"] for e in response.json()["errors"]] == ["limit"]
            assert limit not in response.text or limit == ""
    for limit in ("1", "1000"):
        assert sqlite_pipeline.get(f"/api/notifications?limit={limit}", "dsl").status_code == 200


def test_before_unknown_or_out_of_scope_answers_as_not_found(sqlite_pipeline: Pipeline) -> None:
    p = sqlite_pipeline
    mine = insert_notifications(p, 3, "100001")
    theirs = insert_notifications(p, 3, "100002")
    newest_first = [n["id"] for n in p.get("/api/notifications", "dsl").json()]
    assert sorted(newest_first) == sorted(mine)
    assert [n["id"] for n in p.get(f"/api/notifications?before={newest_first[0]}", "dsl").json()] == newest_first[1:]
    for before in (theirs[0], str(uuid.uuid4()), "not-an-id"):
        response = p.get(f"/api/notifications?before={before}", "dsl")
        assert response.status_code == 404 and response.json() == NOT_FOUND
    # A manager sees both schools, so the other school's id is a valid place to start from.
    assert p.get(f"/api/notifications?before={theirs[0]}", "manager").status_code == 200
    for path in ("/api/audit?subject=nothing&before=1", "/api/audit?subject=x&before=abc",
                 f"/api/deadlines?state=open&before={uuid.uuid4()}"):
        response = p.get(path, "manager")
        assert response.status_code == 404 and response.json() == NOT_FOUND


def test_deadlines_audit_and_episodes_page_the_same_way(sqlite_pipeline: Pipeline) -> None:
    p = sqlite_pipeline
    for n in range(5):
        p.clock.advance(minutes=1)
        assert p.post_event(attendance(AMELIA)).status_code == 202
        assert p.post_event(reported(JACOB, f"EP-PAGE-{n}", at=p.clock()), "missing-reported").status_code == 202
    p.run()

    whole = p.get("/api/deadlines?state=open&limit=1000", "manager").json()
    assert len(whole) > 5
    paged, pages = read_all(p, "/api/deadlines?state=open&limit=2", "manager")
    assert paged == whole and pages == (len(whole) + 1) // 2

    with p.services.store.read() as session:  # the subject with the most audit entries
        subjects = Counter(session.exec(select(t.AuditEntry.subject_id)).all())
    subject, count = subjects.most_common(1)[0]
    whole = p.get(f"/api/audit?subject={subject}&limit=1000", "manager").json()
    paged, pages = read_all(p, f"/api/audit?subject={subject}&limit=1", "manager")
    assert paged == whole and len(whole) == count == pages and count > 1
    assert [a["id"] for a in whole] == sorted((a["id"] for a in whole), reverse=True)

    with p.services.store.read() as session:
        child_id = session.get(t.MissingEpisode, "EP-PAGE-0").child_id  # type: ignore[union-attr]
    whole = p.get(f"/api/children/{child_id}/episodes?limit=1000", "worker").json()
    paged, pages = read_all(p, f"/api/children/{child_id}/episodes?limit=2", "worker")
    assert [e["episode_id"] for e in paged] == [f"EP-PAGE-{n}" for n in reversed(range(5))]
    assert paged == whole and pages == 3
    assert p.get(f"/api/children/{child_id}/episodes?before=EP-NOT-THERE", "worker").json() == NOT_FOUND
