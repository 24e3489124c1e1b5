"""indexes for the reads whose cost grew with every notification and deadline ever stored

On a history of 145,000 notifications and 47,000 deadlines (45 days of a busy area, simulated), SQLite read:

- the reminders and escalations fired on deadlines (the inbox, the overdue board, a case page) by walking every
  notification: nothing indexed ``deadline_id`` (70 to 90 ms a page): ``ix_notification_deadline``, partial, as most
  notifications watch no deadline;
- a DSL's or team's page of notifications (``/api/notifications``) by reading every one of theirs ever sent, then
  sorting (55 to 200 ms): ``ix_notification_scope`` and ``ix_notification_school_urn`` now end with the page's
  order (created_at, id), at no more indexes to keep up on each insert (a worker's scope spans three roles, so their
  page still sorts their own notifications);
- ``/api/deadlines?state=open|closed`` by every deadline in that state, then sorting (110 ms):
  ``ix_deadline_state_created``.

On PostgreSQL the indexes are built with a plain CREATE INDEX, which holds off writes to the table while it reads
it. Migrations run when a process starts (``pipeline/bootstrap.py``): on a large deployment, start one process of
the new version alone, with the other workers stopped, and the rest once it is up.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

_HAS_DEADLINE = "deadline_id IS NOT NULL"


def upgrade() -> None:
    op.drop_index("ix_notification_scope", table_name="notification")
    op.create_index("ix_notification_scope", "notification", ["recipient_role", "recipient_ref", "created_at", "id"])
    op.drop_index("ix_notification_school_urn", table_name="notification")
    op.create_index("ix_notification_school_urn", "notification", ["school_urn", "created_at", "id"])
    op.create_index("ix_notification_deadline", "notification", ["deadline_id"], sqlite_where=sa.text(_HAS_DEADLINE),
                    postgresql_where=sa.text(_HAS_DEADLINE))
    op.create_index("ix_deadline_state_created", "deadline", ["state", "created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_deadline_state_created", table_name="deadline")
    op.drop_index("ix_notification_deadline", table_name="notification")
    op.drop_index("ix_notification_school_urn", table_name="notification")
    op.create_index("ix_notification_school_urn", "notification", ["school_urn"])
    op.drop_index("ix_notification_scope", table_name="notification")
    op.create_index("ix_notification_scope", "notification", ["recipient_role", "recipient_ref"])
