"""``create_app`` only assembles: every route lives in a router module of its own (none is a closure inside
``create_app``), and routes reach their services through ``app.state``, so two apps in one process never
share one's services."""

from __future__ import annotations

from pathlib import Path

from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from pipeline.bootstrap import build
from pipeline.entrypoints import api, web
from tests.integration.conftest import make_settings


def test_create_app_defines_no_route_of_its_own(tmp_path: Path) -> None:
    app = api.create_app(build(make_settings(tmp_path)))
    own = [route.path for route in app.routes if isinstance(route, APIRoute)]
    assert own == []  # FastAPI's /openapi.json and the /static mount are not APIRoutes
    for router in (*api.ROUTERS, *web.ROUTERS):
        for route in router.routes:
            assert isinstance(route, APIRoute)
            assert "<locals>" not in route.endpoint.__qualname__, route.path


def test_two_apps_answer_from_their_own_services(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    ready, starting = build(make_settings(tmp_path / "a")), build(make_settings(tmp_path / "b"))
    ready.ready.set()
    assert TestClient(api.create_app(ready)).get("/health").json() == {"status": "ok"}
    answer = TestClient(api.create_app(starting)).get("/health")
    assert (answer.status_code, answer.json()) == (503, {"status": "starting"})
