"""Delivery channels: how a recipient learns that a notification is waiting.

A message never carries names or health detail: only that a safeguarding notification is waiting, whether
it is routine or urgent, and a link to the notification (which asks the reader to sign in).
``OutboxFileChannel`` appends each message to a JSON-lines file (the console channel of the embedded
runtime, always on); ``SmtpChannel`` (email), ``TwilioSmsChannel`` (SMS, urgent only) and
``WebhookChannel`` (a JSON POST) implement the same ``Channel`` port, and ``FanOutChannel`` sends through
every configured one.
"""

from __future__ import annotations

import json
import logging
import smtplib
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Protocol

import httpx

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Message:
    notification_id: str
    to_email: str | None
    to_phone: str | None
    urgency: str
    body: str


def message_for(notification_id: str, urgency: str, to_email: str | None, to_phone: str | None,
                public_url: str) -> Message:
    # The link is to the notification itself: the web app asks whoever follows it to sign in first, and
    # shows it only to its recipients. The link never signs anyone in by itself (no token in it).
    kind = "An URGENT" if urgency == "URGENT" else "A routine"
    body = (f"{kind} safeguarding notification is waiting for you. "
            f"Sign in to read it: {public_url.rstrip('/')}/notifications/{notification_id}")
    return Message(notification_id, to_email, to_phone, urgency, body)


class Channel(Protocol):
    """Delivers one message; raises on failure (the relay retries later)."""

    public_url: str

    def send(self, message: Message) -> None: ...


class OutboxFileChannel:
    def __init__(self, directory: Path, public_url: str) -> None:
        self.directory = directory
        self.public_url = public_url
        self._lock = threading.Lock()

    @property
    def path(self) -> Path:
        return self.directory / "messages.jsonl"

    def send(self, message: Message) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        with self._lock, self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(asdict(message)) + "\n")
        log.info("delivered notification %s (%s)", message.notification_id, message.urgency.lower())


class ChannelError(RuntimeError):
    """A delivery that did not go through; the notification is marked failed and the reason logged."""


class SmtpChannel:
    """Email through an SMTP relay (the council's, or a local one in tests)."""

    def __init__(self, host: str, port: int, sender: str, public_url: str, timeout: float = 10.0) -> None:
        self.host, self.port, self.sender, self.public_url, self.timeout = host, port, sender, public_url, timeout

    def send(self, message: Message) -> None:
        if not message.to_email:
            return
        email = EmailMessage()
        email["From"] = self.sender
        email["To"] = message.to_email
        email["Subject"] = ("URGENT: " if message.urgency == "URGENT" else "") + "Safeguarding notification waiting"
        email.set_content(message.body)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                smtp.send_message(email)
        except (OSError, smtplib.SMTPException) as error:
            raise ChannelError(f"smtp: {type(error).__name__}") from None


class TwilioSmsChannel:
    """SMS through Twilio, for urgent notifications to recipients with a phone on file."""

    def __init__(self, account_sid: str, auth_token: str, sender: str, public_url: str,
                 base_url: str | None = None) -> None:
        from twilio.rest import Client

        self.client: Any = Client(account_sid, auth_token)
        if base_url:
            self.client.api.base_url = base_url.rstrip("/")
        self.sender, self.public_url = sender, public_url

    def send(self, message: Message) -> None:
        if not message.to_phone or message.urgency != "URGENT":
            return
        from twilio.base.exceptions import TwilioException

        try:
            self.client.messages.create(to=message.to_phone, from_=self.sender, body=message.body)
        except TwilioException as error:
            raise ChannelError(f"twilio: {type(error).__name__}") from None


class WebhookChannel:
    """A JSON POST per message (for a case-management system's inbox); the body carries no personal data."""

    def __init__(self, url: str, public_url: str, timeout: float = 10.0) -> None:
        self.url, self.public_url, self.timeout = url, public_url, timeout

    def send(self, message: Message) -> None:
        body = {"notification_id": message.notification_id, "urgency": message.urgency, "text": message.body}
        try:
            response = httpx.post(self.url, json=body, timeout=self.timeout)
        except httpx.HTTPError as error:
            raise ChannelError(f"webhook: {type(error).__name__}") from None
        if response.status_code >= 300:
            raise ChannelError(f"webhook: HTTP {response.status_code}")


class FanOutChannel:
    """Sends through every channel; the first failure is raised after all have been tried."""

    def __init__(self, channels: Sequence[Channel], public_url: str) -> None:
        self.channels, self.public_url = list(channels), public_url

    def send(self, message: Message) -> None:
        failures = []
        for channel in self.channels:
            try:
                channel.send(message)
            except ChannelError as error:
                failures.append(str(error))
        if failures:
            raise ChannelError("; ".join(failures))
