"""The one place where adapters are chosen: settings in, a wired ``Services`` out.

SQLite or PostgreSQL comes from ``SAFEGUARD_DATABASE_URL``; the delivery channel and the publisher for
output topics are picked here, and nowhere else.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.adapters.channels import (
    Channel,
    FanOutChannel,
    OutboxFileChannel,
    SmtpChannel,
    TwilioSmsChannel,
    WebhookChannel,
)
from pipeline.adapters.publisher import FilePublisher, Publisher
from pipeline.adapters.store import Store
from pipeline.service.handlers import Context
from pipeline.service.intake import Intake
from pipeline.settings import PROJECT_ROOT, Settings


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass
class Services:
    settings: Settings
    store: Store
    ctx: Context
    intake: Intake
    channel: Channel
    publisher: Publisher
    clock: Callable[[], datetime] = system_clock
    ready: threading.Event = field(default_factory=threading.Event)
    on_accepted: Callable[[], None] = lambda: None
    event_sender: Any = None  # on Kafka: sends validated events to their topics (pipeline.adapters.kafka)


def configure_logging(settings: Settings) -> None:
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("apscheduler", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def var_dir(settings: Settings) -> Path:
    if settings.var_dir is not None:
        return settings.var_dir
    if settings.is_sqlite:
        path = settings.database_url.split("///", 1)[-1]
        if path and path != ":memory:":
            return Path(path).resolve().parent
    return PROJECT_ROOT / "var"


def build_channel(settings: Settings) -> Channel:
    """The outbox file always; email, SMS and webhook where settings configure them."""
    channels: list[Channel] = [OutboxFileChannel(var_dir(settings) / "outbox", settings.public_url)]
    if settings.smtp_host:
        channels.append(SmtpChannel(settings.smtp_host, settings.smtp_port, settings.smtp_from, settings.public_url))
    if settings.twilio_account_sid and settings.twilio_auth_token and settings.twilio_from:
        channels.append(TwilioSmsChannel(settings.twilio_account_sid, settings.twilio_auth_token,
                                         settings.twilio_from, settings.public_url, settings.twilio_base_url))
    if settings.webhook_url:
        channels.append(WebhookChannel(settings.webhook_url, settings.public_url))
    return channels[0] if len(channels) == 1 else FanOutChannel(channels, settings.public_url)


def build(settings: Settings, *, migrate: bool = True) -> Services:
    store = Store(settings.database_url)
    if migrate:
        store.migrate()
    ctx = Context.build(settings.rules)
    runtime = settings.rules.get("runtime", {})
    intake = Intake(store, max_body_bytes=int(runtime.get("max_body_bytes", 65536)))
    channel = build_channel(settings)
    publisher: Publisher = FilePublisher(var_dir(settings) / "topics")
    if settings.kafka_bootstrap:
        from pipeline.adapters.kafka import KafkaPublisher

        publisher = KafkaPublisher(settings.kafka_bootstrap, settings.kafka_topic_prefix)
    services = Services(settings=settings, store=store, ctx=ctx, intake=intake, channel=channel, publisher=publisher)
    if settings.kafka_bootstrap:
        from pipeline.adapters.kafka import KafkaEventSender

        services.event_sender = KafkaEventSender(settings.kafka_bootstrap, settings.kafka_topic_prefix)
    return services
