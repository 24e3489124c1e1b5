"""/docs and /openapi.json describe the API as it really answers: a valid OpenAPI 3.1 document, each event
type's body from its Avro schema, 202/409/422 with the real error shape, the bearer scheme, typed responses."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
from fastapi.testclient import TestClient
from openapi_spec_validator import validate

from pipeline import codec
from pipeline.bootstrap import build
from pipeline.entrypoints.api import create_app
from tests.integration.conftest import make_settings
from tests.support.world import AMELIA, attendance


def _document(tmp_path: Path) -> tuple[TestClient, dict]:  # type: ignore[type-arg]
    services = build(make_settings(tmp_path))
    client = TestClient(create_app(services))
    return client, client.get("/openapi.json").json()


def test_the_document_is_valid_and_describes_every_event_type(tmp_path: Path) -> None:
    client, document = _document(tmp_path)
    validate(document)
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http", "scheme": "bearer", "description": "An API token from `safeguard users add`"}
    assert "HTTPValidationError" not in json.dumps(document)
    for event_type in codec.EVENT_TYPES:
        post = document["paths"][f"/api/events/{event_type}"]["post"]
        assert post["security"] == [{"bearerAuth": []}]
        assert set(post["requestBody"]["content"]) == {"application/json", "application/avro"}
        assert {"202", "409", "422"} <= set(post["responses"])
        assert post["responses"]["422"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Errors"}
    notifications = document["paths"]["/api/notifications"]["get"]["responses"]["200"]
    assert notifications["content"]["application/json"]["schema"]["items"] == {
        "$ref": "#/components/schemas/Notification"}

    # The self-harm body schema accepts a real event and refuses one with a field missing or a bad enum.
    as_json_schema = json.loads(json.dumps(document["components"]["schemas"]).replace(
        "#/components/schemas/", "#/$defs/"))
    body = {"$defs": as_json_schema, "$ref": "#/$defs/SelfHarmAttendance"}
    event = attendance(AMELIA)
    jsonschema.validate(event, body, format_checker=jsonschema.FormatChecker())
    assert client.post("/api/events/self-harm-attendance", json=event).status_code == 401  # bearer needed
    missing = {k: v for k, v in event.items() if k != "arrived_at"}
    bad_enum = {**event, "consent": "MAYBE"}
    for wrong in (missing, bad_enum):
        assert not jsonschema.Draft202012Validator(body).is_valid(wrong)


def test_docs_page_is_served_locally_with_no_inline_script(tmp_path: Path) -> None:
    client, _ = _document(tmp_path)
    page = client.get("/docs")
    assert page.status_code == 200
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page.text, re.S)
    assert scripts and all('src="/static/' in attrs and not body.strip() for attrs, body in scripts)
    assert "https://" not in page.text  # no CDN
