"""Twilio voice and SMS: messages, calls, caller blocks

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
import sqlmodel  # noqa: F401
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"

_WAITING = (
    "queue IS NOT NULL AND queue_left_at IS NULL AND answered_at IS NULL AND ended_at IS NULL"
)


def _string(length: int | None = None) -> sa.types.TypeEngine:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def _at(name: str, nullable: bool = False) -> sa.Column:
    if nullable:
        return sa.Column(name, sa.DateTime(timezone=True), nullable=True)
    return sa.Column(
        name, sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "sms_opt_out",
        sa.Column("phone", _string(32), nullable=False),
        sa.Column("keyword", _string(20), nullable=False),
        _at("opted_out_at"),
        sa.PrimaryKeyConstraint("phone"),
    )
    op.create_table(
        "caller_block",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("phone", _string(32), nullable=False),
        sa.Column("reason", _string(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=False),
        _at("created_at"),
        _at("expires_at"),
        _at("lifted_at", nullable=True),
        sa.Column("lifted_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["created_by"], ["app_user.id"]),
        sa.ForeignKeyConstraint(["lifted_by"], ["app_user.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_caller_block_phone"), "caller_block", ["phone"])
    op.create_table(
        "sms_thread",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("phone", _string(32), nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        _at("opened_at"),
        _at("last_message_at"),
        sa.ForeignKeyConstraint(["case_id"], ["hcase.id"]),
        sa.ForeignKeyConstraint(["report_id"], ["report.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("report_id"),
    )
    op.create_index(op.f("ix_sms_thread_case_id"), "sms_thread", ["case_id"])
    op.create_index("ix_sms_thread_phone_last", "sms_thread", ["phone", "last_message_at"])
    op.create_table(
        "sms_message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("thread_id", sa.Integer(), nullable=True),
        sa.Column("direction", _string(3), nullable=False),
        sa.Column("kind", _string(20), nullable=False),
        sa.Column("phone", _string(32), nullable=False),
        sa.Column("message_sid", _string(64), nullable=True),
        sa.Column("body", _string(), nullable=False),
        sa.Column("media", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("reply", _string(), nullable=True),
        sa.Column("status", _string(20), nullable=False),
        sa.Column("error", _string(80), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        _at("created_at"),
        _at("updated_at"),
        _at("submitted_at", nullable=True),
        sa.ForeignKeyConstraint(["author_id"], ["app_user.id"]),
        sa.ForeignKeyConstraint(["thread_id"], ["sms_thread.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("message_sid"),
    )
    op.create_index(op.f("ix_sms_message_thread_id"), "sms_message", ["thread_id"])
    op.create_table(
        "voice_call",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_sid", _string(64), nullable=False),
        sa.Column("phone", _string(32), nullable=True),
        sa.Column("status", _string(20), nullable=False),
        sa.Column("route", _string(10), nullable=False),
        sa.Column("menu_choice", _string(10), nullable=True),
        sa.Column("queue", _string(64), nullable=True),
        _at("enqueued_at", nullable=True),
        _at("queue_left_at", nullable=True),
        sa.Column("queue_result", _string(30), nullable=True),
        sa.Column("queue_seconds", sa.Integer(), nullable=True),
        _at("answered_at", nullable=True),
        sa.Column("duration_seconds", sa.Integer(), nullable=True),
        _at("ended_at", nullable=True),
        sa.Column("recording_sid", _string(64), nullable=True),
        sa.Column("recording_url", _string(400), nullable=True),
        sa.Column("recording_seconds", sa.Integer(), nullable=True),
        sa.Column("report_id", sa.Integer(), nullable=True),
        sa.Column("case_id", sa.Integer(), nullable=True),
        _at("created_at"),
        _at("updated_at"),
        sa.ForeignKeyConstraint(["case_id"], ["hcase.id"]),
        sa.ForeignKeyConstraint(["report_id"], ["report.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("call_sid"),
    )
    op.create_index(op.f("ix_voice_call_case_id"), "voice_call", ["case_id"])
    op.create_index(op.f("ix_voice_call_phone"), "voice_call", ["phone"])
    op.create_index(
        "ix_voice_call_waiting",
        "voice_call",
        ["queue", "enqueued_at"],
        postgresql_where=sa.text(_WAITING),
    )
    op.create_table(
        "voice_callback",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("phone", _string(32), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("reason", _string(20), nullable=False),
        sa.Column("emergency", sa.Boolean(), nullable=False),
        sa.Column("priority", _string(10), nullable=False),
        _at("due_at"),
        sa.Column("status", _string(10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("outcome", _string(20), nullable=True),
        sa.Column("note", _string(), nullable=True),
        sa.Column("done_by", sa.Integer(), nullable=True),
        _at("created_at"),
        _at("updated_at"),
        _at("done_at", nullable=True),
        sa.ForeignKeyConstraint(["call_id"], ["voice_call.id"]),
        sa.ForeignKeyConstraint(["case_id"], ["hcase.id"]),
        sa.ForeignKeyConstraint(["done_by"], ["app_user.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("call_id"),
    )
    op.create_index(
        "ix_voice_callback_pending",
        "voice_callback",
        ["due_at"],
        postgresql_where=sa.text("status = 'pending'"),
    )


def downgrade() -> None:
    op.drop_table("voice_callback")
    op.drop_table("voice_call")
    op.drop_table("sms_message")
    op.drop_table("sms_thread")
    op.drop_table("caller_block")
    op.drop_table("sms_opt_out")
