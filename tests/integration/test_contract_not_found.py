"""Contract: anything outside the caller's scope is a 404 whose body is identical to not-found, and that is
the same body an unmatched route gets."""

from __future__ import annotations

import uuid

from tests.integration.conftest import Pipeline
from tests.support.world import AMELIA, attendance


def test_out_of_scope_unknown_id_and_unknown_route_have_one_404_body(pipeline: Pipeline) -> None:
    assert pipeline.post_event(attendance(AMELIA)).status_code == 202
    pipeline.run()
    note = pipeline.get("/api/notifications", "dsl").json()[0]

    unknown_route = pipeline.get("/api/no-such-route", "dsl")
    unknown_id = pipeline.get(f"/api/notifications/{uuid.uuid4()}", "dsl_other")
    out_of_scope = pipeline.get(f"/api/notifications/{note['id']}", "dsl_other")
    acknowledge_other = pipeline.client.post(f"/api/notifications/{note['id']}/acknowledge",
                                             json={"outcome": "not mine"}, headers=pipeline.headers("dsl_other"))
    unknown_event = pipeline.get(f"/api/events/{uuid.uuid4()}", "producer")

    responses = [unknown_route, unknown_id, out_of_scope, acknowledge_other, unknown_event]
    assert [r.status_code for r in responses] == [404] * len(responses)
    assert {r.content for r in responses} == {unknown_route.content}
    assert unknown_route.json() == {"detail": "Not Found"}
