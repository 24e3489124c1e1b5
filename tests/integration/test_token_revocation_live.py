"""A bearer token is refused on the very next request after its user is disabled by another process: `safeguard
run` serving as a real child process, `safeguard users disable` run as a separate one while it serves, the same
kept-alive HTTP connection before and after. A token issued while the server runs works at once."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.support.runtime import Runner
from tests.support.world import AMELIA, attendance

REFUSED = {"detail": "authentication required"}


def test_a_token_disabled_from_the_cli_is_refused_by_the_running_server_on_the_next_request(tmp_path: Path) -> None:
    runner = Runner(tmp_path)
    hospital, store = runner.prepare()  # the reference data, and a producer h@test.example
    store.dispose()
    try:
        runner.start()
        late = runner.cli("users", "add", "--role", "producer", "--email", "late@test.example").strip().splitlines()[-1]
        with httpx.Client(base_url=f"http://127.0.0.1:{runner.port}", timeout=10) as client:
            def post(token: str) -> httpx.Response:
                return client.post("/api/events/self-harm-attendance", json=attendance(AMELIA),
                                   headers={"Authorization": f"Bearer {token}"})

            sent = post(hospital)
            assert sent.status_code == 202, sent.text
            event_id = sent.json()["event_id"]
            mine = client.get(f"/api/events/{event_id}", headers={"Authorization": f"Bearer {hospital}"})
            assert mine.status_code == 200
            assert post(late).status_code == 202, "a token issued while the server runs works at once"

            runner.cli("users", "disable", "--email", "h@test.example")  # another process, while serving

            refused = post(hospital)  # the very next request, on the same connection
            assert refused.status_code == 401 and refused.json() == REFUSED
            assert refused.headers["WWW-Authenticate"] == "Bearer"
            looked = client.get(f"/api/events/{event_id}", headers={"Authorization": f"Bearer {hospital}"})
            assert looked.status_code == 401 and looked.json() == REFUSED
            assert post(late).status_code == 202, "another producer's token goes on working"
        assert runner.terminate() == 0
    finally:
        runner.cleanup()
