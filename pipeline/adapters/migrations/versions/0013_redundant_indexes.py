"""drop five indexes every insert kept up for no read: four the leading columns of another serve, one no query uses

Every event's processing inserts about 20 rows (notifications, their deliveries and outbox records, audit entries,
deadlines), and each row is one insert into its table and one more into each of its indexes; on a large database
the indexes' pages are the costliest part of that work. These served no read another index does not serve as well:

- ``ix_auditentry_subject_id`` (subject_id): ``ix_auditentry_subject_action_at`` begins with it;
- ``ix_delivery_notification_id`` (notification_id): ``uq_delivery_notification_channel`` begins with it;
- ``ix_missingepisode_child_id`` (child_id): ``ix_missingepisode_child_reported`` begins with it;
- ``ix_notification_status`` (status): a handful of values, so no read is better served by it than by the
  recipient's index, and SQLite without statistics could take it for a selective one;
- ``ix_event_event_type`` (event_type): no query looks events up by their type alone.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

_DROPPED = (("ix_auditentry_subject_id", "auditentry", "subject_id"),
            ("ix_delivery_notification_id", "delivery", "notification_id"),
            ("ix_missingepisode_child_id", "missingepisode", "child_id"),
            ("ix_notification_status", "notification", "status"),
            ("ix_event_event_type", "event", "event_type"))


def upgrade() -> None:
    for name, table, _column in _DROPPED:
        op.drop_index(name, table_name=table)


def downgrade() -> None:
    for name, table, column in _DROPPED:
        op.create_index(name, table, [column])
