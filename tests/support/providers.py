"""Local stand-ins for the delivery providers, on loopback, for tests and the delivery benchmark.

- ``FakeProviders``: one HTTP server playing the Twilio REST API (``/2010-04-01/Accounts/{sid}/Messages.json``,
  checks HTTP basic auth), the GOV.UK Notify API (``/v2/notifications/sms|email``, checks the JWT the real
  client signs: HS256 with the key's secret, ``iss`` the service id, ``iat`` within 30 s) and a school's webhook
  receiver (``/hook/{urn}``, checks the HMAC signature). Each records what it accepted.
- ``FakeSmtp``: a real SMTP server (aiosmtpd) that records each mail.

Both can be told to fail: ``outage(seconds)`` answers 500 (SMTP 451) until then; ``script`` lists the
answers to the next requests: an HTTP status, or ``"timeout"`` (accept and record, then answer too late: the
ambiguous case).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import email
import email.policy
import json
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from aiosmtpd.controller import Controller

from bench.processes import free_port
from pipeline.adapters.channels import verify_webhook

TWILIO_SID = "AC" + "0" * 32
TWILIO_TOKEN = "test-auth-token"
NOTIFY_SERVICE = "26785a09-ab16-4eb0-8407-a37497a57506"
NOTIFY_SECRET = "3d844edf-8d35-48ac-975b-e847b4f122b0"
NOTIFY_KEY = f"test_key-{NOTIFY_SERVICE}-{NOTIFY_SECRET}"
WEBHOOK_SECRET = "webhook-test-secret"


@dataclass
class Received:
    provider: str  # twilio | notify-sms | notify-email | webhook | smtp
    to: str
    text: str  # what the recipient sees (SMS or email body, Notify personalisation, webhook body)
    reference: str  # the delivery id we sent along (Notify reference, webhook delivery_id, SMTP header)
    at: float = field(default_factory=time.monotonic)
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass
class Faults:
    outage_until: float = 0.0
    script: list[int | str] = field(default_factory=list)
    timeout_seconds: float = 2.0
    delay_seconds: float = 0.0  # how long each accepted request takes to answer (a slow provider)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def outage(self, seconds: float) -> None:
        self.outage_until = time.monotonic() + seconds

    def next(self) -> int | str | None:
        with self.lock:
            if self.script:
                return self.script.pop(0)
        return 500 if time.monotonic() < self.outage_until else None


class FakeProviders:
    """Twilio, Notify and webhook receivers on one loopback HTTP server."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.refused_auth = 0
        self.faults: dict[str, Faults] = {"twilio": Faults(), "notify": Faults(), "webhook": Faults()}
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms delayed-ACK stall

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                owner._handle(self, body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FakeProviders:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def of(self, provider: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.provider == provider]

    def _reply(self, handler: BaseHTTPRequestHandler, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _handle(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        path = handler.path
        if path.startswith("/control/outage/"):  # /control/outage/{kind}/{seconds}: for a separate process
            _, _, _, kind, seconds = path.split("/")
            self.faults[kind].outage(float(seconds))
            self._reply(handler, 200, {"outage": kind})
            return
        if path.startswith("/2010-04-01/Accounts/"):
            kind = "twilio"
        elif path.startswith("/v2/notifications/"):
            kind = "notify"
        elif path.startswith("/hook/"):
            kind = "webhook"
        else:
            self._reply(handler, 404, {"message": "not found"})
            return
        if not self._authorised(kind, handler, body):
            with self._lock:
                self.refused_auth += 1
            self._reply(handler, 401 if kind != "webhook" else 403, {"message": "unauthorised"})
            return
        fault = self.faults[kind].next()
        if isinstance(fault, int):
            self._reply(handler, fault, {"message": "scripted failure", "status": fault})
            return
        received, answer = self._accept(kind, path, body)
        with self._lock:
            self.received.append(received)
        if fault == "timeout":
            time.sleep(self.faults[kind].timeout_seconds)
        elif self.faults[kind].delay_seconds:
            time.sleep(self.faults[kind].delay_seconds)
        with contextlib.suppress(OSError):  # the client gave up waiting: that is the point
            self._reply(handler, 201 if kind != "webhook" else 200, answer)

    def _authorised(self, kind: str, handler: BaseHTTPRequestHandler, body: bytes) -> bool:
        if kind == "twilio":
            expected = base64.b64encode(f"{TWILIO_SID}:{TWILIO_TOKEN}".encode()).decode()
            return handler.headers.get("Authorization", "") == f"Basic {expected}"
        if kind == "notify":
            token = handler.headers.get("Authorization", "").removeprefix("Bearer ")
            try:
                claims = jwt.decode(token, NOTIFY_SECRET, algorithms=["HS256"], options={"require": ["iss", "iat"]})
            except jwt.PyJWTError:
                return False
            return claims["iss"] == NOTIFY_SERVICE and abs(time.time() - claims["iat"]) <= 30
        return verify_webhook(WEBHOOK_SECRET, handler.headers.get("X-Safeguard-Timestamp", ""), body,
                              handler.headers.get("X-Safeguard-Signature", ""))

    def _accept(self, kind: str, path: str, body: bytes) -> tuple[Received, dict[str, Any]]:
        if kind == "twilio":
            form = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode()).items()}
            sid = "SM" + uuid.uuid4().hex
            return (Received("twilio", form.get("To", ""), form.get("Body", ""), sid, raw=form),
                    {"sid": sid, "status": "queued", "to": form.get("To"), "from": form.get("From"),
                     "account_sid": TWILIO_SID, "body": form.get("Body")})
        if kind == "notify":
            data = json.loads(body)
            channel = path.rsplit("/", 1)[-1]
            to = data.get("phone_number") or data.get("email_address") or ""
            notify_id = str(uuid.uuid4())
            return (Received(f"notify-{channel}", to, json.dumps(data.get("personalisation") or {}),
                             data.get("reference") or "", raw={**data, "id": notify_id}),
                    {"id": notify_id, "reference": data.get("reference"), "content": {},
                     "template": {"id": data.get("template_id"), "version": 1, "uri": ""}, "uri": ""})
        data = json.loads(body)
        return Received("webhook", path, body.decode(), data.get("delivery_id", ""), raw=data), {"ok": True}


def serve_forever() -> None:
    """``python -m tests.support.providers``: the HTTP fakes in a process of their own; prints the URL."""
    fake = FakeProviders().start()
    print(fake.url, flush=True)
    try:
        fake.thread.join()
    except KeyboardInterrupt:
        fake.stop()


class FakeSmtp:
    """A real SMTP server on loopback (aiosmtpd) that records each mail; ``faults`` as for the HTTP fakes
    (an HTTP-like status 4xx/5xx becomes SMTP 451/550)."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.faults = Faults()
        owner = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
                fault = owner.faults.next()
                if isinstance(fault, int):
                    return "451 4.3.0 try again later" if fault >= 500 or fault == 429 else "550 5.1.1 no such user"
                parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
                body = parsed.get_body()
                assert isinstance(body, EmailMessage)
                owner.received.append(Received("smtp", ",".join(envelope.rcpt_tos),
                                               f"{parsed['Subject']}\n{body.get_content()}",
                                               str(parsed["X-Safeguard-Delivery"] or "")))
                if fault == "timeout":
                    await asyncio.sleep(owner.faults.timeout_seconds)
                elif owner.faults.delay_seconds:
                    await asyncio.sleep(owner.faults.delay_seconds)
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def start(self) -> FakeSmtp:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()


if __name__ == "__main__":
    serve_forever()
