"""the outbox's index for the relay: the rows still to relay, in id order (partial), instead of all by relayed_at

PostgreSQL answered the relay's read (``relayed_at IS NULL ORDER BY id LIMIT n``) by walking the primary key and
skipping every row already relayed, so a pass cost more the longer the outbox's history; the partial index holds
only the waiting rows, in the order the relay takes them. Nothing else reads by relayed_at.

On PostgreSQL the index is built with a plain CREATE INDEX, which holds off writes to the outbox (so all event
processing) while it reads the outbox's whole history. Migrations run when a process starts
(``pipeline/bootstrap.py``): on a large deployment, start one process of the new version alone, with the other
workers stopped, and the rest once it is up.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

_WAITING = "relayed_at IS NULL"


def upgrade() -> None:
    op.create_index("ix_outbox_waiting", "outbox", ["id"], unique=False, sqlite_where=sa.text(_WAITING),
                    postgresql_where=sa.text(_WAITING))
    op.drop_index("ix_outbox_relayed_at", table_name="outbox")


def downgrade() -> None:
    op.create_index("ix_outbox_relayed_at", "outbox", ["relayed_at"], unique=False)
    op.drop_index("ix_outbox_waiting", table_name="outbox", sqlite_where=sa.text(_WAITING),
                  postgresql_where=sa.text(_WAITING))
