"""The one place where adapters are chosen: settings in, a wired ``Services`` out.

SQLite or PostgreSQL comes from ``SAFEGUARD_DATABASE_URL``; the delivery channels (SMTP or GOV.UK Notify for
email, Twilio or Notify for SMS, signed webhooks) and the publisher for output topics are picked here, and
nowhere else.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

from pipeline import private_logs
from pipeline.adapters.channels import (
    Channel,
    NotifyChannel,
    OutboxFileChannel,
    SignedWebhookChannel,
    SmtpEmailChannel,
    TwilioSmsChannel,
)
from pipeline.adapters.publisher import FilePublisher, Publisher
from pipeline.adapters.store import Store
from pipeline.service.handlers import Context
from pipeline.service.intake import Intake
from pipeline.service.relay import DeliveryService
from pipeline.service.sessions import SessionPolicy
from pipeline.service.users import use_password_hashing
from pipeline.settings import PROJECT_ROOT, ConfigurationError, Settings


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass
class Services:
    settings: Settings
    store: Store
    ctx: Context
    intake: Intake
    channel: OutboxFileChannel  # the always-on console file (var/outbox/messages.jsonl); never a delivery
    publisher: Publisher
    delivery: DeliveryService
    session_policy: SessionPolicy  # the web sessions' lengths and sign-in throttle (web.*)
    clock: Callable[[], datetime] = system_clock
    ready: threading.Event = field(default_factory=threading.Event)
    on_accepted: Callable[[], None] = lambda: None
    event_sender: Any = None  # on Kafka: sends validated events to their topics (pipeline.adapters.kafka)


def configure_logging(settings: Settings) -> None:
    private_logs.install()
    logging.basicConfig(level=settings.log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # twilio logs each request's parameters (the phone number and text) at INFO: never shown.
    for noisy in ("apscheduler", "alembic", "twilio", "notifications_python_client"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def var_dir(settings: Settings) -> Path:
    if settings.var_dir is not None:
        return settings.var_dir
    if settings.is_sqlite:
        path = settings.database_url.split("///", 1)[-1]
        if path and path != ":memory:":
            return Path(path).resolve().parent
    return PROJECT_ROOT / "var"


def callback_url(settings: Settings, provider: str) -> str:
    """The URL a provider calls back on (pipeline/entrypoints/callbacks.py); Twilio signs exactly this."""
    return f"{(settings.callback_url or settings.public_url).rstrip('/')}/api/callbacks/{provider}"


def build_channels(settings: Settings) -> dict[str, Channel]:
    """The real channels the settings configure, by kind (email, sms, webhook); each is off until configured."""
    delivery = settings.rules.get("delivery") or {}
    notify = delivery.get("notify") or {}
    timeout = float(delivery.get("timeout_seconds", 10))
    channels: dict[str, Channel] = {}
    for kind in ("email", "sms"):
        provider = delivery.get(kind, "smtp" if kind == "email" else "twilio")
        if provider == "notify":
            if settings.notify_api_key:
                template = str(notify.get(f"{kind}_template_id") or "")
                if not template:
                    raise ValueError(f"delivery.notify.{kind}_template_id is needed to send {kind} through Notify")
                channels[kind] = NotifyChannel(kind, settings.notify_api_key, template,
                                               base_url=settings.notify_base_url, timeout=timeout)
        elif kind == "email" and provider == "smtp":
            if settings.smtp_host:
                channels[kind] = SmtpEmailChannel(settings.smtp_host, settings.smtp_port, settings.smtp_from, timeout)
        elif kind == "sms" and provider == "twilio":
            if settings.twilio_account_sid and settings.twilio_auth_token and settings.twilio_from:
                channels[kind] = TwilioSmsChannel(
                    settings.twilio_account_sid, settings.twilio_auth_token, settings.twilio_from,
                    base_url=settings.twilio_base_url, status_callback=callback_url(settings, "twilio"),
                    timeout=timeout)
        else:
            raise ValueError(f"delivery.{kind}: unknown provider (smtp or notify for email, twilio or notify for sms)")
    webhooks = {str(urn): str(url) for urn, url in (delivery.get("webhooks") or {}).items()}
    if settings.webhook_url or webhooks:
        if not settings.webhook_secret:
            raise ValueError("webhooks are signed: set SAFEGUARD_WEBHOOK_SECRET as well")
        channels["webhook"] = SignedWebhookChannel(webhooks, settings.webhook_secret,
                                                   default_url=settings.webhook_url, timeout=timeout)
    return channels


def build_delivery(settings: Settings, channels: dict[str, Channel] | None = None) -> DeliveryService:
    console = OutboxFileChannel(var_dir(settings) / "outbox", settings.public_url)
    chosen = build_channels(settings) if channels is None else channels
    return DeliveryService.from_rules(settings.rules, chosen, settings.public_url, console)


def say_how_notifications_go(services: Services) -> None:
    """At a delivering process's start (``safeguard run``, a worker; not every command): where notifications go."""
    log = logging.getLogger(__name__)
    settings = services.settings
    log.info("database %s; topic and outbox files under %s", shown_url(settings.database_url), var_dir(settings))
    if not services.delivery.channels:
        log.warning("no delivery channel is configured: notifications wait in the web inbox only")
    else:
        log.info("delivering by %s", ", ".join(sorted(services.delivery.channels)))


