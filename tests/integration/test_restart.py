"""A restart loses nothing: `safeguard run` as a real child process, SIGKILLed mid-burst and again while
escalations are due, then stopped with SIGTERM. Afterwards every accepted event has one set of effects and
every due ladder step fired exactly once."""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path

import httpx
from sqlmodel import select

from bench.processes import log_tail, wait_for
from pipeline.adapters import tables as t
from tests.support.runtime import Runner as Runner  # where the other restart tests used to import it from
from tests.support.world import AMELIA, attendance

BURST_TIMEOUT = 180.0  # seconds: generous, for a loaded machine; the waits end as soon as their condition holds
SETTLE_TIMEOUT = 240.0


def post_burst(port: int, token: str, events: list[dict[str, object]], accepted: list[str],
               killed: threading.Event) -> None:
    """POST the events in turn, noting each one answered 202. Stops once the server has been killed under it; a
    slow answer (a loaded machine) is not taken for a kill: that event is left uncounted and the burst goes on."""
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {token}"},
                      timeout=60) as client:
        for event in events:
            try:
                response = client.post("/api/events/self-harm-attendance", json=event)
            except httpx.HTTPError:
                if killed.is_set():
                    return  # the server was killed under us
                continue
            if response.status_code == 202:
                accepted.append(str(event["event_id"]))


def test_sigkill_mid_burst_and_mid_escalation_loses_and_repeats_nothing(tmp_path: Path) -> None:
    runner = Runner(tmp_path)
    token, store = runner.prepare()
    events = [attendance(AMELIA) for _ in range(240)]
    accepted: list[str] = []
    killed = threading.Event()
    try:
        runner.start()
        sender = threading.Thread(target=post_burst, args=(runner.port, token, events[:160], accepted, killed))
        sender.start()
        wait_for(lambda: len(accepted) >= 60 or not sender.is_alive(), timeout=BURST_TIMEOUT, interval=0.01,
                 what="60 events accepted")
        killed.set()
        runner.kill()  # mid-burst
        sender.join(timeout=BURST_TIMEOUT)
        assert not sender.is_alive()
        first_burst = len(accepted)
        assert 60 <= first_burst < 160

        killed.clear()
        runner.start()
        post_burst(runner.port, token, events[160:], accepted, killed)

        def some_ladder_step_fired() -> bool:  # some ladders have had a step now, the later ones not yet
            with store.read() as session:
                return session.exec(select(t.Deadline).where(t.Deadline.escalation_level >= 1)).first() is not None

        wait_for(some_ladder_step_fired, timeout=BURST_TIMEOUT, interval=0.05, what="a first ladder step",
                 explain=lambda: log_tail(runner.log))
        runner.kill()  # mid-escalation
        runner.start()

        def settled() -> bool:
            with store.read() as session:
                pending = session.exec(select(t.Event).where(t.Event.status == "accepted")).first()
                open_step = session.exec(select(t.Deadline).where(t.Deadline.escalation_level < 2)).first()
                unrelayed = session.exec(select(t.Outbox).where(t.Outbox.relayed_at == None)).first()  # noqa: E711
            return pending is None and open_step is None and unrelayed is None

        wait_for(settled, timeout=SETTLE_TIMEOUT, interval=0.5,
                 what="every event processed, every ladder finished and the outbox relayed",
                 explain=lambda: log_tail(runner.log))
        assert runner.terminate() == 0  # SIGTERM stops it cleanly
    finally:
        runner.cleanup()

    with store.read() as session:
        rows = session.exec(select(t.Event)).all()
        notifications = session.exec(select(t.Notification)).all()
        deadlines = session.exec(select(t.Deadline)).all()
        audit = session.exec(select(t.AuditEntry).where(t.AuditEntry.action == "escalated")).all()
    by_id = Counter(row.event_id for row in rows)
    assert set(accepted) <= set(by_id) and all(count == 1 for count in by_id.values())
    assert all(row.status == "processed" for row in rows)
    alerts = Counter((n.event_id, n.recipient_role) for n in notifications if n.kind == "alert")
    assert set(alerts.values()) == {1} and len(alerts) == 2 * len(rows)  # DSL and deputy, once each
    assert len(deadlines) == len(rows)
    assert all(d.escalation_level == 2 and d.next_step_at is None for d in deadlines)
    fired = Counter((n.deadline_id, n.kind, n.recipient_role) for n in notifications if n.kind != "alert")
    assert set(fired.values()) == {1} and len(fired) == 3 * len(deadlines)  # dsl+deputy reminder, SCIES
    assert Counter(a.subject_id for a in audit if a.subject_id in {d.id for d in deadlines}) == \
        {d.id: 2 for d in deadlines}
    log = (tmp_path / "run.log").read_text()
    assert "Amelia" not in log and "Hartley" not in log
    json.dumps(accepted)  # the accepted ids are plain strings
