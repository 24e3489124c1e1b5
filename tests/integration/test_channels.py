"""One contract for every delivery channel, run against the file channel and real local servers:
an SMTP server (aiosmtpd), a fake Twilio API and a webhook receiver, all on loopback."""

from __future__ import annotations

import contextlib
import email
import email.policy
import json
import socket
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from pipeline.adapters.channels import (
    Channel,
    ChannelError,
    Message,
    OutboxFileChannel,
    SmtpChannel,
    TwilioSmsChannel,
    WebhookChannel,
    message_for,
)

PUBLIC = "http://127.0.0.1:8000"
URGENT = message_for("n-1", "URGENT", "dsl@riverside.sch.example", "+447700900001", PUBLIC)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Recorder(BaseHTTPRequestHandler):
    received: list[tuple[str, bytes]]
    status = 200

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.received.append((self.path, body))
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        reply = json.dumps({"sid": "SM00000000000000000000000000000001", "status": "queued"}).encode()
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: Any) -> None:
        pass


@dataclass
class Harness:
    channel: Channel
    delivered: Callable[[], list[str]]  # the text of every message that arrived, as the recipient saw it
    break_it: Callable[[], None]  # make the next delivery fail


@pytest.fixture
def http_server() -> Iterator[tuple[ThreadingHTTPServer, list[tuple[str, bytes]]]]:
    received: list[tuple[str, bytes]] = []
    handler = type("Handler", (_Recorder,), {"received": received, "status": 200})
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, received
    server.shutdown()


def file_harness(tmp_path: Path, _: Any) -> Harness:
    channel = OutboxFileChannel(tmp_path / "outbox", PUBLIC)

    def delivered() -> list[str]:
        if not channel.path.exists():
            return []
        return [json.loads(line)["body"] for line in channel.path.read_text().splitlines()]

    def break_it() -> None:
        channel.directory = tmp_path / "not-a-dir.txt" / "x"
        (tmp_path / "not-a-dir.txt").write_text("a file where the directory should be")

    return Harness(channel, delivered, break_it)


def smtp_harness(tmp_path: Path, _: Any) -> Harness:
    mails: list[str] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
            parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
            body = parsed.get_body()
            assert isinstance(body, EmailMessage)
            mails.append(f"{parsed['Subject']}\n{body.get_content()}")
            return "250 OK"

    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    channel = SmtpChannel("127.0.0.1", port, "notify@council.example", PUBLIC, timeout=3)

    def break_it() -> None:
        controller.stop()

    harness = Harness(channel, lambda: mails, break_it)
    harness.stop = controller.stop  # type: ignore[attr-defined]
    return harness


def twilio_harness(tmp_path: Path, server: tuple[ThreadingHTTPServer, list[tuple[str, bytes]]]) -> Harness:
    http, received = server
    channel = TwilioSmsChannel("AC00000000000000000000000000000000", "test-token", "+447700900999", PUBLIC,
                               base_url=f"http://127.0.0.1:{http.server_address[1]}")

    def delivered() -> list[str]:
        return [urllib.parse.parse_qs(body.decode())["Body"][0] for path, body in received
                if path.endswith("/Messages.json")]

    def break_it() -> None:
        http.RequestHandlerClass.status = 500  # type: ignore[attr-defined]

    return Harness(channel, delivered, break_it)


def webhook_harness(tmp_path: Path, server: tuple[ThreadingHTTPServer, list[tuple[str, bytes]]]) -> Harness:
    http, received = server
    channel = WebhookChannel(f"http://127.0.0.1:{http.server_address[1]}/inbox", PUBLIC, timeout=3)

    def break_it() -> None:
        http.RequestHandlerClass.status = 503  # type: ignore[attr-defined]

    return Harness(channel, lambda: [json.loads(body)["text"] for _, body in received], break_it)


HARNESSES = {"file": file_harness, "smtp": smtp_harness, "twilio": twilio_harness, "webhook": webhook_harness}


@pytest.fixture(params=sorted(HARNESSES))
def harness(request: pytest.FixtureRequest, tmp_path: Path,
            http_server: tuple[ThreadingHTTPServer, list[tuple[str, bytes]]]) -> Iterator[Harness]:
    built = HARNESSES[request.param](tmp_path, http_server)
    yield built
    stop = getattr(built, "stop", None)
    if stop is not None:
        with contextlib.suppress(AssertionError, RuntimeError):  # already stopped by break_it
            stop()


def test_an_urgent_message_arrives_once_with_a_link_to_the_notification_and_no_personal_data(
        harness: Harness) -> None:
    harness.channel.send(URGENT)
    (text,) = harness.delivered()
    assert "URGENT" in text and f"{PUBLIC}/notifications/n-1" in text  # the page asks the reader to sign in
    for personal in ("Amelia", "Hartley", "2013-05-14", "self-harm", "NS1"):
        assert personal not in text


def test_a_failed_delivery_raises_channel_error(harness: Harness) -> None:
    harness.break_it()
    with pytest.raises((ChannelError, OSError)):
        harness.channel.send(URGENT)


def test_sms_only_goes_for_urgent_notifications(http_server: tuple[ThreadingHTTPServer, Any], tmp_path: Path) -> None:
    twilio = twilio_harness(tmp_path, http_server)
    twilio.channel.send(Message("n-2", None, "+447700900001", "ROUTINE", "routine"))
    assert twilio.delivered() == []
