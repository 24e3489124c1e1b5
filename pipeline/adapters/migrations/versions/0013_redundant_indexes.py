"""drop four indexes every insert kept up for no read of their own, and give the notification status index an order

Every event's processing inserts about 20 rows (notifications, their deliveries and outbox records, audit entries,
deadlines), and each row is one insert into its table and one more into each of its indexes; on a large database
the indexes' pages are the costliest part of that work. These served no read another index does not serve as well:

- ``ix_auditentry_subject_id`` (subject_id): ``ix_auditentry_subject_action_at`` begins with it (a subject's audit
  trail, newest first, is then sorted: a subject has a handful of entries);
- ``ix_delivery_notification_id`` (notification_id): ``uq_delivery_notification_channel`` begins with it;
- ``ix_missingepisode_child_id`` (child_id): ``ix_missingepisode_child_reported`` begins with it;
- ``ix_event_event_type`` (event_type): the one read by type (``match_index.recent_event_children``) reads newest
  first by the primary key and stops at its limit.

``ix_notification_status`` (status) becomes (status, created_at, id): a manager's page of notifications of one
status, newest first (failed ones, say, a handful among hundreds of thousands), reads them in order from it; with
(status) alone it was read whole and sorted, and without it every notification was walked.

On PostgreSQL the new index is built with a plain CREATE INDEX, which holds off writes to the table while it reads
it: as for migration 0012, start one process of the new version alone, with the other workers stopped.

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
            ("ix_event_event_type", "event", "event_type"))


def upgrade() -> None:
    for name, table, _column in _DROPPED:
        op.drop_index(name, table_name=table)
    op.drop_index("ix_notification_status", table_name="notification")
    op.create_index("ix_notification_status", "notification", ["status", "created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_notification_status", table_name="notification")
    op.create_index("ix_notification_status", "notification", ["status"])
    for name, table, column in _DROPPED:
        op.create_index(name, table, [column])
