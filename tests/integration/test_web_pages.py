"""The web app's pages through HTTP: who may open what (others get not-found), one acknowledgement for the
school whichever copy it is given on, and the front door's forms refusing what is not a choice."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from pipeline.entrypoints.api import create_app
from tests.integration.conftest import Pipeline, start_pipeline
from tests.support.world import AMELIA, LILY_TYPO, attendance

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    pipeline = start_pipeline(tmp_path_factory.mktemp("pages"))
    yield pipeline
    pipeline.services.store.dispose()


def signed_in(pipeline: Pipeline, email: str) -> tuple[TestClient, str]:
    client = TestClient(create_app(pipeline.services), follow_redirects=False)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert token is not None
    response = client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token.group(1)})
    assert response.status_code == 303
    page = client.get("/signed-in").text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert csrf is not None
    return client, csrf.group(1)


def test_acknowledging_a_reminder_acknowledges_the_school_case(shared: Pipeline) -> None:
    from datetime import UTC, datetime

    pipeline = shared
    event = attendance(AMELIA)
    pipeline.post_event(event)
    pipeline.run()
    pipeline.clock.now = datetime(2026, 11, 25, 12, 1, tzinfo=UTC)  # the reminder fires at 12:00
    pipeline.run()
    rows = pipeline.get("/api/notifications", "dsl").json()
    reminders = [n for n in rows if n["kind"] == "reminder"]
    assert {n["recipient_role"] for n in reminders} == {"dsl", "deputy_dsl"}
    deputy_reminder = next(n for n in reminders if n["recipient_role"] == "deputy_dsl")

    client, csrf = signed_in(pipeline, "dsl@riverside.sch.example")
    inbox = client.get("/notifications").text
    assert inbox.count('class="app-inbox__item"') == 1 and "Reminder sent" in inbox
    views = len([a for a in pipeline.get(f"/api/audit?subject={deputy_reminder['id']}", "manager").json()
                 if a["action"] == "viewed"])
    empty = client.post(f"/notifications/{deputy_reminder['id']}/acknowledge",
                        data={"outcome": " ", "csrf_token": csrf})
    assert empty.status_code == 400 and "Enter what you have done" in empty.text
    assert len([a for a in pipeline.get(f"/api/audit?subject={deputy_reminder['id']}", "manager").json()
                if a["action"] == "viewed"]) == views  # the form sent back is not another opening of the case
    done = client.post(f"/notifications/{deputy_reminder['id']}/acknowledge",
                       data={"outcome": "Seen; parents called", "csrf_token": csrf})
    assert done.status_code == 303
    assert "Acknowledged. Its escalation has stopped" in client.get(done.headers["location"]).text
    assert "Acknowledged. Its escalation has stopped" not in client.get(f"/notifications/{deputy_reminder['id']}").text
    assert {n["status"] for n in pipeline.get("/api/notifications", "dsl").json()} == {"acknowledged"}
    for row in rows:
        audit = pipeline.get(f"/api/audit?subject={row['id']}", "manager").json()
        assert any(a["action"] == "acknowledged" and a["actor"] == "dsl@riverside.sch.example" for a in audit)
    assert "self_harm_acknowledgement" not in {
        d["kind"] for d in pipeline.get("/api/deadlines?state=open", "manager").json()}


def test_pages_out_of_role_or_scope_are_not_found(shared: Pipeline) -> None:
    pipeline = shared
    review = attendance(LILY_TYPO)
    pipeline.post_event(review)
    pipeline.run()
    event_id = review["event_id"]
    scies, _ = signed_in(pipeline, "scies@test.example")
    dsl, _ = signed_in(pipeline, "dsl@riverside.sch.example")
    worker, worker_csrf = signed_in(pipeline, "sam.worker@northshire.gov.example")
    for client in (scies, dsl, worker):
        for path in ("/reviews", f"/reviews/{event_id}", "/decisions", "/admin/users"):
            assert client.get(path).status_code == 404, path
    assert dsl.get("/caseload").status_code == 404
    # A mistyped page address: the service's own page for a browser, the API's JSON body for anything else.
    mistyped = dsl.get("/notifcations", headers={"Accept": "text/html,application/xhtml+xml"})
    assert mistyped.status_code == 404 and "Page not found" in mistyped.text and "<html" in mistyped.text
    assert dsl.get("/notifcations", headers={"Accept": "application/json"}).json() == {"detail": "Not Found"}
    assert dsl.get("/api/notifcations", headers={"Accept": "text/html"}).json() == {"detail": "Not Found"}
    # Return interviews go to the RHI provider here: no worker form.
    assert worker.get("/caseload/episodes/anything/return-interview").status_code == 404
    assert worker.post("/caseload/episodes/anything/return-interview",
                       data={"csrf_token": worker_csrf, "outcome": "COMPLETED"}).status_code == 404

    front_door, csrf = signed_in(pipeline, "fd@test.example")
    assert front_door.get(f"/reviews/{event_id}").status_code == 200
    refused = front_door.post(f"/reviews/{event_id}", data={"csrf_token": csrf, "child_id": "not-a-candidate",
                                                             "reason": "a reason"})
    assert refused.status_code == 400 and "Select the child this is about" in refused.text
    assert pipeline.get(f"/api/events/{event_id}", "manager").json()["status"] == "review"
    viewed = pipeline.get(f"/api/audit?subject={event_id}", "manager").json()
    assert any(a["action"] == "viewed" and a["actor"] == "fd@test.example" for a in viewed)


def test_the_front_door_forms_refuse_a_missing_choice_or_reason_and_a_second_decision(shared: Pipeline) -> None:
    pipeline = shared
    withheld, review = attendance(AMELIA, consent="REFUSED"), attendance(LILY_TYPO)
    for event in (withheld, review):
        pipeline.post_event(event)
    pipeline.run()
    front_door, csrf = signed_in(pipeline, "fd@test.example")
    consent = f"/decisions/{withheld['event_id']}"

    refused = front_door.post(consent, data={"csrf_token": csrf, "decision": "maybe", "reason": ""})
    assert refused.status_code == 400
    assert "Select whether to release it or close it" in refused.text
    assert "Enter the reason for your decision" in refused.text
    assert pipeline.get(f"/api/events/{withheld['event_id']}", "manager").json()["status"] == "withheld"

    decided = front_door.post(consent, data={"csrf_token": csrf, "decision": "close", "reason": "parent told"})
    assert decided.status_code == 303 and decided.headers["location"] == "/decisions?decided=1"
    again = front_door.post(consent, data={"csrf_token": csrf, "decision": "release", "reason": "changed mind"})
    assert again.status_code == 409 and "This has already been decided" in again.text

    page = front_door.get(f"/reviews/{review['event_id']}").text
    children = re.findall(r'name="child_id" type="radio" value="([^"]+)"', page)
    assert children and "none" in children
    chosen = {"csrf_token": csrf, "child_id": children[0], "reason": "checked with the school"}
    decided = front_door.post(f"/reviews/{review['event_id']}", data=chosen)
    assert decided.status_code == 303 and decided.headers["location"] == "/reviews?decided=1"
    again = front_door.post(f"/reviews/{review['event_id']}", data=chosen)
    assert again.status_code == 409 and "This has already been decided" in again.text

    # Once decided, each page says so and what was decided, and the inbox no longer shows them as new.
    settled = front_door.get(f"/reviews/{review['event_id']}").text
    assert "Match review decided" in settled and "Which child is this?" not in settled
    assert re.search(r'id="review-outcome"><strong>Decided: This child: [A-Z][a-z]+ [A-Z][a-z]+\.', settled)
    assert "Consent decision made" in front_door.get(consent).text
    inbox = front_door.get("/notifications").text
    for event in (withheld, review):
        item = inbox[inbox.index(f'href="/{"decisions" if event is withheld else "reviews"}/{event["event_id"]}"'):]
        item = item[:item.index("</li>")]
        assert re.search(r">\s*Decided\s*<", item) and not re.search(r">\s*New\s*<", item)


def test_scies_acknowledging_an_escalation_is_not_told_the_escalation_stopped(sqlite_pipeline: Pipeline) -> None:
    """SCiES's copy of an escalation: acknowledging it records what they did, but the school's deadline stays
    open and its ladder goes on (the education safeguarding lead at 3:30pm); the page says so, not "stopped"."""
    from datetime import UTC, datetime

    pipeline = sqlite_pipeline
    pipeline.post_event(attendance(AMELIA))
    pipeline.run()
    pipeline.clock.now = datetime(2026, 11, 25, 14, 1, tzinfo=UTC)  # reminder at 12:00, SCiES at 14:00
    pipeline.run()
    (escalation,) = [n for n in pipeline.get("/api/notifications", "scies").json() if n["kind"] == "escalation"]
    client, csrf = signed_in(pipeline, "scies@test.example")
    case = client.get(f"/notifications/{escalation['id']}").text
    assert "Still to come on this deadline" in case and "If it is not acknowledged" not in case
    assert "the education safeguarding lead told" in case
    done = client.post(f"/notifications/{escalation['id']}/acknowledge",
                       data={"outcome": "Rang the school", "csrf_token": csrf})
    assert done.status_code == 303
    page = client.get(done.headers["location"]).text
    assert "Acknowledged. What you wrote is in the record of this case." in page
    assert "escalation has stopped" not in page
    assert "self_harm_acknowledgement" in {
        d["kind"] for d in pipeline.get("/api/deadlines?state=open", "manager").json()}
