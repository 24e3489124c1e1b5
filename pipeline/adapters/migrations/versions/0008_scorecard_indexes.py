"""indexes for the scorecard and the overdue board

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_deadline_scorecard", "deadline", ["kind", "due_at", "closed_at", "created_at", "child_id", "school_urn"]),
    ("ix_deadline_board", "deadline", ["state", "due_at", "id", "escalation_level", "kind"]),
    ("ix_auditentry_subject_action_at", "auditentry", ["subject_id", "action", "at"]),
    ("ix_missingepisode_child_reported", "missingepisode", ["child_id", "reported_at"]),
    ("ix_missingepisode_found_at", "missingepisode", ["found_at"]),
    ("ix_notification_undelivered", "notification", ["delivered_at", "created_at"]),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns, unique=False)


def downgrade() -> None:
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
