"""two more indexes every insert kept up for nothing: a delivery's provider reference, and a deadline's due instant

- ``ix_delivery_provider_ref``: a delivery has a provider's reference only once sent, and about seven delivery rows
  are inserted per event, each into this index under NULL. Now partial (``provider_ref IS NOT NULL``): a status
  callback's ``provider_ref = ?`` still reads it, on SQLite and PostgreSQL alike.
- ``ix_deadline_due_at``: every read by due instant gives the kind (``ix_deadline_scorecard``) or the state
  (``ix_deadline_board``) first.

On PostgreSQL the partial index is built with a plain CREATE INDEX, which holds off writes to the delivery table
while it reads it: as for migration 0012, start one process of the new version alone, with the other workers
stopped.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

_SENT = "provider_ref IS NOT NULL"


def upgrade() -> None:
    op.drop_index("ix_delivery_provider_ref", table_name="delivery")
    op.create_index("ix_delivery_provider_ref", "delivery", ["provider_ref"], sqlite_where=sa.text(_SENT),
                    postgresql_where=sa.text(_SENT))
    op.drop_index("ix_deadline_due_at", table_name="deadline")


def downgrade() -> None:
    op.create_index("ix_deadline_due_at", "deadline", ["due_at"])
    op.drop_index("ix_delivery_provider_ref", table_name="delivery")
    op.create_index("ix_delivery_provider_ref", "delivery", ["provider_ref"])
