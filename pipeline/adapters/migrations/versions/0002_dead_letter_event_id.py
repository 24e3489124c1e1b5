"""dead letters keep the rejected body's event_id

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('deadletter', schema=None) as batch_op:
        batch_op.add_column(sa.Column('event_id', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.create_index(batch_op.f('ix_deadletter_event_id'), ['event_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('deadletter', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_deadletter_event_id'))
        batch_op.drop_column('event_id')
