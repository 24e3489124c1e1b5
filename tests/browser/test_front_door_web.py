"""The front door in a real browser: links a reviewed event to a child (the school's DSL then sees it) and
releases a withheld attendance; both need a reason, and every page passes axe-core."""

from __future__ import annotations

from playwright.sync_api import Browser

from tests.browser.conftest import check_accessible, screenshot
from tests.browser.test_dsl_web import login
from tests.integration.conftest import Pipeline
from tests.support.world import AMELIA, LILY_TYPO, attendance


def test_front_door_links_a_review_and_releases_a_withheld_attendance(served: tuple[Pipeline, str],
                                                                     browser: Browser) -> None:
    pipeline, base = served
    review = attendance(LILY_TYPO, exploitation_screening="CONCERN")
    withheld = attendance(AMELIA, consent="REFUSED")
    for event in (review, withheld):
        assert pipeline.post_event(event).status_code == 202
    pipeline.run()
    assert pipeline.get("/api/notifications", "dsl").json() == []

    page = login(browser, base, "fd@test.example")
    page.goto(f"{base}/reviews")
    items = page.locator("#reviews > li")
    assert items.count() == 1 and "Lilly Ashworth" in items.first.inner_text()
    check_accessible(page)
    screenshot(page, "front-door-reviews")
    items.first.get_by_role("link").click()
    page.wait_for_selector("#candidate-1")
    assert page.locator("table.app-comparison").count() == 2  # the twins Lily and Lila, field by field
    assert "Lilly" in page.inner_text("#sent-identity")
    check_accessible(page)
    screenshot(page, "front-door-review")

    page.get_by_role("button", name="Record decision").click()  # nothing chosen, no reason
    page.wait_for_selector(".govuk-error-summary")
    assert "Select the child" in page.inner_text(".govuk-error-summary")
    assert "Enter the reason" in page.inner_text(".govuk-error-summary")
    check_accessible(page)
    lily = page.get_by_label("This child: Lily Ashworth", exact=False)
    lily.check()
    page.fill("textarea[name=reason]", "Checked the spelling with the hospital ward")
    page.get_by_role("button", name="Record decision").click()
    page.wait_for_selector(".govuk-notification-banner--success")
    assert page.locator("#reviews").count() == 0  # the queue is empty now
    body = pipeline.get(f"/api/events/{review['event_id']}", "manager").json()
    assert body["status"] == "processed" and body["match"]["outcome"] == "linked"

    page.goto(f"{base}/decisions")
    check_accessible(page)
    page.locator("#decisions > li").first.get_by_role("link").click()
    page.wait_for_selector("#attendance")
    assert "Refused" in page.inner_text("#attendance")
    check_accessible(page)
    screenshot(page, "front-door-decision")
    page.get_by_label("Release it").check()
    page.get_by_role("button", name="Record decision").click()  # no reason: refused with an error
    page.wait_for_selector(".govuk-error-summary")
    page.fill("textarea[name=reason]", "Risk to the child outweighs the refusal")
    page.get_by_role("button", name="Record decision").click()
    page.wait_for_selector(".govuk-notification-banner--success")
    assert pipeline.get(f"/api/events/{withheld['event_id']}", "manager").json()["status"] == "processed"
    audit = pipeline.get(f"/api/audit?subject={withheld['event_id']}", "manager").json()
    assert any(a["action"] == "released" and a["actor"] == "fd@test.example" for a in audit)
    page.close()

    pipeline.run()
    dsl = login(browser, base, "dsl@riverside.sch.example")
    text = dsl.inner_text("#inbox")
    assert "Lily Ashworth" in text and "Amelia Hartley" in text  # both reached the school once decided
    dsl.close()
