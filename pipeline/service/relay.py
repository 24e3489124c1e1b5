"""The outbox relay: hands committed outbox rows to their channel or topic, then marks them relayed.

Rows are written in the same transaction as the effects that caused them, so nothing is sent for work
that rolled back, and nothing committed is lost: a crash between send and mark re-sends (at least once;
a channel message is harmless twice, and topic consumers dedupe on ids).
"""

from __future__ import annotations

import json
import logging
from datetime import datetime

from sqlalchemy import update
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


def relay(store: Store, channel: Channel, publisher: Publisher, now: datetime, batch: int = 100) -> int:
    """Relay up to ``batch`` rows; returns how many were relayed.

    One transaction per batch: the batch's notifications are read in one query and its outbox rows marked
    relayed in one statement.
    """
    with store.transaction() as session:
        query = (select(t.Outbox).where(col(t.Outbox.relayed_at).is_(None))
                 .order_by(col(t.Outbox.id)).limit(batch))
        if store.is_postgres:
            query = query.with_for_update(skip_locked=True)
        rows = list(session.exec(query).all())
        if not rows:
            return 0
        repo = Repository(session, postgres=store.is_postgres)
        wanted = {row.notification_id for row in rows if row.topic == DELIVERIES and row.notification_id}
        notifications = {n.id: n for n in session.exec(
            select(t.Notification).where(col(t.Notification.id).in_(wanted))).all()} if wanted else {}
        # Topic records first, and every one acknowledged, before any message goes to a person: if the broker
        # refuses one, the batch rolls back before anyone has been sent anything twice.
        for row in rows:
            if row.topic != DELIVERIES:
                publisher.publish(row.topic, row.key, json.loads(row.body_json))
        publisher.flush()
        for row in rows:
            if row.topic == DELIVERIES:
                notification = notifications.get(row.notification_id or "")
                if notification is not None:
                    _deliver(repo, channel, notification, now)
        session.execute(update(t.Outbox).where(col(t.Outbox.id).in_([row.id for row in rows]))
                        .values(relayed_at=now).execution_options(synchronize_session=False))
    return len(rows)


def _deliver(repo: Repository, channel: Channel, notification: t.Notification, now: datetime) -> None:
    try:
        channel.send(message_for(notification.id, notification.urgency, notification.contact_email,
                                 notification.contact_phone, channel.public_url))
    except Exception as error:  # noqa: BLE001 - a channel failure is recorded, never fatal
        log.warning("delivery of notification %s failed: %s", notification.id, type(error).__name__)
        notification.status = NotificationStatus.FAILED
        repo.session.add(notification)
        repo.audit(now, SYSTEM, "failed", notification.id, f"delivery failed: {type(error).__name__}")
        return
    if notification.status == NotificationStatus.PENDING:
        notification.status = NotificationStatus.DELIVERED
    notification.delivered_at = now
    NOTIFICATIONS_SENT.inc()
    repo.session.add(notification)
    repo.audit(now, SYSTEM, "delivered", notification.id, f"sent by {type(channel).__name__}")
