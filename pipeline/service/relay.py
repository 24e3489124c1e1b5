"""The outbox relay: hands committed outbox rows to their channel or topic, then marks them relayed.

Rows are written in the same transaction as the effects that caused them, so nothing is sent for work
that rolled back, and nothing committed is lost: a crash between send and mark re-sends (at least once;
a channel message is harmless twice, and topic consumers dedupe on ids).
"""

from __future__ import annotations

import json
import logging
from datetime import datetime

from sqlmodel import col, select

from pipeline.adapters import tables as t
from pipeline.adapters.channels import Channel, message_for
from pipeline.adapters.metrics import NOTIFICATIONS_SENT
from pipeline.adapters.publisher import Publisher
from pipeline.adapters.repository import SYSTEM, Repository
from pipeline.adapters.store import Store
from pipeline.domain.model import NotificationStatus
from pipeline.service.handlers import DELIVERIES

log = logging.getLogger(__name__)


def relay(store: Store, channel: Channel, publisher: Publisher, now: datetime, batch: int = 32) -> int:
    """Relay up to ``batch`` rows; returns how many were relayed."""
    with store.transaction() as session:
        query = (select(t.Outbox).where(col(t.Outbox.relayed_at).is_(None))
                 .order_by(col(t.Outbox.id)).limit(batch))
        if store.is_postgres:
            query = query.with_for_update(skip_locked=True)
        rows = list(session.exec(query).all())
        repo = Repository(session, postgres=store.is_postgres)
        for row in rows:
            if row.topic == DELIVERIES:
                _deliver(repo, channel, row, now)
            else:
                publisher.publish(row.topic, row.key, json.loads(row.body_json))
            row.relayed_at = now
            session.add(row)
    return len(rows)


def _deliver(repo: Repository, channel: Channel, row: t.Outbox, now: datetime) -> None:
    notification = repo.session.get(t.Notification, row.notification_id)
    if notification is None:
        return
    try:
        channel.send(message_for(notification.id, notification.urgency, notification.contact_email,
                                 notification.contact_phone, channel.public_url))
    except Exception as error:  # noqa: BLE001 - a channel failure is recorded, never fatal
        log.warning("delivery of notification %s failed: %s", notification.id, type(error).__name__)
        notification.status = NotificationStatus.FAILED
        repo.session.add(notification)
        return
    if notification.status == NotificationStatus.PENDING:
        notification.status = NotificationStatus.DELIVERED
    notification.delivered_at = now
    NOTIFICATIONS_SENT.inc()
    repo.session.add(notification)
    repo.audit(now, SYSTEM, "delivered", notification.id, f"sent by {type(channel).__name__}")