def shown_url(url: str) -> str:
    """The database URL as logs and errors show it: driver, host, port and database, never a user's password (in
    the URL's credentials or its query string, as libpq allows)."""
    parsed = make_url(url)
    host = (parsed.host or "").rsplit("@", 1)[-1] or None  # an unescaped "@" in a password
    return URL.create(parsed.drivername, host=host, port=parsed.port, database=parsed.database).render_as_string()


def open_store(url: str, *, migrate: bool) -> Store:
    """The store at ``url``, migrated; a URL that is not one, a driver not installed or a database not reached is
    refused in one line naming the setting (its password never shown). A migration's own failure is not one of
    those: it keeps its traceback."""
    try:
        store = Store(url)
        with store.engine.connect():
            pass
    except (ArgumentError, ValueError):
        raise ConfigurationError("SAFEGUARD_DATABASE_URL: not a database URL (for example sqlite:///var/safeguard.db "
                                 "or postgresql+psycopg://user@host:5432/safeguard)") from None
    except (NoSuchModuleError, ImportError):
        raise ConfigurationError(f"SAFEGUARD_DATABASE_URL: no driver here for {make_url(url).drivername} "
                                 "(SQLite and PostgreSQL through psycopg are installed)") from None
    except OSError as error:  # the SQLite file's folder cannot be made
        raise ConfigurationError(f"SAFEGUARD_DATABASE_URL: cannot create {error.filename or 'the database file'}: "
                                 f"{error.strerror or type(error).__name__}") from None
    except OperationalError as error:
        first = str(error.orig).strip().splitlines()[0] if str(error.orig).strip() else type(error.orig).__name__
        raise ConfigurationError(f"SAFEGUARD_DATABASE_URL: cannot open {shown_url(url)}: {first}") from None
    if migrate:
        store.migrate()
    return store


def build(settings: Settings, *, migrate: bool = True) -> Services:
    private_logs.install()  # before anything can fail: a database's error text may echo a child's values
    use_password_hashing(settings.argon2_time_cost, settings.argon2_memory_kib)
    try:  # the rules first: a configuration refused leaves the database as it was
        ctx = Context.build(settings.rules)
        session_policy = SessionPolicy.from_rules(settings.rules)  # a bad one refused now, not a 500 at sign-in
        delivery = build_delivery(settings)
    except ConfigurationError:
        raise
    except ValueError as error:  # the rules' own checks, each naming its setting
        raise ConfigurationError(f"configuration: {error}") from error
    store = open_store(settings.database_url, migrate=migrate)
    intake = Intake(store, max_body_bytes=int(settings.rules["runtime"].get("max_body_bytes", 65536)))
    assert isinstance(delivery.console, OutboxFileChannel)
    publisher: Publisher = FilePublisher(var_dir(settings) / "topics")
    if settings.kafka_bootstrap:
        from pipeline.adapters.kafka import KafkaPublisher

        publisher = KafkaPublisher(settings.kafka_bootstrap, settings.kafka_topic_prefix)
    services = Services(settings=settings, store=store, ctx=ctx, intake=intake, channel=delivery.console,
                        publisher=publisher, delivery=delivery, session_policy=session_policy)
    if settings.kafka_bootstrap:
        from pipeline.adapters.kafka import KafkaEventSender

        services.event_sender = KafkaEventSender(settings.kafka_bootstrap, settings.kafka_topic_prefix)
    return services
