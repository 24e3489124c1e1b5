"""an index for the scorecard's open escalations: deadlines still open at an instant, by closing time

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_deadline_open_at", "deadline", ["closed_at", "escalation_level", "created_at", "kind"],
                    unique=False)


def downgrade() -> None:
    op.drop_index("ix_deadline_open_at", table_name="deadline")
