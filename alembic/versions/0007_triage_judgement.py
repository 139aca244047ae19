"""Triage integration: the judgement on each report, what the lists need on the case, the
withdrawn referral status, corrections kept as labelled examples

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"

ONE_ACTIVE = "ix_referral_one_active_per_department"


def _one_active(finished: str) -> None:
    op.drop_index(ONE_ACTIVE, table_name="referral")
    op.create_index(
        ONE_ACTIVE,
        "referral",
        ["case_id", "department_code"],
        unique=True,
        postgresql_where=sa.text(f"status NOT IN ({finished})"),
    )


def upgrade() -> None:
    op.add_column("report", sa.Column("judgement", postgresql.JSONB(), nullable=True))
    op.add_column("hcase", sa.Column("not_a_case", sa.String(length=20), nullable=True))
    op.add_column("hcase", sa.Column("predicted_risk", sa.String(length=10), nullable=True))
    op.add_column("referral", sa.Column("withdraw_reason", sa.Text(), nullable=True))
    _one_active("'returned', 'cancelled', 'withdrawn'")
    op.create_table(
        "triage_example",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("corpus_register", sa.String(length=20), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("labels", postgresql.JSONB(), nullable=False),
        sa.Column("judged", postgresql.JSONB(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(length=80), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["case_id"], ["hcase.id"]),
        sa.ForeignKeyConstraint(["created_by"], ["app_user.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_triage_example_case_id", "triage_example", ["case_id"])


def downgrade() -> None:
    op.drop_index("ix_triage_example_case_id", table_name="triage_example")
    op.drop_table("triage_example")
    op.execute("UPDATE referral SET status = 'cancelled' WHERE status = 'withdrawn'")
    _one_active("'returned', 'cancelled'")
    op.drop_column("referral", "withdraw_reason")
    op.drop_column("hcase", "predicted_risk")
    op.drop_column("hcase", "not_a_case")
    op.drop_column("report", "judgement")
