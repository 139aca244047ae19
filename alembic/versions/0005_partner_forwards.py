"""Partner forwards (110 / 12345 / 12355): partners, result feedback and its attempts,
satisfaction

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"


def _at(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(
        name,
        sa.DateTime(timezone=True),
        nullable=nullable,
        server_default=None if nullable else sa.text("now()"),
    )


def upgrade() -> None:
    op.create_table(
        "partner",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("source", sa.String(10), nullable=False, unique=True),
        sa.Column("name", sa.String(60), nullable=False),
        sa.Column("secret_box", sa.Text(), nullable=False),
        sa.Column("callback_url", sa.String(500), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()),
        _at("created_at", nullable=False),
        _at("updated_at", nullable=False),
    )
    op.create_table(
        "partner_message",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("partner_id", sa.Integer(), sa.ForeignKey("partner.id"), nullable=False),
        sa.Column("report_id", sa.Integer(), sa.ForeignKey("report.id"), nullable=False),
        sa.Column("case_id", sa.Integer(), sa.ForeignKey("hcase.id"), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("body", postgresql.JSONB(), nullable=False),
        _at("created_at", nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        _at("next_attempt_at", nullable=False),
        _at("delivered_at"),
        sa.Column("last_error", sa.String(60), nullable=True),
        sa.UniqueConstraint("report_id", "status"),
    )
    op.create_index("ix_partner_message_case_id", "partner_message", ["case_id"])
    op.create_index(
        "ix_partner_message_undelivered",
        "partner_message",
        ["partner_id", "id"],
        postgresql_where=sa.text("delivered_at IS NULL"),
    )
    op.create_table(
        "partner_attempt",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "message_id", sa.Integer(), sa.ForeignKey("partner_message.id"), nullable=False
        ),
        _at("at", nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(60), nullable=True),
    )
    op.create_index("ix_partner_attempt_message_id", "partner_attempt", ["message_id"])
    op.create_table(
        "forward_satisfaction",
        sa.Column("report_id", sa.Integer(), sa.ForeignKey("report.id"), primary_key=True),
        sa.Column("case_id", sa.Integer(), sa.ForeignKey("hcase.id"), nullable=False),
        sa.Column("source", sa.String(10), nullable=False),
        sa.Column("score", sa.SmallInteger(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        _at("visited_at"),
        _at("recorded_at", nullable=False),
        sa.CheckConstraint("score BETWEEN 1 AND 5", name="ck_forward_satisfaction_score"),
    )
    op.create_index("ix_forward_satisfaction_case_id", "forward_satisfaction", ["case_id"])


def downgrade() -> None:
    op.drop_table("forward_satisfaction")
    op.drop_table("partner_attempt")
    op.drop_table("partner_message")
    op.drop_table("partner")
