"""Every route as every wrong caller: 401 without a valid token, 403 for a role that never uses the route,
404 (byte-identical to a real not-found) for anything outside the caller's scope, and 200 for the owner."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import Pipeline, start_pipeline
from tests.support.world import AMELIA, JACOB, attendance


@dataclass
class World:
    pipeline: Pipeline
    ids: dict[str, str]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    pipeline = start_pipeline(Path(tmp_path_factory.mktemp("scope")))
    event = attendance(AMELIA)  # Riverside (100001): dsl, deputy_dsl
    jacob = attendance(JACOB)  # looked after: worker sam.worker, team manager, LA_888
    withheld = attendance(AMELIA, consent="REFUSED")
    for item in (event, jacob, withheld):
        assert pipeline.post_event(item).status_code == 202
    pipeline.run()
    notes = pipeline.get("/api/notifications", "manager").json()

    def note(role: str, event_id: str) -> str:
        detail = [n for n in notes if n["recipient_role"] == role and
                  pipeline.get(f"/api/notifications/{n['id']}", "manager").json()["event_id"] == event_id]
        return detail[0]["id"]

    ids = {"event": event["event_id"], "dsl_note": note("dsl", event["event_id"]),
           "worker_note": note("worker", jacob["event_id"]), "la_note": note("LA_888", jacob["event_id"]),
           "withheld_note": note("dsl", withheld["event_id"]), "withheld_event": withheld["event_id"]}
    yield World(pipeline, ids)
    pipeline.services.store.dispose()


def call(world: World, method: str, path: str, who: str | None, body: Any = None) -> Any:
    headers = {} if who is None else ({"Authorization": "Bearer not-a-real-token"} if who == "garbage"
                                      else world.pipeline.headers(who))
    return world.pipeline.client.request(method, path.format(**world.ids), headers=headers, json=body)


ACK = {"outcome": "seen"}
# (method, path, body, callers who may use it in scope, roles that never use it)
ROUTES = [
    ("GET", "/api/events/{event}", None, ["manager"], ["dsl", "worker", "front_door", "admin"]),
    ("GET", "/api/notifications", None, ["dsl", "worker", "scies", "manager"], ["producer", "admin"]),
    ("GET", "/api/notifications/{dsl_note}", None, ["dsl", "manager"], ["producer", "admin"]),
    ("POST", "/api/notifications/{dsl_note}/acknowledge", ACK, ["dsl"], ["producer", "admin", "manager"]),
    ("GET", "/api/deadlines?state=overdue", None, ["manager"], ["producer", "dsl", "worker", "front_door", "admin"]),
    ("GET", "/api/audit?subject={event}", None, ["manager"], ["producer", "dsl", "worker", "front_door", "admin"]),
    ("POST", "/api/events/self-harm-attendance", {}, [], ["dsl", "worker", "front_door", "manager", "admin"]),
    ("POST", "/api/events/{withheld_event}/decision", {"decision": "close", "reason": "r"}, [],
     ["producer", "dsl", "worker", "scies", "admin"]),
    ("POST", "/api/events/{event}/review", {"child_id": None, "reason": "r"}, [],
     ["producer", "dsl", "worker", "scies", "admin"]),
]
# (method, path, body, in-role caller outside the item's scope)
OUT_OF_SCOPE = [
    ("GET", "/api/events/{event}", None, "producer2"),
    ("GET", "/api/notifications/{dsl_note}", None, "dsl_other"),
    ("POST", "/api/notifications/{dsl_note}/acknowledge", ACK, "dsl_other"),
    ("GET", "/api/notifications/{worker_note}", None, "worker_other"),
    ("POST", "/api/notifications/{worker_note}/acknowledge", ACK, "worker_other"),
    ("GET", "/api/notifications/{la_note}", None, "scies"),
    ("POST", "/api/notifications/{la_note}/acknowledge", ACK, "front_door"),
    ("GET", "/api/notifications/{dsl_note}", None, "worker"),
    ("GET", "/api/notifications/{withheld_note}", None, "dsl"),
    ("POST", "/api/notifications/{withheld_note}/acknowledge", ACK, "dsl"),
]


@pytest.mark.parametrize("method,path,body", [(m, p, b) for m, p, b, _, _ in ROUTES],
                         ids=[f"{m} {p}" for m, p, *_ in ROUTES])
@pytest.mark.parametrize("who", [None, "garbage"], ids=["no-token", "bad-token"])
def test_unauthenticated_is_401(world: World, method: str, path: str, body: Any, who: str | None) -> None:
    assert call(world, method, path, who, body).status_code == 401


@pytest.mark.parametrize("method,path,body,who", [(m, p, b, w) for m, p, b, _, never in ROUTES for w in never],
                         ids=[f"{m} {p} as {w}" for m, p, _, _, never in ROUTES for w in never])
def test_a_role_that_never_uses_the_route_is_403(world: World, method: str, path: str, body: Any, who: str) -> None:
    assert call(world, method, path, who, body).status_code == 403


@pytest.mark.parametrize("method,path,body,who", OUT_OF_SCOPE, ids=[f"{m} {p} as {w}" for m, p, _, w in OUT_OF_SCOPE])
def test_out_of_scope_is_indistinguishable_from_not_found(world: World, method: str, path: str, body: Any,
                                                          who: str) -> None:
    response = call(world, method, path, who, body)
    ghost = call(world, method, _ghost(path), who, body)
    assert response.status_code == 404
    assert response.content == ghost.content and ghost.status_code == 404


def _ghost(path: str) -> str:
    """The same route for an id that does not exist."""
    return path.format_map(dict.fromkeys(("event", "dsl_note", "worker_note", "la_note", "withheld_note",
                                          "withheld_event"), "00000000-0000-4000-8000-000000000000"))


@pytest.mark.parametrize("method,path,body,who", [(m, p, b, w) for m, p, b, ok, _ in ROUTES for w in ok],
                         ids=[f"{m} {p} as {w}" for m, p, _, ok, _ in ROUTES for w in ok])
def test_the_caller_in_scope_gets_200(world: World, method: str, path: str, body: Any, who: str) -> None:
    assert call(world, method, path, who, body).status_code == 200


def test_in_scope_owners_of_the_other_items(world: World) -> None:
    assert call(world, "GET", "/api/notifications/{worker_note}", "worker").status_code == 200
    assert call(world, "GET", "/api/events/{event}", "producer").status_code == 200
    assert call(world, "GET", "/api/notifications/{withheld_note}", "manager").status_code == 200
