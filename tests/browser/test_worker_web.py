"""A worker sees an episode's return-interview deadline on their caseload and, where the council assigns
return interviews to workers, records the interview, which closes the deadline."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from playwright.sync_api import Browser

from tests.browser.conftest import check_accessible, screenshot, serve
from tests.browser.test_dsl_web import login
from tests.support.world import JACOB

REPORTED = datetime(2026, 11, 24, 18, 0, tzinfo=UTC)
FOUND = REPORTED + timedelta(hours=5)


def test_worker_sees_the_return_interview_deadline_and_records_the_interview(tmp_path: Path,
                                                                            browser: Browser) -> None:
    with serve(tmp_path, {"missing": {"return_interview_assignee": "worker"}}) as (pipeline, base):
        episode = "NS01-2026-000123"
        pipeline.post_event({"event_id": str(uuid.uuid4()), "episode_id": episode, "force_code": "NS01",
                             "reported_at": REPORTED.isoformat(), "last_seen_at": (REPORTED - timedelta(hours=2))
                             .isoformat(), "child": dict(JACOB), "risk_grade": "MEDIUM", "missing_from": "CARE",
                             "exploitation_flags": []}, "missing-reported")
        pipeline.post_event({"event_id": str(uuid.uuid4()), "episode_id": episode, "found_at": FOUND.isoformat(),
                             "returned_to": "PLACEMENT", "safe_and_well_at": None}, "missing-found")
        pipeline.clock.now = FOUND + timedelta(minutes=10)
        pipeline.run()
        pipeline.clock.now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)  # the next day: the interview was held

        page = login(browser, base, "sam.worker@northshire.gov.example")
        page.goto(f"{base}/caseload")
        card = page.locator(".app-episode").first
        text = card.inner_text()
        assert "Jacob Merriman" in page.inner_text("main")
        # Found at 11pm on Tuesday 24 November: the interview is due 72 hours later.
        assert "Return home interview" in text and "Friday 27 November 2026 at 11pm" in text
        check_accessible(page)
        screenshot(page, "worker-caseload")

        card.get_by_role("link", name="Record the return interview").click()
        page.get_by_role("button", name="Record the interview").click()
        page.wait_for_selector(".govuk-error-summary")
        check_accessible(page)
        screenshot(page, "worker-return-interview-error")
        page.get_by_label("Completed").check()
        page.fill("#held-day", "25")
        page.fill("#held-month", "11")
        page.fill("#held-year", "2026")
        page.fill("#held-time", "10:00")
        page.get_by_role("button", name="Record the interview").click()
        page.wait_for_selector(".govuk-notification-banner--success")
        pipeline.run()
        page.reload()
        assert "Return home interview" in page.inner_text(".app-episode") and "Done" in page.inner_text(".app-episode")
        assert "Completed" in page.inner_text(".app-episode")
        page.close()
