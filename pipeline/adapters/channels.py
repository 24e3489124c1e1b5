"""Delivery channels: how a recipient learns that a notification is waiting.

Every channel implements one port, ``Channel``: ``send(message)`` returns the provider's reference for the
accepted message (for status callbacks) or raises ``DeliveryError`` whose ``outcome`` says what kind of
failure it was (transient, permanent as the provider reported it, or ambiguous: a timeout after the request
went out). The relay (pipeline/service/relay.py) decides on retries and fallbacks from that.

Real adapters: ``SmtpEmailChannel`` (email over SMTP), ``TwilioSmsChannel`` (SMS through the ``twilio``
package), ``NotifyChannel`` (SMS or email through GOV.UK Notify with ``notifications-python-client``; template
ids, with a personalisation carrying only the urgency and the link) and ``SignedWebhookChannel`` (a JSON POST
to a school management system, HMAC-SHA256 signed over the timestamp and the body). ``RecordingChannel`` is the
fake that records, with scripted failures. ``OutboxFileChannel`` appends each message to a JSON-lines file (the
console of the embedded runtime, always on); it never counts as delivery.

A message never carries names or health detail: only that a safeguarding notification is waiting, whether it is
routine or urgent, and a link to the notification itself (the web app asks whoever follows it to
sign in first; the link never signs anyone in).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import smtplib
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Protocol

import httpx

from pipeline.domain.delivery import Outcome
from pipeline.json_text import json_text

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Message:
    notification_id: str
    delivery_id: str
    channel: str  # email | sms | webhook
    to: str  # the email address, phone number or webhook URL
    urgency: str
    body: str
    link: str
    school_urn: str | None = None
    pathway: str = ""


MESSAGE_FIELDS = tuple(f.name for f in fields(Message))


def login_link(public_url: str, notification_id: str | None = None) -> str:
    """The link a message carries: the notification itself, whose page asks whoever follows it to sign in and
    shows it only to its recipients; never a token. Without an id, the login page."""
    base = public_url.rstrip("/")
    return f"{base}/notifications/{notification_id}" if notification_id else f"{base}/login"


def message_text(urgency: str, public_url: str, notification_id: str | None = None) -> str:
    kind = "An URGENT" if urgency == "URGENT" else "A routine"
    return (f"{kind} safeguarding notification is waiting for you. "
            f"Sign in to read it: {login_link(public_url, notification_id)}")


class DeliveryError(RuntimeError):
    """A delivery that did not go through; ``reason`` names what failed, never a value (no address, no body)."""

    def __init__(self, outcome: Outcome, reason: str) -> None:
        super().__init__(reason)
        self.outcome = outcome
        self.reason = reason


ChannelError = DeliveryError


class Channel(Protocol):
    """Sends one message; returns the provider's reference (or None) once the provider accepted it."""

    kind: str  # email | sms | webhook
    provider: str  # smtp | twilio | notify | webhook | fake

    def send(self, message: Message) -> str | None: ...


def _http_status_outcome(status: int) -> Outcome:
    """A provider's HTTP answer: 429 and 5xx are worth retrying, any other 4xx is the provider refusing it."""
    return Outcome.TRANSIENT if status == 429 or status >= 500 else Outcome.PERMANENT


def _requests_outcome(error: BaseException) -> Outcome:
    """A ``requests`` failure: nothing sent (cannot connect) or ambiguous (the request went out, no answer)."""
    import requests

    if isinstance(error, requests.exceptions.ConnectTimeout):
        return Outcome.TRANSIENT
    if isinstance(error, requests.exceptions.Timeout):
        return Outcome.AMBIGUOUS
    if isinstance(error, requests.exceptions.ConnectionError):
        text = repr(error)
        if "NewConnectionError" in text or "Connection refused" in text or "NameResolutionError" in text:
            return Outcome.TRANSIENT
        return Outcome.AMBIGUOUS
    return Outcome.TRANSIENT


