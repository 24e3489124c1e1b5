"""The web app's security, through HTTP: server-side sessions that expire and are revoked at logout, CSRF on
every form, security headers, and login throttling."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pipeline.entrypoints.api import create_app
from tests.integration.conftest import Pipeline, start_pipeline

PASSWORD = "correct horse battery"
DSL = "dsl@riverside.sch.example"


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    """One pipeline for the module (starting one costs seconds); each test sets the clock it needs."""
    pipeline = start_pipeline(tmp_path_factory.mktemp("web"), {"web": {
        "session_idle": "PT10M", "session_absolute": "PT1H", "login_max_failures": 3, "login_window": "PT15M"}})
    yield pipeline
    pipeline.services.store.dispose()


def csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None, "the page has no CSRF field"
    return found.group(1)


def browser(pipeline: Pipeline) -> TestClient:
    return TestClient(create_app(pipeline.services), follow_redirects=False)


def sign_in(client: TestClient, email: str = DSL, password: str = PASSWORD) -> TestClient:
    token = csrf(client.get("/login").text)
    response = client.post("/login", data={"email": email, "password": password, "csrf_token": token})
    assert response.status_code == 303, response.text
    return client


def test_headers_on_every_response(shared: Pipeline) -> None:
    pipeline = shared
    for path in ("/login", "/health", "/api/notifications"):
        headers = browser(pipeline).get(path).headers
        policy = headers["content-security-policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy
        assert "frame-ancestors 'none'" in policy
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["x-content-type-options"] == "nosniff"


def test_session_is_server_side_and_revoked_at_logout(shared: Pipeline) -> None:
    pipeline = shared
    client = sign_in(browser(pipeline))
    page = client.get("/notifications")
    assert page.status_code == 200 and "<main" in page.text
    assert 'name="viewport"' in page.text and "Skip to main content" in page.text
    assert "Northshire Safeguarding Children Partnership" in page.text
    cookie = client.cookies.get("safeguard_session")
    assert cookie
    assert client.post("/logout", data={"csrf_token": csrf(page.text)}).status_code == 303
    replayed = browser(pipeline)
    replayed.cookies.set("safeguard_session", cookie)
    response = replayed.get("/notifications")
    assert response.status_code == 303 and response.headers["location"].startswith("/login")
    # The API does not take a revoked session either.
    assert replayed.get("/api/notifications").status_code == 401


def test_idle_and_absolute_expiry(shared: Pipeline) -> None:
    pipeline = shared
    client = sign_in(browser(pipeline))
    pipeline.clock.advance(minutes=9)
    assert client.get("/notifications").status_code == 200
    pipeline.clock.advance(minutes=11)  # idle for 11 minutes
    response = client.get("/notifications")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/notifications&ended=1"

    client = sign_in(browser(pipeline))
    for _ in range(7):  # used every 9 minutes, never idle, but older than an hour at the end
        pipeline.clock.advance(minutes=9)
        last = client.get("/notifications")
    assert last.status_code == 303


def test_every_form_needs_its_csrf_token(shared: Pipeline) -> None:
    pipeline = shared
    anonymous = browser(pipeline)
    anonymous.get("/login")
    refused = anonymous.post("/login", data={"email": DSL, "password": PASSWORD})
    assert refused.status_code == 403
    assert "safeguard_session" not in refused.cookies

    client = sign_in(browser(pipeline))
    assert client.post("/logout", data={}).status_code == 403
    assert client.post("/logout", data={"csrf_token": "forged"}).status_code == 403
    assert client.get("/notifications").status_code == 200  # still signed in


def test_login_is_throttled_after_repeated_failures(shared: Pipeline) -> None:
    pipeline, email = shared, "dsl@hilltop.sch.example"
    client = browser(pipeline)
    for _ in range(3):
        token = csrf(client.get("/login").text)
        assert client.post("/login", data={"email": email, "password": "wrong", "csrf_token": token}).status_code == 401
    token = csrf(client.get("/login").text)
    throttled = client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
    assert throttled.status_code == 429 and "Too many failed attempts" in throttled.text
    assert "Wait 15 minutes, then try again" in throttled.text
    assert "safeguard_session" not in throttled.cookies
    pipeline.clock.advance(minutes=16)
    sign_in(client, email)


def test_a_short_throttle_window_is_said_in_whole_minutes(tmp_path: Path) -> None:
    pipeline = start_pipeline(tmp_path, {"web": {"login_max_failures": 1, "login_window": "PT30S"}})
    try:
        client = browser(pipeline)
        for _ in range(2):
            token = csrf(client.get("/login").text)
            answer = client.post("/login", data={"email": DSL, "password": "wrong", "csrf_token": token})
        assert answer.status_code == 429 and "Wait 1 minute, then try again" in answer.text
    finally:
        pipeline.services.store.dispose()


def test_next_only_returns_to_this_site(shared: Pipeline) -> None:
    pipeline = shared
    client = browser(pipeline)
    token = csrf(client.get("/login").text)
    response = client.post("/login", data={"email": DSL, "password": PASSWORD, "csrf_token": token,
                                           "next": "//evil.example/"})
    assert response.headers["location"] == "/"


def test_a_message_links_to_the_notification_through_login(shared: Pipeline) -> None:
    from pipeline.adapters.channels import login_link, message_text
    from tests.support.world import AMELIA, attendance

    pipeline = shared
    pipeline.post_event(attendance(AMELIA))
    pipeline.run()
    note = next(n for n in pipeline.get("/api/notifications", "dsl").json() if n["recipient_role"] == "dsl")
    body = message_text("ROUTINE", "http://127.0.0.1:8000", note["id"])
    assert body.endswith(login_link("http://127.0.0.1:8000", note["id"]))
    link = body.rsplit(" ", 1)[-1].removeprefix("http://127.0.0.1:8000")
    assert link == f"/notifications/{note['id']}"

    client = browser(pipeline)
    followed = client.get(link)  # the link alone signs nobody in
    assert followed.status_code == 303 and followed.headers["location"] == f"/login?next={link}"
    login_page = client.get(followed.headers["location"])
    assert f'name="next" value="{link}"' in login_page.text
    signed_in = client.post("/login", data={"email": DSL, "password": PASSWORD, "next": link,
                                            "csrf_token": csrf(login_page.text)})
    assert signed_in.headers["location"] == link
    assert "Amelia Hartley" in client.get(link).text
