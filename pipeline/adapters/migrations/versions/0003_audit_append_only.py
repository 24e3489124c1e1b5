"""the audit table refuses UPDATE and DELETE; an episode keeps when it was first graded high and first flagged

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

The audit is append-only in the database itself: triggers on SQLite and PostgreSQL refuse every UPDATE and
DELETE of an ``auditentry`` row (and on PostgreSQL a TRUNCATE), whoever connects. A later migration that
rebuilds ``auditentry`` on SQLite (``batch_alter_table`` with a copy) must create these triggers again.

``missingepisode.graded_high_at`` and ``flagged_at`` let the rules treat an episode as high-risk or flagged
whatever order its events arrive in; existing rows are filled from what they already hold.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import pipeline.adapters.tables

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

REFUSED = "auditentry is append-only: {} refused"


def upgrade() -> None:
    with op.batch_alter_table('missingepisode', schema=None) as batch_op:
        batch_op.add_column(sa.Column('graded_high_at', pipeline.adapters.tables.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('flagged_at', pipeline.adapters.tables.UTCDateTime(), nullable=True))
    op.execute("UPDATE missingepisode SET graded_high_at = risk_graded_at WHERE risk_grade = 'HIGH'")
    op.execute("UPDATE missingepisode SET flagged_at = COALESCE(reported_at, updated_at) "
               "WHERE exploitation_flags <> '[]'")
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("""
            CREATE FUNCTION auditentry_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'auditentry is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
            END $$""")
        op.execute("CREATE TRIGGER auditentry_no_update_or_delete BEFORE UPDATE OR DELETE ON auditentry "
                   "FOR EACH ROW EXECUTE FUNCTION auditentry_append_only()")
        op.execute("CREATE TRIGGER auditentry_no_truncate BEFORE TRUNCATE ON auditentry "
                   "FOR EACH STATEMENT EXECUTE FUNCTION auditentry_append_only()")
    else:
        for operation in ('UPDATE', 'DELETE'):
            op.execute(f"CREATE TRIGGER auditentry_no_{operation.lower()} BEFORE {operation} ON auditentry "
                       f"BEGIN SELECT RAISE(ABORT, '{REFUSED.format(operation)}'); END")


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("DROP TRIGGER IF EXISTS auditentry_no_truncate ON auditentry")
        op.execute("DROP TRIGGER IF EXISTS auditentry_no_update_or_delete ON auditentry")
        op.execute("DROP FUNCTION IF EXISTS auditentry_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS auditentry_no_update")
        op.execute("DROP TRIGGER IF EXISTS auditentry_no_delete")
    with op.batch_alter_table('missingepisode', schema=None) as batch_op:
        batch_op.drop_column('flagged_at')
        batch_op.drop_column('graded_high_at')
