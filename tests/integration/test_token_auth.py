"""API bearer tokens against a running app: a token stops working the moment its user is disabled (no
restart, nothing cached), on SQLite and on PostgreSQL, while other users' tokens go on working; a token of another
kind than "api" (the web login tokens of old) never authenticates the API."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.service.users import disable_user, issue_token
from tests.integration.conftest import USERS, start_pipeline
from tests.support.world import AMELIA, attendance

REFUSED = {"detail": "authentication required"}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_token_stops_working_the_moment_its_user_is_disabled(request: pytest.FixtureRequest,
                                                               tmp_path: Path,
                                                               backend: str) -> None:
    url = request.getfixturevalue("postgres_url") if backend == "postgresql" else None
    pipeline = start_pipeline(tmp_path, database_url=url, web_passwords=False)
    try:
        assert pipeline.post_event(attendance(AMELIA)).status_code == 202
        pipeline.run()
        assert pipeline.get("/api/notifications", "dsl").json(), "the dsl sees the notification before"

        with pipeline.services.store.unit_of_work() as port:
            for who in ("dsl", "producer"):
                disable_user(port, USERS[who][1], pipeline.clock())

        refused = pipeline.get("/api/notifications", "dsl")  # the very next request, same app
        assert refused.status_code == 401 and refused.json() == REFUSED
        posted = pipeline.post_event(attendance(AMELIA))
        assert posted.status_code == 401 and posted.json() == REFUSED
        assert pipeline.get("/api/notifications", "manager").status_code == 200  # others are unaffected
        assert pipeline.post_event(attendance(AMELIA), who="producer2").status_code == 202
    finally:
        pipeline.services.store.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_token_of_another_kind_than_api_does_not_authenticate_the_api(request: pytest.FixtureRequest,
                                                                        tmp_path: Path, backend: str) -> None:
    url = request.getfixturevalue("postgres_url") if backend == "postgresql" else None
    pipeline = start_pipeline(tmp_path, database_url=url, web_passwords=False)
    try:
        with pipeline.services.store.unit_of_work() as port:
            manager = port.user_by_email(USERS["manager"][1])
            assert manager is not None
            web_token = issue_token(port, manager, kind="web")  # as web logins once issued them
        refused = pipeline.client.get("/api/notifications", headers={"Authorization": f"Bearer {web_token}"})
        assert refused.status_code == 401 and refused.json() == REFUSED
        assert pipeline.get("/api/notifications", "manager").status_code == 200  # the user's API token works
    finally:
        pipeline.services.store.dispose()
