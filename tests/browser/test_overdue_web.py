"""A manager watches the overdue board in a real browser: an item appears when its deadline passes (the page
reloads itself), its case opens by keyboard alone, and it is gone once the school acknowledges; the dashboard
then shows the late acknowledgement and opens the case behind the figure."""

from __future__ import annotations

from datetime import UTC, datetime

from playwright.sync_api import Browser

from tests.browser.conftest import check_accessible, screenshot
from tests.browser.test_dsl_web import login, tab_to
from tests.integration.conftest import Pipeline
from tests.support.world import AMELIA, attendance


def test_the_board_shows_an_item_when_its_deadline_passes_and_not_after_it_is_closed(
        served: tuple[Pipeline, str], browser: Browser) -> None:
    pipeline, base = served
    event = attendance(AMELIA)
    assert pipeline.post_event(event).status_code == 202
    pipeline.run()
    pipeline.clock.now = datetime(2026, 11, 25, 11, 50, tzinfo=UTC)  # due at 12:00 on the next school day
    pipeline.run()

    page = login(browser, base, "manager@test.example")
    page.goto(f"{base}/overdue?every=2")  # the board reloads itself (every 2 s here, every minute by default)
    page.wait_for_selector("#nothing-overdue")
    assert page.is_checked("#auto-reload")
    check_accessible(page)

    pipeline.clock.now = datetime(2026, 11, 25, 12, 5, tzinfo=UTC)
    pipeline.run()
    page.wait_for_selector("#overdue", timeout=15_000)  # no one pressed reload
    page.uncheck("#auto-reload")  # the manager can stop it
    board = page.inner_text("#overdue")
    assert "Amelia Hartley" in board and "School acknowledgement of a self-harm alert" in board
    assert "5 minutes" in board and "Riverside Primary School (100001)" in board
    assert page.inner_text("#count-level-1") == "1"
    check_accessible(page)
    screenshot(page, "manager-overdue-board")

    tab_to(page, "#overdue a")
    page.keyboard.press("Enter")
    page.wait_for_selector("#deadline-summary")
    assert "Amelia Hartley" in page.inner_text("#deadline-summary")
    check_accessible(page)
    screenshot(page, "manager-overdue-case")

    alert = next(n["id"] for n in pipeline.get(f"/api/events/{event['event_id']}", "manager").json()["notifications"]
                 if n["recipient_role"] == "dsl")
    assert pipeline.client.post(f"/api/notifications/{alert}/acknowledge", json={"outcome": "spoke to pupil"},
                                headers=pipeline.headers("dsl")).status_code == 200
    page.goto(f"{base}/overdue")
    page.wait_for_selector("#nothing-overdue")
    assert page.inner_text("#count-level-1") == "0"

    # The dashboard: acknowledged five minutes late, so this quarter's figure is 0 of 1; it opens its cases.
    page.goto(f"{base}/dashboard")
    page.wait_for_selector("#headline")
    check_accessible(page)
    screenshot(page, "manager-dashboard")
    tab_to(page, "#headline a")
    page.keyboard.press("Enter")
    page.wait_for_selector("#cases")
    assert "0 of 1 counted as on time" in page.inner_text("#cases-count")
    assert "Amelia Hartley" in page.inner_text("#cases")
    check_accessible(page)
    page.close()