class OutboxFileChannel:
    """Appends every message to var/outbox/messages.jsonl; a record, never a delivery."""

    kind = "outbox"
    provider = "file"

    def __init__(self, directory: Path, public_url: str) -> None:
        self.directory = directory
        self.public_url = public_url
        self._lock = threading.Lock()
        self._directory_made = False

    @property
    def path(self) -> Path:
        return self.directory / "messages.jsonl"

    def send(self, message: Message) -> str | None:
        self.send_many([message])
        return None

    def send_many(self, messages: Sequence[Message]) -> None:
        """Append ``messages`` with one open of the file (the relay records a batch at a time)."""
        # A message's fields are strings: its own attribute dictionary (the fields in their declared order), not
        # asdict's deep copy (most of this channel's cost).
        lines = "".join([json_text(vars(message)) + "\n" for message in messages])
        try:
            with self._lock:
                if not self._directory_made:
                    self.directory.mkdir(parents=True, exist_ok=True)
                    self._directory_made = True
                with self.path.open("a", encoding="utf-8") as handle:
                    handle.write(lines)
        except OSError as error:
            self._directory_made = False  # made again next time, should it have been removed
            raise DeliveryError(Outcome.TRANSIENT, f"outbox file: {type(error).__name__}") from None


class SmtpEmailChannel:
    """Email through an SMTP relay (the council's, or a local one in tests). SMTP 4xx is transient, 5xx
    permanent; a timeout or a dropped connection once the message was being sent is ambiguous."""

    kind = "email"
    provider = "smtp"

    def __init__(self, host: str, port: int, sender: str, timeout: float = 10.0) -> None:
        self.host, self.port, self.sender, self.timeout = host, port, sender, timeout

    def send(self, message: Message) -> str | None:
        email = EmailMessage()
        email["From"] = self.sender
        email["To"] = message.to
        email["Subject"] = ("URGENT: " if message.urgency == "URGENT" else "") + "Safeguarding notification waiting"
        email["X-Safeguard-Delivery"] = message.delivery_id
        email.set_content(message.body)
        try:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        except (OSError, smtplib.SMTPException) as error:
            raise DeliveryError(Outcome.TRANSIENT, f"smtp connect: {type(error).__name__}") from None
        try:
            with smtp:
                smtp.send_message(email)
        except smtplib.SMTPRecipientsRefused as error:
            codes = [code for code, _ in error.recipients.values()]
            outcome = Outcome.TRANSIENT if codes and all(400 <= c < 500 for c in codes) else Outcome.PERMANENT
            raise DeliveryError(outcome, f"smtp: recipient refused ({codes[0] if codes else '?'})") from None
        except smtplib.SMTPResponseException as error:
            outcome = Outcome.TRANSIENT if 400 <= error.smtp_code < 500 else Outcome.PERMANENT
            raise DeliveryError(outcome, f"smtp: {error.smtp_code}") from None
        except (TimeoutError, smtplib.SMTPServerDisconnected, OSError) as error:
            raise DeliveryError(Outcome.AMBIGUOUS, f"smtp: {type(error).__name__} while sending") from None
        except smtplib.SMTPException as error:
            raise DeliveryError(Outcome.TRANSIENT, f"smtp: {type(error).__name__}") from None
        return None


class TwilioSmsChannel:
    """SMS through the ``twilio`` package; ``base_url`` points it at a local fake in tests."""

    kind = "sms"
    provider = "twilio"

    def __init__(self, account_sid: str, auth_token: str, sender: str, *, base_url: str | None = None,
                 status_callback: str | None = None, timeout: float = 10.0) -> None:
        from twilio.http.http_client import TwilioHttpClient
        from twilio.rest import Client

        self.client: Any = Client(account_sid, auth_token, http_client=TwilioHttpClient(timeout=timeout))
        if base_url:
            self.client.api.base_url = base_url.rstrip("/")
        self.sender, self.status_callback = sender, status_callback

    def send(self, message: Message) -> str | None:
        from twilio.base.exceptions import TwilioRestException

        extra = {"status_callback": self.status_callback} if self.status_callback else {}
        try:
            created = self.client.messages.create(to=message.to, from_=self.sender, body=message.body, **extra)
        except TwilioRestException as error:
            raise DeliveryError(_http_status_outcome(int(error.status)), f"twilio: HTTP {error.status}") from None
        except Exception as error:  # noqa: BLE001 - requests' failures, classified by when they happened
            raise DeliveryError(_requests_outcome(error), f"twilio: {type(error).__name__}") from None
        return str(created.sid) if created.sid else None


