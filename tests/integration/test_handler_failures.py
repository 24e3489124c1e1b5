"""An accepted event whose handler fails is never only a dead letter: it stays accepted, is tried again with
a growing delay, after the last try the front door is alerted and admins have a `processing_failed` entry,
and `safeguard events retry` processes it once after the fault is fixed."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from typing import Any

import pytest
from click.testing import Result
from sqlmodel import func, select
from typer.testing import CliRunner

from pipeline.adapters import tables as t
from pipeline.adapters.repository import Repository
from pipeline.entrypoints import cli
from pipeline.service import dispatch
from pipeline.service.handlers import Context
from tests.integration.conftest import Pipeline
from tests.support.world import AMELIA, attendance

SAFEGUARD = [sys.executable, "-m", "pipeline.entrypoints.cli"]


def fail_for(monkeypatch: pytest.MonkeyPatch, attendance_id: str) -> None:
    """The self-harm handler raises for one attendance (a bug that only some input reaches)."""
    original = dispatch.HANDLERS["self-harm-attendance"]

    def faulty(repo: Repository, event: t.Event, record: dict[str, Any], ctx: Context, now: Any) -> None:
        if record["attendance_id"] == attendance_id:
            raise RuntimeError("a bug reached by this event")
        original(repo, event, record, ctx, now)

    monkeypatch.setitem(dispatch.HANDLERS, "self-harm-attendance", faulty)


def stored(p: Pipeline, event_id: str) -> t.Event:
    with p.services.store.read() as session:
        return session.exec(select(t.Event).where(t.Event.event_id == event_id)).one()


def count(p: Pipeline, model: type, *where: Any) -> int:
    with p.services.store.read() as session:
        return int(session.exec(select(func.count()).select_from(model).where(*where)).one())


def cli_env(p: Pipeline) -> dict[str, str]:
    settings = p.services.settings
    return {"SAFEGUARD_DATABASE_URL": settings.database_url, "SAFEGUARD_CONFIG": str(settings.config),
            "SAFEGUARD_VAR_DIR": str(settings.var_dir)}


def safeguard(p: Pipeline, *args: str) -> subprocess.CompletedProcess[str]:
    """The command as an operator runs it, in a process of its own."""
    return subprocess.run([*SAFEGUARD, *args], capture_output=True, text=True, env={**os.environ, **cli_env(p)},
                          timeout=120)


def safeguard_here(p: Pipeline, *args: str) -> Result:
    """The same command in this process (quicker; only once no fault is patched in)."""
    return CliRunner().invoke(cli.app, list(args), env=cli_env(p))


def front_door_alerts(p: Pipeline) -> list[dict[str, Any]]:
    alerts = []
    for item in p.get("/api/notifications", "front_door").json():
        detail = p.get(f"/api/notifications/{item['id']}", "front_door").json()
        if detail["content"].get("problem") == "processing_failed":
            alerts.append(detail)
    return alerts


def test_a_failing_event_is_retried_then_held_alerted_and_run_once_after_the_fix(
        pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    p = pipeline
    before, bad, after = attendance(AMELIA), attendance(AMELIA), attendance(AMELIA)
    fail_for(monkeypatch, bad["attendance_id"])
    for event in (before, bad, after):
        assert p.post_event(event).status_code == 202
    p.run()

    # The rest of the batch is unaffected; the failing event stays accepted with its error, nothing dead-lettered.
    assert stored(p, before["event_id"]).status == stored(p, after["event_id"]).status == "processed"
    assert count(p, t.Notification, t.Notification.event_id == before["event_id"]) > 0
    failing = stored(p, bad["event_id"])
    assert (failing.status, failing.attempts, failing.error) == ("accepted", 1, "RuntimeError")
    assert failing.next_attempt_at == p.clock() + timedelta(seconds=10)
    assert count(p, t.DeadLetter) == 0
    answer = p.get(f"/api/events/{bad['event_id']}", "producer")
    assert answer.status_code == 200 and answer.json()["status"] == "accepted"

    p.run()  # not due yet: not tried again
    assert stored(p, bad["event_id"]).attempts == 1
    for tries in (2, 3, 4):  # the delay doubles: 10 s, 20 s, 40 s, ...
        p.clock.advance(seconds=10 * 2 ** (tries - 2) - 1)
        p.run()
        assert stored(p, bad["event_id"]).attempts == tries - 1
        p.clock.advance(seconds=1)
        p.run()
        assert stored(p, bad["event_id"]).attempts == tries
        assert front_door_alerts(p) == []
    p.clock.advance(seconds=80)
    p.run()  # the fifth and last try: held, the front door told, an entry for admins
    held = stored(p, bad["event_id"])
    assert (held.status, held.attempts, held.held_at, held.next_attempt_at) == ("accepted", 5, p.clock(), None)
    alerts = front_door_alerts(p)
    assert len(alerts) == 1 and alerts[0]["content"]["event_id"] == bad["event_id"]
    assert alerts[0]["event_id"] == bad["event_id"] and "Amelia" not in str(alerts[0])
    audit = [a["action"] for a in p.get(f"/api/audit?subject={bad['event_id']}", "manager").json()]
    assert audit == ["processing_failed"]
    p.clock.advance(hours=6)
    p.run()  # held: no more automatic tries
    assert stored(p, bad["event_id"]).attempts == 5
    assert p.get(f"/api/events/{bad['event_id']}", "producer").json()["status"] == "accepted"
    assert count(p, t.DeadLetter) == 0

    monkeypatch.undo()  # the fault is fixed (the command below runs in a process of its own anyway)
    listed = safeguard_here(p, "events", "held")
    assert listed.exit_code == 0 and listed.stdout.startswith(bad["event_id"]) and "Amelia" not in listed.stdout
    dsl_before = count(p, t.Notification, t.Notification.recipient_role == "dsl")
    result = safeguard(p, "events", "retry")
    assert result.returncode == 0, result.stderr
    assert f"{bad['event_id']}: processed" in result.stdout
    assert stored(p, bad["event_id"]).status == "processed"
    assert count(p, t.Notification, t.Notification.recipient_role == "dsl") == dsl_before + 1

    again = safeguard_here(p, "events", "retry", bad["event_id"])  # processed once, however often asked
    assert again.exit_code == 0 and "already processed" in again.stdout
    assert again.stdout.splitlines()[-1] == "0 processed, 1 already processed, 0 not"
    assert safeguard_here(p, "events", "retry").stdout.strip() == "no held events"
    p.run()
    assert count(p, t.Notification, t.Notification.recipient_role == "dsl") == dsl_before + 1
    assert count(p, t.Notification, t.Notification.event_id == bad["event_id"],
                 t.Notification.recipient_role == "dsl") == 1
    body = p.get(f"/api/events/{bad['event_id']}", "producer").json()
    assert body["status"] == "processed" and body["match"]["outcome"] == "linked"
    missing = safeguard_here(p, "events", "retry", "00000000-0000-4000-8000-000000000000")
    assert missing.exit_code == 1 and "not found" in missing.stdout


def test_a_retry_that_fails_again_keeps_the_event_held(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    p = pipeline
    bad = attendance(AMELIA)
    fail_for(monkeypatch, bad["attendance_id"])
    p.post_event(bad)
    for _ in range(5):
        p.run()
        p.clock.advance(hours=1)
    assert stored(p, bad["event_id"]).held_at is not None

    from pipeline.service.retries import retry_events

    outcome = retry_events(p.services.store, p.services.ctx, p.clock)  # in this process: the fault is still here
    assert [(o.event_id, o.outcome) for o in outcome] == [(bad["event_id"], "failed")]
    still = stored(p, bad["event_id"])
    assert (still.status, still.attempts) == ("accepted", 6) and still.held_at is not None
    assert len(front_door_alerts(p)) == 1  # the front door already knows
    assert count(p, t.DeadLetter) == 0
