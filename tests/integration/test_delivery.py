"""Delivery through the running pipeline, against real local servers: a real SMTP server (aiosmtpd), the real
twilio client against a fake Twilio API, the real Notify client against a fake Notify API that checks its JWT,
and a webhook receiver that checks the signature. The channels are wired from settings by bootstrap.

Retries are scaled down by configuration (first retry after 1 s, at most 2 s apart, no jitter) so an outage
of a few seconds stands for the 30 s one of the issue.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select
from twilio.request_validator import RequestValidator

from pipeline.adapters import tables as t
from pipeline.settings import deep_merge
from tests.integration.conftest import Pipeline, start_pipeline
from tests.support.providers import (
    NOTIFY_KEY,
    TWILIO_SID,
    TWILIO_TOKEN,
    WEBHOOK_SECRET,
    FakeProviders,
    FakeSmtp,
)
from tests.support.world import AMELIA, IDENTITY_VALUES, ISLA, JACOB, RUBY, attendance

FAST = {"delivery": {"retry": {"initial": "PT1S", "multiplier": 2, "max_delay": "PT2S", "jitter": 0,
                               "max_attempts": 30, "lease": "PT5S"},
                     "timeout_seconds": 1, "send_concurrency": 4}}
CALLBACK = "http://127.0.0.1:8000/api/callbacks/twilio"



@pytest.fixture(autouse=True)
def clean(providers: FakeProviders, smtp: FakeSmtp) -> None:
    providers.received.clear()
    smtp.received.clear()
    for faults in (*providers.faults.values(), smtp.faults):
        faults.script.clear()
        faults.outage_until = 0.0
        faults.timeout_seconds = 2.0


def real(tmp_path: Path, providers: FakeProviders, smtp: FakeSmtp, overrides: dict[str, Any] | None = None,
         **process: Any) -> Pipeline:
    rules = deep_merge(FAST, {"delivery": {"webhooks": {"100001": f"{providers.url}/hook/100001"}}})
    settings: dict[str, Any] = {
        "smtp_host": "127.0.0.1", "smtp_port": smtp.port, "twilio_account_sid": TWILIO_SID,
        "twilio_auth_token": TWILIO_TOKEN, "twilio_from": "+447700900999", "twilio_base_url": providers.url,
        "webhook_secret": WEBHOOK_SECRET, **process}
    return start_pipeline(tmp_path, deep_merge(rules, overrides or {}), **settings)


def rows(p: Pipeline) -> list[t.Delivery]:
    with p.services.store.read() as session:
        return list(session.exec(select(t.Delivery)).all())


def notifications(p: Pipeline) -> list[t.Notification]:
    with p.services.store.read() as session:
        return list(session.exec(select(t.Notification)).all())


def audit_of(p: Pipeline, subject: str) -> list[str]:
    with p.services.store.read() as session:
        return [f"{a.action}: {a.reason}" for a in session.exec(
            select(t.AuditEntry).where(t.AuditEntry.subject_id == subject)).all()]


def settled(p: Pipeline) -> bool:
    return all(row.state not in ("new", "pending", "sending") for row in rows(p))


def drive(p: Pipeline, done: Callable[[], bool], seconds: float = 40) -> None:
    """Run the pipeline (process, sweep, relay) with the clock moving a second a round, until ``done``."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        p.run()
        if done():
            return
        p.clock.advance(seconds=1)
        time.sleep(0.1)
    raise AssertionError("delivery did not settle in time")


def scies_routes(send: list[str], fallback: list[str]) -> dict[str, Any]:
    """SCiES's routine route: the channels sent at once, then the fallbacks."""
    return {"delivery": {"routes": {"SCIES": {"ROUTINE": {"send": send, "fallback": fallback}}}}}


def acknowledge_as_scies(p: Pipeline, notification_id: str) -> None:
    assert p.client.post(f"/api/notifications/{notification_id}/acknowledge", json={"outcome": "seen"},
                         headers=p.headers("scies")).status_code == 200


