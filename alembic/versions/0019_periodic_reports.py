"""Periodic reports (月报/季报/半年报/年报) that districts send up to the city (报送)

Revision ID: 0019
Revises: 0018

One row per district and period, from draft through 审核 to 报送 and the city's
acknowledgement or return; `history` keeps every step with who, when and the comment.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0019"
down_revision: str | None = "0018"


def _ts(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(
        name,
        sa.DateTime(timezone=True),
        nullable=nullable,
        server_default=None if nullable else sa.func.now(),
    )


def upgrade() -> None:
    op.create_table(
        "periodic_report",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "district_code", sa.String(32), sa.ForeignKey("jurisdiction.code"), nullable=False
        ),
        sa.Column("period", sa.String(10), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("figures", JSONB),
        sa.Column("narrative", sa.Text, nullable=False, server_default=""),
        sa.Column("typical_cases", JSONB, nullable=False, server_default="[]"),
        sa.Column("comment", sa.Text),
        sa.Column("history", JSONB, nullable=False, server_default="[]"),
        sa.Column("updated_by_label", sa.String(80), nullable=False),
        _ts("submitted_at"),
        _ts("created_at", nullable=False),
        _ts("updated_at", nullable=False),
        sa.UniqueConstraint("district_code", "period"),
    )
    op.create_index("ix_periodic_report_period", "periodic_report", ["period"])


def downgrade() -> None:
    op.drop_table("periodic_report")
