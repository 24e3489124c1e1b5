"""The API's OpenAPI document and its /docs page, as the contract describes the API.

FastAPI's generated document knows neither the Avro schemas nor the answers the routes really give, so
this module rewrites it: one path per event type whose request body is built from that type's Avro schema
(``application/json`` and ``application/avro``), 202, 409, 404, 422 and 503 as the intake answers them,
the real ``{errors: [{field, message}]}`` shape in place of FastAPI's validation error everywhere, the
bearer scheme on every /api route, and typed responses for each route. /docs is Swagger UI from npm,
served from /static with no inline script (the Content-Security-Policy allows none).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse

from pipeline import codec

BEARER: list[dict[str, list[str]]] = [{"bearerAuth": []}]
TIME = {"type": "string", "format": "date-time"}
NULLABLE_TIME = {"anyOf": [TIME, {"type": "null"}]}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


class AvroToJsonSchema:
    """Avro schema -> JSON Schema (OpenAPI 3.1) for the JSON form the intake accepts: plain values, dates as
    YYYY-MM-DD, times as ISO-8601 with an offset, null for an absent optional field. Named records and
    enums become components, shared between event types."""

    def __init__(self) -> None:
        self.components: dict[str, Any] = {}

    def convert(self, avro: Any, namespace: str = "") -> dict[str, Any]:
        if isinstance(avro, str):
            return self._primitive(avro)
        if isinstance(avro, list):
            options = [o for o in avro if o != "null"]
            inner = self.convert(options[0], namespace) if len(options) == 1 else \
                {"anyOf": [self.convert(o, namespace) for o in options]}
            return _nullable(inner) if "null" in avro else inner
        kind = avro["type"]
        logical = avro.get("logicalType")
        if logical in ("timestamp-micros", "timestamp-millis"):
            return {**TIME, "description": "ISO-8601 with an offset, e.g. 2026-11-24T20:00:00+00:00"}
        if logical == "date":
            return {"type": "string", "format": "date"}
        if kind == "record":
            return self._named(avro, self._record)
        if kind == "enum":
            return self._named(avro, lambda a: {"type": "string", "enum": list(a["symbols"])})
        if kind == "array":
            return {"type": "array", "items": self.convert(avro["items"], namespace)}
        if kind == "map":
            return {"type": "object", "additionalProperties": self.convert(avro["values"], namespace)}
        return self._primitive(kind)

    def _named(self, avro: dict[str, Any], build: Any) -> dict[str, str]:
        name = avro["name"]
        if name not in self.components:
            self.components[name] = {}  # reserve first: a record may refer to itself
            schema = build(avro)
            if avro.get("doc"):
                schema["description"] = avro["doc"]
            self.components[name] = schema
        return _ref(name)

    def _record(self, avro: dict[str, Any]) -> dict[str, Any]:
        properties: dict[str, Any] = {}
        required = []
        for field in avro["fields"]:
            schema = self.convert(field["type"])
            if field["name"] == "event_id":
                schema = {"type": "string", "format": "uuid", "description": "Producer-assigned; the same id twice "
                          "is one event"}
            if field.get("doc"):
                schema = {**schema, "description": field["doc"]}
            properties[field["name"]] = schema
            if "default" not in field:
                required.append(field["name"])
        return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}

    @staticmethod
    def _primitive(kind: str) -> dict[str, Any]:
        return {"string": {"type": "string"}, "boolean": {"type": "boolean"}, "int": {"type": "integer"},
                "long": {"type": "integer"}, "float": {"type": "number"}, "double": {"type": "number"},
                "bytes": {"type": "string", "format": "byte"}, "null": {"type": "null"}}.get(kind, {})


def _error_responses(*codes: int) -> dict[str, Any]:
    described = {
        401: ("No token, or a token that is not valid", "Detail"),
        403: ("A route this role never uses", "Detail"),
        404: ("Not found, or outside the caller's scope (the same body either way)", "Detail"),
        409: ("The request conflicts with the current state", "Detail"),
        422: ("Invalid: each error names a field, never its value", "Errors"),
        503: ("Not ready, or (Kafka deployment) the broker is unreachable: retry after Retry-After", "Detail"),
    }
    return {str(code): {"description": described[code][0],
                        "content": {"application/json": {"schema": _ref(described[code][1])}}} for code in codes}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


COMMON_SCHEMAS: dict[str, Any] = {
    "Detail": {"type": "object", "properties": {"detail": {"type": "string"}}, "required": ["detail"]},
    "Errors": {"type": "object", "required": ["errors"], "properties": {"errors": {"type": "array", "items": {
        "type": "object", "required": ["field", "message"],
        "properties": {"field": {"type": "string", "description": "Path of the field, e.g. child.date_of_birth"},
                       "message": {"type": "string"}}}}}},
    "EventAccepted": {"type": "object", "required": ["event_id", "status"], "properties": {
        "event_id": {"type": "string", "format": "uuid"},
        "status": {"type": "string", "enum": ["accepted", "processed", "review", "withheld", "dead_lettered"]}}},
    "EventStatus": {"type": "object", "required": ["event_id", "status", "match", "notifications"], "properties": {
        "event_id": {"type": "string"},
        "status": {"type": "string", "enum": ["accepted", "processed", "review", "withheld", "dead_lettered"]},
        "match": {"type": "object", "properties": {
            "outcome": _nullable({"type": "string", "enum": ["linked", "review", "no_match"]}),
            "child_id": _nullable({"type": "string"}),
            "breakdown": {"type": "object", "description": "Managers only: the match decision's breakdown"}}},
        "notifications": {"type": "array", "items": {"type": "object", "properties": {
            "id": {"type": "string"}, "recipient_role": {"type": "string"}}}}}},
    "Notification": {"type": "object", "required": ["id", "pathway", "recipient_role", "status", "created_at"],
                     "properties": {
                         "id": {"type": "string"}, "pathway": {"type": "string", "enum": ["self-harm", "missing"]},
                         "kind": {"type": "string", "enum": ["alert", "reminder", "escalation", "review", "decision"]},
                         "recipient_role": {"type": "string"},
                         "status": {"type": "string", "enum": ["pending", "delivered", "viewed", "acknowledged",
                                                               "withheld", "failed"]},
                         "urgency": {"type": "string", "enum": ["ROUTINE", "URGENT"]},
                         "created_at": TIME, "acknowledged_at": NULLABLE_TIME}},
    "Deadline": {"type": "object", "properties": {
        "id": {"type": "string"}, "kind": {"type": "string"}, "subject_id": {"type": "string"}, "due_at": TIME,
        "escalation_level": {"type": "integer"}, "state": {"type": "string", "enum": ["open", "closed"]}}},
    "AuditEntry": {"type": "object", "properties": {
        "id": {"type": "integer"}, "at": TIME, "actor": {"type": "string"},
        "action": {"type": "string", "enum": ["matched", "created", "delivered", "viewed", "acknowledged", "escalated",
                                              "withheld", "released"]}, "reason": {"type": "string"}}},
    "Episode": {"type": "object", "properties": {
        "episode_id": {"type": "string"}, "reported_at": NULLABLE_TIME, "last_seen_at": NULLABLE_TIME,
        "risk_grade": _nullable({"type": "string"}), "missing_from": _nullable({"type": "string"}),
        "exploitation_flags": {"type": "array", "items": {"type": "string"}}, "found_at": NULLABLE_TIME,
        "returned_to": _nullable({"type": "string"}),
        "state": {"type": "string", "enum": ["missing", "found", "reported_found_only"]},
        "return_interview_outcome": _nullable({"type": "string"}),
        "deadlines": {"type": "array", "items": _ref("Deadline")}}},
    "Health": {"type": "object", "properties": {"status": {"type": "string", "enum": ["ok", "starting"]}}},
}

# (method, path) -> the successful response's schema, for routes whose handlers return plain dicts.
RESPONSES: dict[tuple[str, str], dict[str, Any]] = {
    ("get", "/health"): _ref("Health"),
    ("get", "/api/events/{event_id}"): _ref("EventStatus"),
    ("post", "/api/events/{event_id}/decision"): _ref("EventAccepted"),
    ("post", "/api/events/{event_id}/review"): _ref("EventAccepted"),
    ("get", "/api/notifications"): {"type": "array", "items": _ref("Notification")},
    ("get", "/api/notifications/{notification_id}"): {"allOf": [_ref("Notification"), {"type": "object", "properties": {
        "reason": {"type": "string"}, "content": {"type": "object"}, "outcome": _nullable({"type": "string"}),
        "event_id": {"type": "string"}, "school_urn": _nullable({"type": "string"})}}]},
    ("post", "/api/notifications/{notification_id}/acknowledge"): _ref("Notification"),
    ("get", "/api/deadlines"): {"type": "array", "items": _ref("Deadline")},
    ("get", "/api/children/{child_id}/episodes"): {"type": "array", "items": _ref("Episode")},
    ("get", "/api/audit"): {"type": "array", "items": _ref("AuditEntry")},
}


def event_paths(converter: AvroToJsonSchema) -> dict[str, Any]:
    paths = {}
    for event_type in codec.EVENT_TYPES:
        avro = json.loads(codec.schema_path(event_type).read_text(encoding="utf-8"))
        body = converter.convert(avro)
        responses: dict[str, Any] = {"202": _json(_ref("EventAccepted"), "Stored (or the same event again: its "
                                                                          "current status)")}
        responses.update(_error_responses(401, 403, 409, 422, 503))
        paths[f"/api/events/{event_type}"] = {"post": {
            "tags": ["events"], "summary": f"Send a {event_type} event", "operationId": f"send_{event_type}",
            "description": (f"{avro.get('doc', '')} Producers only. The body is the Avro schema "
                            f"`schemas/{event_type}.avsc` as JSON, or `application/avro` single-object encoding "
                            "(C3 01, the schema's CRC-64-AVRO fingerprint, the Avro binary). Answered 202 once "
                            "durably stored; an invalid body is kept as a dead letter."),
            "security": BEARER,
            "requestBody": {"required": True, "content": {
                "application/json": {"schema": body},
                "application/avro": {"schema": {"type": "string", "format": "binary"}}}},
            "responses": responses,
        }}
    return paths


def build_openapi(app: FastAPI) -> dict[str, Any]:
    document = get_openapi(title=app.title, version="1.0.0", routes=app.routes,
                           description="The safeguarding partnership pipeline's HTTP API. Every /api route takes "
                                       "`Authorization: Bearer TOKEN` (from `safeguard users add`). Lists are "
                                       "newest first and take `?limit=N` and `?before=ID`.")
    converter = AvroToJsonSchema()
    paths: dict[str, Any] = document.get("paths", {})
    generic = paths.get("/api/events/{event_type}", {})
    generic.pop("post", None)
    if not generic:
        paths.pop("/api/events/{event_type}", None)
    for path, operations in paths.items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            schema = RESPONSES.get((method, path))
            if schema is not None:
                responses["200"] = _json(schema)
            if path.startswith("/api/") and not path.startswith("/api/callbacks/"):  # callbacks: provider-signed
                operation["security"] = BEARER
                codes = [401, 403, 404] + ([409] if method == "post" else []) + [422]
                responses.update(_error_responses(*codes))
    paths.update(event_paths(converter))
    document["paths"] = dict(sorted(paths.items()))
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas.update(COMMON_SCHEMAS)
    schemas.update(converter.components)
    components["securitySchemes"] = {"bearerAuth": {"type": "http", "scheme": "bearer",
                                                    "description": "An API token from `safeguard users add`"}}
    return document


DOCS_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>API documentation</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/static/swagger/swagger-ui.css"></head>
<body><main id="swagger-ui"><h1>API documentation</h1><p>The OpenAPI document is at
<a href="/openapi.json">/openapi.json</a>.</p></main>
<script src="/static/swagger/swagger-ui-bundle.js"></script>
<script src="/static/swagger/docs.js"></script>
</body></html>"""


router = APIRouter(include_in_schema=False)


@router.get("/docs")
def docs() -> HTMLResponse:
    return HTMLResponse(DOCS_PAGE)


def install(app: FastAPI) -> None:
    """Replace FastAPI's document with ``build_openapi`` and serve /docs (Swagger UI from /static)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.include_router(router)
