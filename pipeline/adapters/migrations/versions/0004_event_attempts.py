"""an accepted event whose handler fails is retried, then held: attempts, next attempt time, held since

Events that the old consumer dead-lettered after a handler failure were accepted: they become held
(still ``accepted``) so ``safeguard events retry`` can run them once the fault is fixed.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import pipeline.adapters.tables

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attempts', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('next_attempt_at', pipeline.adapters.tables.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('held_at', pipeline.adapters.tables.UTCDateTime(), nullable=True))
    op.execute("UPDATE event SET status = 'accepted', held_at = received_at, attempts = 1 "
               "WHERE status = 'dead_lettered' AND processed_at IS NULL")


def downgrade() -> None:
    op.execute("UPDATE event SET status = 'dead_lettered' WHERE held_at IS NOT NULL AND status = 'accepted'")
    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.drop_column('held_at')
        batch_op.drop_column('next_attempt_at')
        batch_op.drop_column('attempts')
