"""Scorecard tally: the department scorecard's figures of closed UTC days, counted once

Revision ID: 0027
Revises: 0026

A scheduler pass (`dispatch.supervision.tally.build`) counts each closed UTC day's referrals
per department × office × the referral's place × the case's place (the two places a scope is
checked on) × status × return reason: the counts of `referral_measure`, and the minutes to
the first claim and to the first action as arrays (the medians and 90th percentiles are
computed from the exact minutes, merged in the application). The
scorecard reads those rows for a period's clean days and the live rows for the rest (the
period's partial first and last days, today, and any day with a timeline event since it was
counted). No trigger: the writers are not touched.

The timeline's `created_at` index is what finds the days touched since they were counted:
every change to a referral, its measures or its case's place is written with a timeline
event in the same transaction.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision: str = "0027"
down_revision: str | None = "0026"


def upgrade() -> None:
    op.create_table(
        "scorecard_day",
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
    )
    counts = [
        "received",
        "claimed",
        "claimed_on_time",
        "acted_on_time",
        "escalated",
        "auto_flagged",
        "returned",
    ]
    op.create_table(
        "scorecard_tally",
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("department_code", sa.String(), nullable=False),
        sa.Column("office_id", sa.Integer, nullable=False),
        sa.Column("jurisdiction_code", sa.String()),
        sa.Column("case_jurisdiction", sa.String()),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("return_reason", sa.Text),
        *(sa.Column(name, sa.Integer, nullable=False) for name in counts),
        sa.Column("claim_minutes", ARRAY(sa.Integer), nullable=False),
        sa.Column("act_minutes", ARRAY(sa.Integer), nullable=False),
    )
    op.create_index("ix_scorecard_tally_day", "scorecard_tally", ["day"])
    op.create_index("ix_case_event_created_at", "case_event", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_case_event_created_at", table_name="case_event")
    op.drop_table("scorecard_tally")
    op.drop_table("scorecard_day")
