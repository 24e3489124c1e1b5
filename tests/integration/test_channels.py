"""One contract for every delivery channel, run against real local servers: an SMTP server (aiosmtpd), a fake
Twilio API and a fake GOV.UK Notify API (the real client libraries pointed at them; Notify's JWT is checked),
and a webhook receiver that checks the HMAC signature. Failures are classified the way the relay needs."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from pipeline.adapters.channels import (
    Channel,
    DeliveryError,
    Message,
    NotifyChannel,
    SignedWebhookChannel,
    SmtpEmailChannel,
    TwilioSmsChannel,
    login_link,
    message_text,
    verify_webhook,
    webhook_signature,
)
from pipeline.domain.delivery import Outcome
from tests.support.providers import (
    NOTIFY_KEY,
    TWILIO_SID,
    TWILIO_TOKEN,
    WEBHOOK_SECRET,
    FakeProviders,
    FakeSmtp,
    Faults,
    Received,
    free_port,
)

PUBLIC = "http://127.0.0.1:8000"


def message(channel: str, to: str) -> Message:
    return Message(notification_id="n-1", delivery_id="d-1", channel=channel, to=to, urgency="URGENT",
                   body=message_text("URGENT", PUBLIC), link=login_link(PUBLIC), school_urn="100001",
                   pathway="self-harm")


@dataclass
class Harness:
    channel: Channel
    to: str
    received: Callable[[], list[Received]]
    faults: Faults



def build(name: str, providers: FakeProviders, smtp: FakeSmtp) -> Harness:
    if name == "smtp":
        return Harness(SmtpEmailChannel("127.0.0.1", smtp.port, "notify@council.example", timeout=1),
                       "dsl@riverside.sch.example", lambda: smtp.received, smtp.faults)
    if name == "twilio":
        return Harness(TwilioSmsChannel(TWILIO_SID, TWILIO_TOKEN, "+447700900999", base_url=providers.url, timeout=1),
                       "+447700900001", lambda: providers.of("twilio"), providers.faults["twilio"])
    if name in ("notify-sms", "notify-email"):
        kind = name.split("-")[1]
        to = "+447700900001" if kind == "sms" else "dsl@riverside.sch.example"
        return Harness(NotifyChannel(kind, NOTIFY_KEY, f"template-{kind}", base_url=providers.url, timeout=1),
                       to, lambda: providers.of(name), providers.faults["notify"])
    channel = SignedWebhookChannel({"100001": f"{providers.url}/hook/100001"}, WEBHOOK_SECRET, timeout=1)
    return Harness(channel, f"{providers.url}/hook/100001", lambda: providers.of("webhook"),
                   providers.faults["webhook"])


@pytest.fixture(params=["smtp", "twilio", "notify-sms", "notify-email", "webhook"])
def harness(request: pytest.FixtureRequest, providers: FakeProviders, smtp: FakeSmtp) -> Iterator[Harness]:
    providers.received.clear()
    smtp.received.clear()
    built = build(request.param, providers, smtp)
    built.faults.script.clear()
    built.faults.outage_until = 0.0
    built.faults.timeout_seconds = 2.0
    yield built
    built.faults.script.clear()


def test_a_message_arrives_once_with_the_link_and_only_urgency(harness: Harness) -> None:
    reference = harness.channel.send(message(harness.channel.kind, harness.to))
    (got,) = harness.received()
    assert "/login" in got.text and ("urgent" in got.text.lower())
    if harness.channel.provider in ("twilio", "notify"):
        assert reference  # the provider's id, for its status callbacks
    if harness.channel.provider == "notify":
        assert json.loads(got.text) == {"urgency": "urgent", "link": f"{PUBLIC}/login"}
        assert got.raw["template_id"].startswith("template-") and got.reference == "d-1"
    if harness.channel.kind == "webhook":
        assert json.loads(got.text) == {"notification_id": "n-1", "school_urn": "100001", "pathway": "self-harm",
                                        "urgency": "URGENT", "delivery_id": "d-1", "link": f"{PUBLIC}/login"}


@pytest.mark.parametrize(("answer", "outcome"), [(500, Outcome.TRANSIENT), (429, Outcome.TRANSIENT),
                                                 (400, Outcome.PERMANENT), ("timeout", Outcome.AMBIGUOUS)])
def test_failures_are_classified_for_the_relay(harness: Harness, answer: int | str, outcome: Outcome) -> None:
    if harness.channel.provider == "smtp" and answer == 429:
        answer = 500  # SMTP has no rate-limit code of its own: 451 stands for both
    harness.faults.script.append(answer)
    with pytest.raises(DeliveryError) as raised:
        harness.channel.send(message(harness.channel.kind, harness.to))
    assert raised.value.outcome is outcome
    assert harness.to not in str(raised.value)  # errors name what failed, never a value
    # A timeout happened after the provider had the message: exactly the ambiguous case.
    assert len(harness.received()) == (1 if answer == "timeout" else 0)


def test_nothing_listening_is_transient() -> None:
    dead = free_port()
    channels: list[Channel] = [
        SmtpEmailChannel("127.0.0.1", dead, "notify@council.example", timeout=1),
        TwilioSmsChannel(TWILIO_SID, TWILIO_TOKEN, "+447700900999", base_url=f"http://127.0.0.1:{dead}", timeout=1),
        NotifyChannel("sms", NOTIFY_KEY, "t", base_url=f"http://127.0.0.1:{dead}", timeout=1),
        SignedWebhookChannel({}, WEBHOOK_SECRET, default_url=f"http://127.0.0.1:{dead}/hook", timeout=1),
    ]
    for channel in channels:
        with pytest.raises(DeliveryError) as raised:
            channel.send(message(channel.kind, "+447700900001" if channel.kind == "sms" else
                                 f"http://127.0.0.1:{dead}/hook" if channel.kind == "webhook" else "a@b.example"))
        assert raised.value.outcome is Outcome.TRANSIENT, channel.provider


def test_notify_with_a_wrong_key_is_refused_by_the_fake_which_checks_the_jwt(providers: FakeProviders) -> None:
    wrong = NOTIFY_KEY[:-36] + "00000000-0000-4000-8000-000000000000"
    before = providers.refused_auth
    with pytest.raises(DeliveryError) as raised:
        NotifyChannel("email", wrong, "t", base_url=providers.url, timeout=1).send(message("email", "a@b.example"))
    assert raised.value.outcome is Outcome.PERMANENT and providers.refused_auth == before + 1


def test_a_webhook_signature_covers_the_timestamp_and_the_body() -> None:
    body, stamp = b'{"notification_id": "n-1"}', str(int(time.time()))
    signature = webhook_signature(WEBHOOK_SECRET, stamp, body)
    assert verify_webhook(WEBHOOK_SECRET, stamp, body, signature)
    assert not verify_webhook(WEBHOOK_SECRET, stamp, body + b" ", signature)
    assert not verify_webhook(WEBHOOK_SECRET, str(int(stamp) - 1), body, signature)
    assert not verify_webhook("another secret", stamp, body, signature)
    old = str(int(time.time()) - 3600)
    assert not verify_webhook(WEBHOOK_SECRET, old, body, webhook_signature(WEBHOOK_SECRET, old, body))
