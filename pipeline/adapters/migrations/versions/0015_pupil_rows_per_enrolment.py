"""a pupil's rows keyed by enrolment, not by UPN: a child on two schools' rolls, or who moved school, loads

The pupils file is a school roll export: a child dual-registered (a pupil referral unit and a mainstream school)
has a row at each school, and a child who moved school has the old school's row (with ``on_roll_to``) beside the
new one's. Keyed by UPN, the second row of a UPN made the whole file refuse to load, so the roll went stale and
the second school's DSL was never told. Each row is now keyed by ``row_key``, the UPN, the school's URN and the
date the pupil joined its roll (``upn|school_urn|on_roll_from``, empty when the file gives no date); the UPN keeps
an index of its own, by which a child's rows are read.

The table is rebuilt (new table, rows copied with their keys made in SQL, old table dropped, new one renamed): on
PostgreSQL this holds off writes to the pupil table for the copy, as a pupils load does. Keys in the reference
change log written before this migration are UPNs; processes started after it build their match index anew.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import pipeline.adapters.tables

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

_COLUMNS = ("upn", "nhs_number", "given_name", "family_name", "family_key", "date_of_birth", "sex", "postcode",
            "school_urn", "on_roll_from", "on_roll_to", "ended_at")
_INDEXED = ("date_of_birth", "family_key", "nhs_number", "school_urn")


def _create(name: str, keyed_by_row: bool) -> None:
    text, day = sqlmodel.sql.sqltypes.AutoString, sa.Date
    op.create_table(
        name,
        *([sa.Column("row_key", text(), nullable=False)] if keyed_by_row else []),
        sa.Column("upn", text(), nullable=False),
        sa.Column("nhs_number", text(), nullable=True),
        sa.Column("given_name", text(), nullable=False),
        sa.Column("family_name", text(), nullable=False),
        sa.Column("family_key", text(), nullable=False),
        sa.Column("date_of_birth", day(), nullable=False),
        sa.Column("sex", text(), nullable=True),
        sa.Column("postcode", text(), nullable=True),
        sa.Column("school_urn", text(), nullable=False),
        sa.Column("on_roll_from", day(), nullable=True),
        sa.Column("on_roll_to", day(), nullable=True),
        sa.Column("ended_at", pipeline.adapters.tables.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("row_key" if keyed_by_row else "upn"),
    )


def _renamed(name: str, keyed_by_row: bool) -> None:
    """The new table takes the pupil table's name, its primary key's (PostgreSQL names it after the table it was
    made in) and its indexes."""
    op.rename_table(name, "pupil")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE pupil RENAME CONSTRAINT {name}_pkey TO pupil_pkey")
    for column in (*_INDEXED, *(("upn",) if keyed_by_row else ())):
        op.create_index(f"ix_pupil_{column}", "pupil", [column], unique=False)


def upgrade() -> None:
    joined = "coalesce(to_char(on_roll_from, 'YYYY-MM-DD'), '')" \
        if op.get_bind().dialect.name == "postgresql" else "coalesce(on_roll_from, '')"
    _create("pupil_by_row", True)
    columns = ", ".join(_COLUMNS)
    op.execute(f"INSERT INTO pupil_by_row (row_key, {columns}) "
               f"SELECT upn || '|' || school_urn || '|' || {joined}, {columns} FROM pupil")
    op.drop_table("pupil")
    _renamed("pupil_by_row", True)


def downgrade() -> None:
    # One row a UPN again: the current row with the latest start (an unknown start last; any row if none is
    # current) is kept, on both dialects (they sort NULL differently).
    _create("pupil_by_upn", False)
    columns = ", ".join(_COLUMNS)
    op.execute(f"INSERT INTO pupil_by_upn ({columns}) SELECT {columns} FROM pupil p WHERE p.row_key = ("
               "SELECT q.row_key FROM pupil q WHERE q.upn = p.upn "
               "ORDER BY q.ended_at IS NOT NULL, q.on_roll_from IS NULL, q.on_roll_from DESC, q.row_key DESC LIMIT 1)")
    op.drop_table("pupil")
    _renamed("pupil_by_upn", False)
