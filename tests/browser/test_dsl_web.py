"""A school DSL logs in, reads a case and acknowledges it in a real browser; the deputy sees it acknowledged;
another school gets not-found; a manager sees overdue work."""

from __future__ import annotations

from datetime import UTC, datetime

from playwright.sync_api import Browser, Page

from tests.browser.conftest import check_accessible, screenshot
from tests.integration.conftest import Pipeline
from tests.support.world import AMELIA, attendance

PASSWORD = "correct horse battery"  # set for every user by tests/integration/conftest.py


def login(browser: Browser, base: str, email: str, path: str = "/login") -> Page:
    page = browser.new_context(bypass_csp=True).new_page()  # so axe-core can be injected
    page.goto(f"{base}{path}")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    return page


def test_dsl_acknowledges_and_the_deputy_sees_it(served: tuple[Pipeline, str], browser: Browser) -> None:
    pipeline, base = served
    assert pipeline.post_event(attendance(AMELIA)).status_code == 202
    pipeline.run()

    page = login(browser, base, "dsl@riverside.sch.example")
    assert page.url == f"{base}/notifications"
    items = page.locator("#inbox > li")
    assert items.count() == 1  # one case for the school, not a DSL copy and a deputy copy
    assert "Amelia Hartley" in items.first.inner_text() and "New" in items.first.inner_text()
    check_accessible(page)
    screenshot(page, "dsl-inbox")
    items.first.get_by_role("link").click()
    page.wait_for_selector("#case-summary")
    assert "14 May 2013" in page.inner_text("#case-summary")
    assert "Amelia" not in page.url
    check_accessible(page)
    page.get_by_role("button", name="Acknowledge").click()  # empty: an error summary, nothing acknowledged
    page.wait_for_selector(".govuk-error-summary")
    check_accessible(page)
    screenshot(page, "dsl-case-error")
    page.fill("textarea[name=outcome]", "Spoke with pupil and parent; safety plan shared with form tutor")
    page.get_by_role("button", name="Acknowledge").click()
    page.wait_for_selector("#acknowledged")
    screenshot(page, "dsl-case-acknowledged")
    page.close()

    statuses = {n["recipient_role"]: n["status"] for n in pipeline.get("/api/notifications", "dsl").json()}
    assert statuses == {"dsl": "acknowledged", "deputy_dsl": "acknowledged"}


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
    assert "School acknowledgement" in manager.inner_text("#overdue")
    check_accessible(manager)
    manager.close()
