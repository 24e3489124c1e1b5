"""``POST /api/events/{event_type}`` through the intake's dispatch answers exactly as through FastAPI's routing.

Two pipelines with the same reference data and users take the same requests: one app as ``create_app`` builds it
(the dispatch hands the intake's requests to the endpoint), the other with the dispatch taken out (every request
routed by FastAPI). Status, headers (the security headers, ``WWW-Authenticate``, ``Retry-After``) and body must
be the same, for acceptance and for every refusal, and requests the dispatch must not take pass through it.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from pipeline.entrypoints.api import create_app
from pipeline.entrypoints.intake_routes import IntakeDispatch
from pipeline.web.security import SecurityHeaders
from tests.integration.conftest import Pipeline, start_pipeline
from tests.support.world import AMELIA, attendance

VARYING = {"date", "content-length"}  # content-length is compared through the body itself


def _routed_only(pipeline: Pipeline) -> TestClient:
    app = create_app(pipeline.services)
    app.user_middleware = [m for m in app.user_middleware if m.cls is not IntakeDispatch]
    return TestClient(app)


def _answer(client: TestClient, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, list[Any], bytes]:
    response = client.post(path, content=body, headers={"Content-Type": "application/json", **headers})
    kept = sorted((name, value) for name, value in response.headers.items() if name not in VARYING)
    return response.status_code, kept, response.content


def test_the_dispatch_answers_as_the_routed_app_does(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    dispatched, routed = start_pipeline(tmp_path / "a"), start_pipeline(tmp_path / "b")
    routed_client = _routed_only(routed)
    try:
        event = attendance(AMELIA)
        good = json.dumps(event).encode()
        conflicting = json.dumps({**event, "risk_summary": "something else"}).encode()
        invalid = json.dumps({**attendance(AMELIA), "arrived_at": "not a time"}).encode()
        too_big = json.dumps({**attendance(AMELIA), "risk_summary": "x" * 70_000}).encode()
        path = "/api/events/self-harm-attendance"
        cases: list[tuple[str, bytes, str | None]] = [
            (path, good, "producer"),  # 202 accepted
            (path, good, "producer"),  # 202 again: the same event, its current status
            (path, conflicting, "producer"),  # 409
            (path, invalid, "producer"),  # 422, kept as a dead letter
            (path, too_big, "producer"),  # 422 for the size
            ("/api/events/no-such-type", good, "producer"),  # 404
            (path, good, "dsl"),  # 403: not a producer
            (path, good, None),  # 401 with WWW-Authenticate
            (path, good, "bad token"),
            ("/api/events/", good, "producer"),  # no event type: not the intake route
            (f"/api/events/{uuid.uuid4()}/review", b"{}", "producer"),  # another route under the same prefix
            ("/api/events/self-harm-attendance/", good, "producer"),
        ]
        answers = []
        for where, body, who in cases:
            pair = []
            for pipeline, client in ((dispatched, dispatched.client), (routed, routed_client)):
                headers = {} if who is None else {"Authorization": "Bearer not-a-token"} if who == "bad token" \
                    else pipeline.headers(who)
                pair.append(_answer(client, where, body, headers))
            assert pair[0] == pair[1], (where, who)
            answers.append(pair[0])
        assert [status for status, _, _ in answers] == [202, 202, 409, 422, 422, 404, 403, 401, 401, 404, 422, 404]
        for _, headers, _ in answers:
            assert "content-security-policy" in dict(headers)
        assert dict(answers[7][1])["www-authenticate"] == "Bearer"
        assert json.loads(answers[0][2]) == {"event_id": event["event_id"], "status": "accepted"}
    finally:
        dispatched.services.store.dispose()
        routed.services.store.dispose()


def test_the_dispatch_sits_inside_the_security_headers(tmp_path: Path) -> None:
    pipeline = start_pipeline(tmp_path)
    try:
        app = pipeline.client.app
        assert [m.cls for m in app.user_middleware] == [SecurityHeaders, IntakeDispatch]  # type: ignore[attr-defined]
    finally:
        pipeline.services.store.dispose()
