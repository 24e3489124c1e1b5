"""A school DSL logs in, reads a case and acknowledges it in a real browser; the deputy sees it acknowledged;
another school gets not-found; a manager sees overdue work."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from playwright.sync_api import Browser, Page

from pipeline.service.users import add_user
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


def add_deputy(pipeline: Pipeline) -> str:
    email = "deputy@riverside.sch.example"
    with pipeline.services.store.unit_of_work() as port:
        add_user(port, "dsl", email, "100001", None, password=PASSWORD)
    return email


def test_dsl_acknowledges_the_escalation_stops_and_the_deputy_sees_it(served: tuple[Pipeline, str],
                                                                     browser: Browser) -> None:
    pipeline, base = served
    deputy = add_deputy(pipeline)
    assert pipeline.post_event(attendance(AMELIA)).status_code == 202
    pipeline.run()

    page = login(browser, base, "dsl@riverside.sch.example")
    assert page.url == f"{base}/notifications"
    items = page.locator("#inbox > li")
    assert items.count() == 1  # one case for the school, not a DSL copy and a deputy copy
    assert "Amelia Hartley" in items.first.inner_text() and "New" in items.first.inner_text()
    assert "14 May 2013" in items.first.inner_text()
    check_accessible(page)
    screenshot(page, "dsl-inbox")
    items.first.get_by_role("link").click()
    page.wait_for_selector("#case-summary")
    assert "Amelia" not in page.url and "Amelia" not in page.title()
    check_accessible(page)
    screenshot(page, "dsl-case")
    page.get_by_role("button", name="Acknowledge").click()  # empty: an error summary, nothing acknowledged
    page.wait_for_selector(".govuk-error-summary")
    assert page.title().startswith("Error:")
    check_accessible(page)
    screenshot(page, "dsl-case-error")
    page.fill("textarea[name=outcome]", "Spoke with pupil and parent; safety plan shared with form tutor")
    page.get_by_role("button", name="Acknowledge").click()
    page.wait_for_selector("#acknowledged")
    screenshot(page, "dsl-case-acknowledged")
    page.close()

    statuses = {n["recipient_role"]: n["status"] for n in pipeline.get("/api/notifications", "dsl").json()}
    assert statuses == {"dsl": "acknowledged", "deputy_dsl": "acknowledged"}
    # Past the deadline and the whole ladder: nothing is sent, because the school acknowledged.
    pipeline.clock.now = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)
    pipeline.run()
    assert pipeline.get("/api/deadlines?state=overdue", "manager").json() == []
    assert {n["kind"] for n in pipeline.get("/api/notifications", "manager").json()} == {"alert"}

    second = login(browser, base, deputy)
    item = second.locator("#inbox > li")
    assert item.count() == 1 and "Acknowledged" in item.first.inner_text()
    item.first.get_by_role("link").click()
    second.wait_for_selector("#acknowledged")
    assert "dsl@riverside.sch.example" in second.inner_text("#acknowledged")  # who acknowledged it
    second.close()


def tab_to(page: Page, selector: str, limit: int = 40) -> None:
    """Press Tab until the element matching ``selector`` has the focus (fails if the keyboard cannot reach it)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("s => document.activeElement && document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"{selector} cannot be reached with the Tab key on {page.url}")


def assert_reflows(page: Page) -> None:
    """Nothing wider than a 320 px screen: no sideways scrolling (WCAG 1.4.10)."""
    assert page.evaluate("document.documentElement.scrollWidth") <= 320, page.url


def test_the_dsl_journey_by_keyboard_alone_at_320_px(served: tuple[Pipeline, str], browser: Browser) -> None:
    pipeline, base = served
    pipeline.post_event(attendance(AMELIA))
    pipeline.run()
    page = browser.new_context(bypass_csp=True, viewport={"width": 320, "height": 640}).new_page()
    page.goto(f"{base}/notifications")  # not signed in: through login and back
    page.wait_for_url("**/login?next=/notifications")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent.trim()") == "Skip to main content"
    assert_reflows(page)
    tab_to(page, "#email")
    page.keyboard.type("dsl@riverside.sch.example")
    tab_to(page, "#password")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/notifications")
    assert_reflows(page)
    check_accessible(page)
    screenshot(page, "dsl-inbox-320")
    tab_to(page, "#inbox a")
    page.keyboard.press("Enter")
    page.wait_for_selector("#case-summary")
    assert_reflows(page)
    tab_to(page, "#outcome")
    page.keyboard.type("Called home; pupil seen by the school nurse")
    tab_to(page, "form button.govuk-button")
    page.keyboard.press("Enter")
    page.wait_for_selector("#acknowledged")
    assert_reflows(page)
    check_accessible(page)
    screenshot(page, "dsl-case-acknowledged-320")
    page.close()


def test_a_form_without_its_csrf_token_is_refused_and_an_expired_session_goes_to_login(
        served: tuple[Pipeline, str], browser: Browser) -> None:
    pipeline, base = served
    pipeline.post_event(attendance(AMELIA))
    pipeline.run()
    page = login(browser, base, "dsl@riverside.sch.example")
    page.locator("#inbox a").first.click()
    page.wait_for_selector("#outcome")
    page.evaluate("document.querySelectorAll('input[name=csrf_token]').forEach(e => e.remove())")
    page.fill("#outcome", "An outcome")
    page.get_by_role("button", name="Acknowledge").click()
    page.wait_for_load_state()
    assert "Your form could not be sent" in page.inner_text("main")
    assert {n["status"] for n in pipeline.get("/api/notifications", "dsl").json()} != {"acknowledged"}
    check_accessible(page)
    screenshot(page, "csrf-refused")

    pipeline.clock.advance(minutes=31)  # idle longer than web.session_idle (30 minutes)
    page.goto(f"{base}/notifications")
    page.wait_for_url("**/login?next=/notifications&ended=1")
    assert "Your session has ended" in page.inner_text("main")
    check_accessible(page)
    screenshot(page, "login-session-ended")
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
    assert "School acknowledgement" in manager.inner_text("#overdue")
    check_accessible(manager)
    manager.close()


def test_a_busy_inbox_pages_and_narrows_by_keyboard_and_stays_accessible(
        served: tuple[Pipeline, str], browser: Browser, monkeypatch: pytest.MonkeyPatch) -> None:
    """Five cases, two to a page: the DSL moves through the pages and to 'waiting for action' with the keyboard,
    every page passes axe, and the page's title says which page it is."""
    import pipeline.web.pagination as pagination

    monkeypatch.setattr(pagination, "PER_PAGE", 2)
    pipeline, base = served
    for minutes in range(5):
        event = attendance(AMELIA, arrived_at=datetime(2026, 11, 24, 19, 50 + minutes, tzinfo=UTC))
        assert pipeline.post_event(event).status_code == 202
        pipeline.run()
        pipeline.clock.advance(minutes=1)

    page = login(browser, base, "dsl@riverside.sch.example")
    assert page.locator("#inbox > li").count() == 2
    assert page.title().startswith("Inbox (page 1 of 3)")
    assert "5 cases, 5 waiting for action" in page.locator("#inbox-summary").inner_text()
    check_accessible(page)
    screenshot(page, "dsl-inbox-paged")
    page.get_by_role("link", name="Next").focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/notifications?page=2")
    assert page.title().startswith("Inbox (page 2 of 3)") and page.locator("#inbox > li").count() == 2
    check_accessible(page)
    page.get_by_role("link", name="cases waiting for action").focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/notifications?show=waiting")
    assert page.title().startswith("Inbox: waiting for action (page 1 of 3)")
    page.get_by_role("link", name="Page 3").click()  # the last page keeps the filter
    page.wait_for_url("**/notifications?show=waiting&page=3")
    assert page.locator("#inbox > li").count() == 1
    check_accessible(page)
