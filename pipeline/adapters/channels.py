"""Delivery channels: how a recipient learns that a notification is waiting.

A message never carries names or health detail: only that a safeguarding notification is waiting, whether
it is routine or urgent, and a link to log in. ``OutboxFileChannel`` appends each message to a JSON-lines
file (the console channel of the embedded runtime); SMTP, webhook and Twilio channels implement the same
``Channel`` port.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

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
    kind = "An URGENT" if urgency == "URGENT" else "A routine"
    body = (f"{kind} safeguarding notification is waiting for you. "
            f"Log in to read it: {public_url.rstrip('/')}/login")
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