class NotifyChannel:
    """SMS or email through GOV.UK Notify: a template id, and a personalisation of only the urgency and link."""

    provider = "notify"

    def __init__(self, kind: str, api_key: str, template_id: str, *, base_url: str | None = None,
                 timeout: float = 10.0) -> None:
        from notifications_python_client.notifications import NotificationsAPIClient

        if kind not in ("email", "sms"):
            raise ValueError("GOV.UK Notify sends email or sms")
        self.kind, self.template_id = kind, template_id
        options: dict[str, Any] = {"timeout": timeout}
        if base_url:
            options["base_url"] = base_url
        self.client: Any = NotificationsAPIClient(api_key, **options)

    def send(self, message: Message) -> str | None:
        from notifications_python_client.errors import APIError

        personalisation = {"urgency": "urgent" if message.urgency == "URGENT" else "routine", "link": message.link}
        try:
            if self.kind == "sms":
                answer = self.client.send_sms_notification(message.to, self.template_id, personalisation,
                                                           reference=message.delivery_id)
            else:
                answer = self.client.send_email_notification(message.to, self.template_id, personalisation,
                                                             reference=message.delivery_id)
        except APIError as error:
            if error.response is None and error.__cause__ is not None:
                outcome = _requests_outcome(error.__cause__)
                raise DeliveryError(outcome, f"notify: {type(error.__cause__).__name__}") from None
            raise DeliveryError(_http_status_outcome(error.status_code), f"notify: HTTP {error.status_code}") from None
        except Exception as error:  # noqa: BLE001 - requests' failures, classified by when they happened
            raise DeliveryError(_requests_outcome(error), f"notify: {type(error).__name__}") from None
        return str(answer.get("id")) if isinstance(answer, dict) and answer.get("id") else None


WEBHOOK_SIGNATURE = "X-Safeguard-Signature"
WEBHOOK_TIMESTAMP = "X-Safeguard-Timestamp"


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 over ``timestamp + "." + body``, hex, prefixed ``sha256=``."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_webhook(secret: str, timestamp: str, body: bytes, signature: str, *, now: float | None = None,
                   tolerance_seconds: float = 300.0) -> bool:
    """What a receiver checks: the signature, and a timestamp within ``tolerance_seconds`` (no replays)."""
    try:
        age = abs((time.time() if now is None else now) - float(timestamp))
    except ValueError:
        return False
    return age <= tolerance_seconds and hmac.compare_digest(webhook_signature(secret, timestamp, body), signature)


class SignedWebhookChannel:
    """A signed JSON POST to a school's management system. The body carries only the notification id, the
    school URN, the pathway, the urgency, the delivery id and the login link."""

    kind = "webhook"
    provider = "webhook"

    def __init__(self, urls: Mapping[str, str], secret: str, *, default_url: str | None = None,
                 timeout: float = 10.0) -> None:
        self.urls, self.secret, self.default_url, self.timeout = dict(urls), secret, default_url, timeout
        self._client = httpx.Client(timeout=timeout)

    def url_for(self, school_urn: str | None) -> str | None:
        if not school_urn:
            return None
        return self.urls.get(school_urn) or self.default_url

    def send(self, message: Message) -> str | None:
        body = json.dumps({"notification_id": message.notification_id, "school_urn": message.school_urn,
                           "pathway": message.pathway, "urgency": message.urgency,
                           "delivery_id": message.delivery_id, "link": message.link}).encode()
        timestamp = str(int(time.time()))
        headers = {"Content-Type": "application/json", WEBHOOK_TIMESTAMP: timestamp,
                   WEBHOOK_SIGNATURE: webhook_signature(self.secret, timestamp, body)}
        try:
            response = self._client.post(message.to, content=body, headers=headers)
        except (httpx.ConnectError, httpx.ConnectTimeout) as error:
            raise DeliveryError(Outcome.TRANSIENT, f"webhook: {type(error).__name__}") from None
        except httpx.HTTPError as error:
            raise DeliveryError(Outcome.AMBIGUOUS, f"webhook: {type(error).__name__}") from None
        if response.status_code >= 300:
            raise DeliveryError(_http_status_outcome(response.status_code), f"webhook: HTTP {response.status_code}")
        return None


@dataclass
class RecordingChannel:
    """The fake: records every message it accepts; ``failures`` scripts the outcomes of the next sends."""

    kind: str
    provider: str = "fake"
    sent: list[Message] = field(default_factory=list)
    failures: list[Outcome] = field(default_factory=list)
    always_fail: Outcome | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def send(self, message: Message) -> str | None:
        with self._lock:
            outcome = self.failures.pop(0) if self.failures else self.always_fail
            if outcome is None or outcome is Outcome.AMBIGUOUS:
                self.sent.append(message)  # an ambiguous failure: it arrived, but the answer was lost
            if outcome is not None:
                raise DeliveryError(outcome, f"fake {self.kind}: {outcome.value}")
            return f"fake-{message.delivery_id}"
