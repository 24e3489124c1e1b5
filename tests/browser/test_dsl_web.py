"""A school DSL logs in, reads a notification and acknowledges it in a real browser; a manager sees overdue work."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from playwright.sync_api import Browser

from tests.integration.conftest import Pipeline
from tests.support.world import AMELIA, attendance

PASSWORD = "correct horse battery"  # set for every user by tests/integration/conftest.py


def login(browser: Browser, base: str, email: str):  # type: ignore[no-untyped-def]
    page = browser.new_page()
    page.goto(f"{base}/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button")
    return page


def test_dsl_acknowledges_in_the_browser(served: tuple[Pipeline, str], browser: Browser, tmp_path: Path) -> None:
    pipeline, base = served
    event = attendance(AMELIA)
    assert pipeline.post_event(event).status_code == 202
    pipeline.run()

    page = login(browser, base, "dsl@riverside.sch.example")
    page.wait_for_selector("#notifications")
    rows = page.locator("#notifications tr")
    assert rows.count() == 3  # header, DSL alert, deputy alert
    assert page.url == f"{base}/notifications"
    page.locator("#notifications a").first.click()
    page.wait_for_selector("#status")
    assert "Amelia" in page.content()  # the school sees its own pupil's name on screen, never in a URL
    assert "Amelia" not in page.url
    page.fill("input[name=outcome]", "Spoke with pupil and parent; safety plan shared with form tutor")
    page.click("text=Acknowledge")
    page.wait_for_selector("#acknowledged")
    page.screenshot(path=str(tmp_path / "acknowledged.png"))
    assert page.locator("#status").inner_text() == "acknowledged"

    statuses = {n["recipient_role"]: n["status"] for n in pipeline.get("/api/notifications", "dsl").json()}
    acknowledged = [role for role, status in statuses.items() if status == "acknowledged"]
    assert len(acknowledged) == 1
    page.close()


def test_other_school_cannot_open_the_page_and_manager_sees_overdue(served: tuple[Pipeline, str],
                                                                    browser: Browser) -> None:
    pipeline, base = served
    pipeline.post_event(attendance(AMELIA))
    pipeline.run()
    note = pipeline.get("/api/notifications", "dsl").json()[0]

    other = login(browser, base, "dsl@hilltop.sch.example")
    response = other.goto(f"{base}/notifications/{note['id']}")
    assert response is not None and response.status == 404
    assert "Amelia" not in other.content()
    other.close()

    pipeline.clock.now = datetime(2026, 11, 25, 12, 30, tzinfo=UTC)
    pipeline.run()
    manager = login(browser, base, "manager@test.example")
    manager.goto(f"{base}/overdue")
    manager.wait_for_selector("#overdue")
    assert "self_harm_acknowledgement" in manager.inner_text("#overdue")
    manager.close()
