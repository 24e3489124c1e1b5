"""reference change log for the match index, and stored matcher parameters

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

from pipeline.adapters.tables import UTCDateTime

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'referencechange',
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('row_key', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('at', UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('seq'),
    )
    op.create_table(
        'matchmodel',
        sa.Column('version', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('parameters_json', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('version'),
    )
    op.create_index(op.f('ix_matchmodel_created_at'), 'matchmodel', ['created_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_matchmodel_created_at'), table_name='matchmodel')
    op.drop_table('matchmodel')
    op.drop_table('referencechange')
