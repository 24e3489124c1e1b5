"""An admin manages users in the browser (a reset password or a disabled user ends their sessions); /docs
renders Swagger UI from /static under the Content-Security-Policy."""

from __future__ import annotations

from playwright.sync_api import Browser

from tests.browser.conftest import check_accessible, screenshot
from tests.browser.test_dsl_web import PASSWORD, login
from tests.integration.conftest import Pipeline


def test_admin_resets_a_password_and_disables_a_user(served: tuple[Pipeline, str], browser: Browser) -> None:
    pipeline, base = served
    dsl = login(browser, base, "dsl@riverside.sch.example")
    assert dsl.url.endswith("/notifications")

    admin = login(browser, base, "admin@test.example")
    assert admin.url.endswith("/admin/users")
    check_accessible(admin)
    screenshot(admin, "admin-users")
    row = admin.locator("#users tr", has_text="dsl@riverside.sch.example")
    row.get_by_role("link", name="Reset password").click()
    admin.get_by_role("button", name="Reset password").click()  # empty: refused with an error
    admin.wait_for_selector(".govuk-error-summary")
    check_accessible(admin)
    admin.fill("#password", "a brand new password")
    admin.get_by_role("button", name="Reset password").click()
    admin.wait_for_selector(".govuk-notification-banner--success")

    dsl.reload()  # the DSL's session ended with the reset
    assert "/login" in dsl.url and "Your session has ended" in dsl.inner_text("main")
    dsl.close()

    admin.locator("#users tr", has_text="sam.worker@northshire.gov.example").get_by_role("button").click()
    admin.wait_for_selector(".govuk-notification-banner--success")
    assert "Disabled" in admin.locator("#users tr", has_text="sam.worker@northshire.gov.example").inner_text()
    admin.close()
    worker = login(browser, base, "sam.worker@northshire.gov.example")
    assert "/login" in worker.url and "Enter a correct email address and password" in worker.inner_text("main")
    worker.close()
    assert PASSWORD  # the worker's own password no longer opens anything


def test_docs_render_under_the_content_security_policy(served: tuple[Pipeline, str], browser: Browser) -> None:
    _, base = served
    page = browser.new_page()  # the real CSP: nothing bypassed
    blocked: list[str] = []
    page.on("console", lambda message: blocked.append(message.text)
            if "Content Security Policy" in message.text else None)
    page.goto(f"{base}/docs")
    page.wait_for_selector(".opblock", timeout=15000)
    assert "/api/events/self-harm-attendance" in page.inner_text("#swagger-ui")
    screenshot(page, "api-docs")
    page.goto(f"{base}/login")
    page.wait_for_function("document.body.classList.contains('govuk-frontend-supported')")
    assert blocked == []
    page.close()