def sms_sent_to_scies(tmp_path: Path, providers: FakeProviders, smtp: FakeSmtp) -> tuple[Pipeline, t.Delivery]:
    """An independent school's pupil: SCiES told by SMS (email its fallback), the SMS accepted."""
    p = real(tmp_path, providers, smtp, scies_routes(["sms"], ["email"]))
    assert p.post_event(attendance(ISLA)).status_code == 202
    drive(p, lambda: settled(p))
    (sms,) = [r for r in rows(p) if r.channel == "sms" and r.state == "sent"]
    return p, sms


def test_an_outage_then_recovery_delivers_every_notification_exactly_once(
        tmp_path: Path, providers: FakeProviders, smtp: FakeSmtp, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    p = real(tmp_path, providers, smtp)
    for child in (AMELIA, JACOB, ISLA):
        assert p.post_event(attendance(child)).status_code == 202
    started = time.monotonic()
    for faults in (*providers.faults.values(), smtp.faults):
        faults.outage(3)
    drive(p, lambda: settled(p) and time.monotonic() - started > 3)

    sent = [row for row in rows(p) if row.state == "sent"]
    assert {row.channel for row in sent} == {"email", "sms", "webhook"}
    assert all(row.attempts > 1 for row in sent)  # every channel was down at first
    assert [n.status for n in notifications(p)] == ["delivered"] * len(notifications(p))
    for row in sent:  # each accepted delivery arrived exactly once
        if row.channel == "email":
            assert [r.reference for r in smtp.received].count(row.id) == 1
        elif row.channel == "webhook":
            assert [r.reference for r in providers.of("webhook")].count(row.id) == 1
        else:
            assert [r.reference for r in providers.of("twilio")].count(row.provider_ref or "") == 1
    arrived = len(smtp.received) + len(providers.of("twilio")) + len(providers.of("webhook"))
    assert arrived == len(sent)
    # No message body, webhook body or log line carries an identity value of the test data.
    texts = [json.dumps(r.raw) + r.text + r.to for r in (*smtp.received, *providers.received)]
    texts += [record.getMessage() for record in caplog.records]
    assert [value for value in IDENTITY_VALUES for text in texts if value in text] == []
    # What happened is visible on the notification and in the audit.
    some = sent[0].notification_id
    detail = p.get(f"/api/notifications/{some}", "manager").json()
    assert {d["channel"] for d in detail["deliveries"]} >= {sent[0].channel}
    assert all(d["attempts"] >= 1 and d["last_attempt_at"] for d in detail["deliveries"] if d["status"] == "sent")
    trail = audit_of(p, some)
    assert any(line.startswith("failed:") and "transient" in line for line in trail)
    assert any(line.startswith("delivered:") for line in trail)


def test_a_hard_failure_falls_back_to_the_next_channel_then_the_team_then_the_front_door(
        tmp_path: Path, providers: FakeProviders, smtp: FakeSmtp) -> None:
    p = real(tmp_path, providers, smtp, {"delivery": {"recipient_team": {"SCIES": "EDUCATION_SAFEGUARDING_LEAD"}}})
    smtp.faults.script = [400, 400]  # (SMTP 550) SCiES's email, then the education safeguarding lead's email: refused
    providers.faults["twilio"].script = [400]  # SCiES's SMS: refused
    assert p.post_event(attendance(ISLA)).status_code == 202  # an independent school: SCiES is told
    drive(p, lambda: settled(p) and any(n.recipient_role == "FRONT_DOOR_MANAGER" for n in notifications(p))
          and settled(p))

    by_role = {n.recipient_role: n for n in notifications(p)}
    scies, lead, front = by_role["SCIES"], by_role["EDUCATION_SAFEGUARDING_LEAD"], by_role["FRONT_DOOR"]
    assert (scies.status, lead.status, front.status) == ("failed", "failed", "delivered")
    assert lead.plan_key == "undelivered:team" and front.plan_key == "undelivered:front_door"
    trail = audit_of(p, scies.id)
    assert any("email attempt 1: permanent" in line for line in trail)
    assert any("falling back to sms" in line for line in trail)
    assert any("no channel delivered it" in line for line in trail)
    assert len(smtp.received) >= 1 and smtp.received[0].to == "front.door@northshire.gov.example"
    with p.services.store.read() as session:
        deadline = session.exec(select(t.Deadline).where(t.Deadline.kind == "delivery_failure")).one()
    assert deadline.subject_id == front.id and deadline.escalation_level >= 1  # escalated like a missed deadline
    detail = p.get(f"/api/notifications/{scies.id}", "manager").json()
    assert sorted((d["channel"], d["status"], d["attempts"]) for d in detail["deliveries"]) == [
        ("email", "failed", 1), ("sms", "failed", 1)]


def test_a_timeout_after_acceptance_is_resent_once_and_marked(tmp_path: Path, providers: FakeProviders,
                                                             smtp: FakeSmtp) -> None:
    p = real(tmp_path, providers, smtp)
    smtp.faults.script = ["timeout"]  # the server takes the mail, then answers after the client gave up
    assert p.post_event(attendance(ISLA)).status_code == 202
    drive(p, lambda: settled(p))
    (row,) = [r for r in rows(p) if r.channel == "email"]
    assert (row.state, row.attempts, row.ambiguous_resends) == ("sent", 2, 1)
    assert [r.reference for r in smtp.received].count(row.id) == 2  # once, and the one marked re-send
    assert any("possible duplicate" in line for line in audit_of(p, row.notification_id))


def test_a_recipient_with_no_contact_reaches_the_front_door(tmp_path: Path, providers: FakeProviders,
                                                           smtp: FakeSmtp) -> None:
    p = real(tmp_path, providers, smtp)
    event = attendance(RUBY)  # Quiet Lane Primary has no DSL contact on file
    assert p.post_event(event).status_code == 202
    drive(p, lambda: settled(p) and bool(smtp.received))
    (note,) = notifications(p)
    assert note.recipient_role == "FRONT_DOOR" and note.status == "delivered"
    assert "no contact on file for dsl" in note.reason
    assert [r.to for r in smtp.received] == ["front.door@northshire.gov.example"]
    assert any("sent to the front door" in line for line in audit_of(p, event["event_id"]))


def test_once_acknowledged_in_the_web_app_no_retry_or_fallback_is_sent(
        tmp_path: Path, providers: FakeProviders, smtp: FakeSmtp) -> None:
    """SCiES's email is retrying through an outage when they acknowledge the alert in the web app: the retry and
    the SMS fallback are not sent (they would only repeat what the recipient has), and nothing is escalated."""
    p = real(tmp_path, providers, smtp, scies_routes(["email"], ["sms"]))
    smtp.faults.outage(60)
    assert p.post_event(attendance(ISLA)).status_code == 202
    p.run()
    (note,) = notifications(p)
    (email,) = [r for r in rows(p) if r.channel == "email"]
    assert email.state == "pending" and email.attempts == 1  # the first try met the outage: a retry waits
    acknowledge_as_scies(p, note.id)
    smtp.faults.outage_until = 0.0  # the server is back: a retry now would go through
    drive(p, lambda: settled(p))

    assert {(r.channel, r.state, r.attempts, r.last_error) for r in rows(p)} == {
        ("email", "skipped", 1, "not sent: acknowledged in the web app first"),
        ("sms", "skipped", 0, "not sent: acknowledged in the web app first")}
    assert not smtp.received and not providers.of("twilio")
    assert [(n.recipient_role, n.status) for n in notifications(p)] == [("SCIES", "acknowledged")]
    assert not any("falling back" in line or "no channel delivered" in line for line in audit_of(p, note.id))


def test_a_send_cut_short_is_not_resent_once_acknowledged_and_says_its_outcome_is_unknown(
        tmp_path: Path, providers: FakeProviders, smtp: FakeSmtp) -> None:
    """A relay died while sending SCiES's email (the row is still ``sending`` and its lease ran out), and SCiES
    acknowledged meanwhile: no re-send, and the row says it is not known whether the cut-short attempt arrived."""
    p = real(tmp_path, providers, smtp, scies_routes(["email"], []))
    smtp.faults.outage(60)
    assert p.post_event(attendance(ISLA)).status_code == 202
    p.run()
    (note,) = notifications(p)
    with p.services.store.transaction() as session:
        (email,) = session.exec(select(t.Delivery).where(t.Delivery.channel == "email")).all()
        email.state, email.next_attempt_at = "sending", p.clock.now  # the lease runs out as the clock moves on
        session.add(email)
    acknowledge_as_scies(p, note.id)
    smtp.faults.outage_until = 0.0
    drive(p, lambda: settled(p))

    (row,) = [r for r in rows(p) if r.channel == "email"]
    assert (row.state, row.attempts, row.last_outcome) == ("skipped", 1, "ambiguous")
    assert row.last_error is not None and "not re-sent" in row.last_error and "unknown" in row.last_error
    assert not smtp.received
    assert [n.status for n in notifications(p)] == ["acknowledged"]
    assert any("email attempt 1: ambiguous" in line and "not re-sent" in line for line in audit_of(p, note.id))


def test_a_failure_reported_after_sent_moves_on_no_further_once_acknowledged(
        tmp_path: Path, providers: FakeProviders, smtp: FakeSmtp) -> None:
    p, sms = sms_sent_to_scies(tmp_path, providers, smtp)
    acknowledge_as_scies(p, sms.notification_id)
    params = {"MessageSid": sms.provider_ref or "", "MessageStatus": "failed", "AccountSid": TWILIO_SID}
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(CALLBACK, params)
    assert p.client.post("/api/callbacks/twilio", data=params,
                         headers={"X-Twilio-Signature": signature}).status_code == 204
    drive(p, lambda: settled(p))

    assert {r.channel: (r.state, r.last_error) for r in rows(p)} == {
        "sms": ("failed", "twilio: failed"), "email": ("skipped", "not sent: acknowledged in the web app first")}
    assert not smtp.received
    assert [(n.recipient_role, n.status) for n in notifications(p)] == [("SCIES", "acknowledged")]
    trail = audit_of(p, sms.notification_id)
    assert any("failed after it was sent" in line for line in trail)
    assert not any("falling back" in line or "no channel delivered" in line for line in trail)


def test_a_notification_only_viewed_is_still_retried_until_it_is_delivered(
        tmp_path: Path, providers: FakeProviders, smtp: FakeSmtp) -> None:
    p = real(tmp_path, providers, smtp, scies_routes(["email"], []))
    smtp.faults.outage(60)
    assert p.post_event(attendance(ISLA)).status_code == 202
    p.run()
    (note,) = notifications(p)
    assert p.get(f"/api/notifications/{note.id}", "scies").status_code == 200  # opened, not acknowledged
    assert [n.status for n in notifications(p)] == ["viewed"]
    smtp.faults.outage_until = 0.0
    drive(p, lambda: settled(p))

    (email,) = [r for r in rows(p) if r.channel == "email"]
    assert (email.state, email.attempts) == ("sent", 2)
    assert [r.reference for r in smtp.received] == [email.id]


def test_twilio_callbacks_need_a_valid_signature_and_failed_after_sent_falls_back(
        tmp_path: Path, providers: FakeProviders, smtp: FakeSmtp) -> None:
    p, sms = sms_sent_to_scies(tmp_path, providers, smtp)
    assert providers.of("twilio")[0].raw["StatusCallback"] == CALLBACK
    params = {"MessageSid": sms.provider_ref or "", "MessageStatus": "failed", "AccountSid": TWILIO_SID}

    forged = p.client.post("/api/callbacks/twilio", data=params, headers={"X-Twilio-Signature": "Zm9yZ2Vk"})
    unsigned = p.client.post("/api/callbacks/twilio", data=params)
    wrong_key = RequestValidator("not-the-token").compute_signature(CALLBACK, params)
    other_key = p.client.post("/api/callbacks/twilio", data=params, headers={"X-Twilio-Signature": wrong_key})
    assert [forged.status_code, unsigned.status_code, other_key.status_code] == [403, 403, 403]
    assert [r.state for r in rows(p) if r.channel == "sms"] == ["sent"] and not smtp.received

    signature = RequestValidator(TWILIO_TOKEN).compute_signature(CALLBACK, params)
    assert p.client.post("/api/callbacks/twilio", data=params,
                         headers={"X-Twilio-Signature": signature}).status_code == 204
    drive(p, lambda: settled(p) and bool(smtp.received))
    states = {r.channel: r.state for r in rows(p)}
    assert states == {"sms": "failed", "email": "sent"}
    assert [r.to for r in smtp.received] == ["scies@northshire.gov.example"]
    assert any("failed after it was sent" in line for line in audit_of(p, sms.notification_id))


def test_notify_sends_templates_with_only_urgency_and_link_and_its_callbacks_need_the_token(
        tmp_path: Path, providers: FakeProviders, smtp: FakeSmtp) -> None:
    p = real(tmp_path, providers, smtp,
             {"delivery": {"email": "notify", "sms": "notify",
                           "notify": {"email_template_id": "tmpl-email", "sms_template_id": "tmpl-sms"}}},
             notify_api_key=NOTIFY_KEY, notify_base_url=providers.url, notify_callback_token="callback-token")
    assert p.post_event(attendance(ISLA)).status_code == 202
    drive(p, lambda: settled(p))
    (sent,) = providers.of("notify-email")
    assert sent.raw["template_id"] == "tmpl-email" and sent.to == "scies@northshire.gov.example"
    personalisation = json.loads(sent.text)
    assert set(personalisation) == {"urgency", "link"} and personalisation["urgency"] == "routine"
    # The link is the notification itself (the app asks whoever follows it to sign in); no token in it.
    assert re.fullmatch(r"http://127\.0\.0\.1:8000/notifications/[0-9a-f-]{36}", personalisation["link"])
    assert not smtp.received  # email goes through Notify now
    (row,) = [r for r in rows(p) if r.state == "sent"]
    body = {"id": row.provider_ref, "reference": row.id, "status": "delivered"}
    assert p.client.post("/api/callbacks/notify", json=body).status_code == 403
    assert p.client.post("/api/callbacks/notify", json=body,
                         headers={"Authorization": "Bearer wrong"}).status_code == 403
    assert p.client.post("/api/callbacks/notify", json=body,
                         headers={"Authorization": "Bearer callback-token"}).status_code == 204
    assert [r.state for r in rows(p) if r.id == row.id] == ["delivered"]


def test_on_postgresql_several_relays_share_the_rows_and_never_send_one_twice(tmp_path: Path,
                                                                               postgres_url: str) -> None:
    """Delivery rows are claimed with FOR UPDATE SKIP LOCKED: three relays at once, each row sent once."""
    from consumers.intake_consumer import IntakeConsumer
    from pipeline.adapters.channels import RecordingChannel
    from pipeline.service.relay import deliver_due

    p = start_pipeline(tmp_path, FAST, database_url=postgres_url)
    email, sms = RecordingChannel("email"), RecordingChannel("sms")
    p.services.delivery.channels = {"email": email, "sms": sms}
    for _ in range(20):
        assert p.post_event(attendance(AMELIA, exploitation_screening="CONCERN")).status_code == 202
    IntakeConsumer(p.services.store, p.services.ctx, p.clock).run_once(1000)

    def worker() -> None:
        while deliver_due(p.services.store, p.services.delivery, p.clock(), batch=5):
            pass

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    sent = [m.delivery_id for m in (*email.sent, *sms.sent)]
    accepted = [row.id for row in rows(p) if row.state == "sent"]
    assert len(accepted) > 40 and sorted(sent) == sorted(accepted)  # every accepted row sent, none twice
    assert {n.status for n in notifications(p)} == {"delivered"}
    p.services.store.dispose()
