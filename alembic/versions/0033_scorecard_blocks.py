"""Scorecard blocks: a local month's minutes to the first claim and action, bucketed

Revision ID: 0033
Revises: 0030

The tally of closed UTC days (0027) keeps every day's exact minutes as arrays; a quarter's
scorecard unnested ~380,000 of them to find medians and 90th percentiles. A block is the
UTC days wholly inside one local month, all counted: `scorecard_block` says which blocks
are built, `scorecard_block_tally` holds their counts as the day tally does (summed over
the block's days), `scorecard_minutes` holds their minutes per department × office × the two
places × what (claim, action) × bucket (`dispatch.supervision.blocks.BOUNDS`), with the
bucket's count and its exact minutes (distinct, ascending, and how many of each). The
scorecard sums the counts, then reads the exact minutes of the one or two buckets holding
each median and 90th percentile: the figures stay exact.

No existing rows change: the scheduler's next passes build the blocks from the day tally.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision: str = "0033"
down_revision: str | None = "0032"

COUNTS = (  # db.supervision.TALLY_COUNTS as of this revision
    "received",
    "claimed",
    "claimed_on_time",
    "acted_on_time",
    "escalated",
    "auto_flagged",
    "returned",
)


def upgrade() -> None:
    op.create_table(
        "scorecard_block",
        sa.Column("first_day", sa.Date, primary_key=True),
        sa.Column("after_day", sa.Date, nullable=False),
        sa.Column("built_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("bounds", sa.Text, nullable=False),
    )
    op.create_table(
        "scorecard_block_tally",
        sa.Column(
            "block",
            sa.Date,
            sa.ForeignKey("scorecard_block.first_day", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("department_code", sa.String(), nullable=False),
        sa.Column("office_id", sa.Integer, nullable=False),
        sa.Column("jurisdiction_code", sa.String()),
        sa.Column("case_jurisdiction", sa.String()),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("return_reason", sa.Text),
        *(sa.Column(name, sa.Integer, nullable=False) for name in COUNTS),
    )
    op.create_index("ix_scorecard_block_tally_block", "scorecard_block_tally", ["block"])
    op.create_table(
        "scorecard_minutes",
        sa.Column(
            "block",
            sa.Date,
            sa.ForeignKey("scorecard_block.first_day", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("department_code", sa.String(), nullable=False),
        sa.Column("office_id", sa.Integer, nullable=False),
        sa.Column("jurisdiction_code", sa.String()),
        sa.Column("case_jurisdiction", sa.String()),
        sa.Column("what", sa.String(6), nullable=False),
        sa.Column("bucket", sa.SmallInteger, nullable=False),
        sa.Column("n", sa.Integer, nullable=False),
        sa.Column("minutes", ARRAY(sa.Integer), nullable=False),
        sa.Column("counts", ARRAY(sa.Integer), nullable=False),
    )
    op.create_index(
        "ix_scorecard_minutes_block", "scorecard_minutes", ["block", "what", "bucket"]
    )


def downgrade() -> None:
    op.drop_table("scorecard_minutes")
    op.drop_table("scorecard_block_tally")
    op.drop_table("scorecard_block")
