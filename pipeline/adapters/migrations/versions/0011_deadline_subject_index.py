"""the deadlines of a subject by an index of their own: the read of an episode's deadlines scanned the whole table

The missing pathway reads the deadlines of an episode (and of the trigger meeting raised on it) on every event
about an episode already stored: ``WHERE subject_id IN (...)``. The only index holding ``subject_id`` was the
unique constraint on (kind, subject_id), whose first column the read does not give, so both backends read every
deadline ever stored: a cost that grew with the deployment's history, on every found report and risk regrade.

On PostgreSQL the index is built with a plain CREATE INDEX, which holds off writes to the deadline table (so all
event processing) while it reads the whole table. Migrations run when a process starts (``pipeline/bootstrap.py``):
on a large deployment, start one process of the new version alone, with the other workers stopped, and the rest
once it is up.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_deadline_subject", "deadline", ["subject_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_deadline_subject", table_name="deadline")
