"""A real `safeguard run` child process, delivering to a real SMTP server on loopback, is SIGKILLed while
messages are in flight. After a restart nothing is lost (every notification delivered) and nothing is sent twice
except a delivery that was mid-send when the process died (the ambiguous case), which is re-sent at most once
and audited as a possible duplicate."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import httpx
import yaml
from sqlmodel import select

from bench.processes import wait_for
from pipeline.adapters import tables as t
from pipeline.adapters.store import Store
from tests.support.providers import FakeSmtp
from tests.support.runtime import Runner
from tests.support.world import AMELIA, IDENTITY_VALUES, attendance


def _statuses(store: Store) -> tuple[str, str]:
    """"all delivered" once there are notifications, every one delivered, and no event waits; and the counts."""
    with store.read() as session:
        notes = Counter(n.status for n in session.exec(select(t.Notification)).all())
        waiting = len(session.exec(select(t.Event).where(t.Event.status == "accepted")).all())
    done = bool(notes) and not waiting and set(notes) == {"delivered"}
    return ("all delivered" if done else "not yet"), f"notifications by status {dict(notes)}, events waiting {waiting}"


def test_sigkill_mid_delivery_loses_nothing_and_repeats_only_the_ambiguous(tmp_path: Path) -> None:
    smtp = FakeSmtp().start()
    smtp.faults.delay_seconds = 0.15  # a slow provider, so messages are in flight when the process dies
    runner = Runner(tmp_path)
    config = yaml.safe_load(Path(runner.env["SAFEGUARD_CONFIG"]).read_text())
    config["runtime"]["relay_interval_seconds"] = 0.2
    config.pop("timescales")  # the default acknowledgement deadlines: no reminders during this test
    config["delivery"] = {"retry": {"initial": "PT1S", "max_delay": "PT2S", "jitter": 0, "lease": "PT2S"},
                          "timeout_seconds": 5, "send_concurrency": 2}
    Path(runner.env["SAFEGUARD_CONFIG"]).write_text(yaml.safe_dump(config))
    runner.env.update({"SAFEGUARD_SMTP_HOST": "127.0.0.1", "SAFEGUARD_SMTP_PORT": str(smtp.port)})
    token, store = runner.prepare()
    try:
        runner.start()
        with httpx.Client(base_url=f"http://127.0.0.1:{runner.port}", timeout=5,
                          headers={"Authorization": f"Bearer {token}"}) as client:
            for _ in range(15):
                assert client.post("/api/events/self-harm-attendance", json=attendance(AMELIA)).status_code == 202
        wait_for(lambda: len(smtp.received) >= 6, timeout=120, interval=0.02,
                 what="six messages arriving before the kill", explain=lambda: f"{len(smtp.received)} arrived")
        runner.kill()  # mid-delivery: some sent, some in flight, most not yet
        arrived_before = len(smtp.received)
        assert 6 <= arrived_before < 30, arrived_before

        runner.start()
        wait_for(lambda: _statuses(store)[0] == "all delivered", timeout=240, interval=0.3,
                 what="every event processed and every notification delivered after the restart",
                 explain=lambda: _statuses(store)[1])
        assert runner.terminate() == 0
    finally:
        runner.cleanup()
        smtp.stop()

    with store.read() as session:
        notes = session.exec(select(t.Notification)).all()
        rows = session.exec(select(t.Delivery).where(t.Delivery.channel == "email")).all()
        duplicates = session.exec(select(t.AuditEntry).where(t.AuditEntry.action == "delivered").where(
            t.AuditEntry.reason.contains("possible duplicate"))).all()  # type: ignore[attr-defined]
    assert len(notes) >= 30 and {n.status for n in notes} == {"delivered"}  # nothing lost
    assert len(rows) == len(notes)  # every recipient here has an email address
    arrivals = Counter(r.reference for r in smtp.received)
    for row in rows:
        assert row.state == "sent"
        assert 1 <= arrivals[row.id] <= 1 + row.ambiguous_resends, row.id  # twice only when marked ambiguous
    assert sum(arrivals.values()) == len(rows) + sum(arrivals[r.id] - 1 for r in rows)
    assert len(duplicates) == sum(r.ambiguous_resends for r in rows)
    assert set(arrivals) == {r.id for r in rows}
    log = (tmp_path / "run.log").read_text()
    texts = [r.text for r in smtp.received] + [log]
    assert [v for v in IDENTITY_VALUES for text in texts if v in text] == []
