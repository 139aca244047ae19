"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-22 16:33:18.162890
"""

import sqlalchemy as sa
import sqlmodel  # noqa: F401
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("object_type", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("object_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("ip", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("detail", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_audit_log_at"), "audit_log", ["at"], unique=False)
    op.create_table(
        "department",
        sa.Column("code", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_table(
        "jurisdiction",
        sa.Column("code", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("parent_code", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("path", sqlmodel.sql.sqltypes.AutoString(length=400), nullable=False),
        sa.ForeignKeyConstraint(
            ["parent_code"],
            ["jurisdiction.code"],
        ),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_index(
        op.f("ix_jurisdiction_parent_code"), "jurisdiction", ["parent_code"], unique=False
    )
    op.create_index(op.f("ix_jurisdiction_path"), "jurisdiction", ["path"], unique=False)
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("topic", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "available_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("relayed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_outbox_pending",
        "outbox",
        ["available_at", "id"],
        unique=False,
        postgresql_where=sa.text("relayed_at IS NULL"),
    )
    op.create_table(
        "app_user",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
        sa.Column("password_hash", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("role", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("department_code", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("jurisdiction_code", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("phone", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("token_version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["department_code"],
            ["department.code"],
        ),
        sa.ForeignKeyConstraint(
            ["jurisdiction_code"],
            ["jurisdiction.code"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("username"),
    )
    op.create_table(
        "category",
        sa.Column("code", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
        sa.Column("lead_department", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("cooperating", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.ForeignKeyConstraint(
            ["lead_department"],
            ["department.code"],
        ),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_table(
        "hcase",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("risk_level", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True),
        sa.Column("categories", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("emergency", sa.Boolean(), nullable=False),
        sa.Column("mandatory", sa.Boolean(), nullable=False),
        sa.Column("jurisdiction_code", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("merged_into_id", sa.Integer(), nullable=True),
        sa.Column("assessment", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["jurisdiction_code"],
            ["jurisdiction.code"],
        ),
        sa.ForeignKeyConstraint(
            ["merged_into_id"],
            ["hcase.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_hcase_created_at"), "hcase", ["created_at"], unique=False)
    op.create_index(op.f("ix_hcase_state"), "hcase", ["state"], unique=False)
    op.create_table(
        "office",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("department_code", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("jurisdiction_code", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.ForeignKeyConstraint(
            ["department_code"],
            ["department.code"],
        ),
        sa.ForeignKeyConstraint(
            ["jurisdiction_code"],
            ["jurisdiction.code"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("department_code", "jurisdiction_code"),
    )
    op.create_index(
        op.f("ix_office_jurisdiction_code"), "office", ["jurisdiction_code"], unique=False
    )
    op.create_table(
        "case_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("event", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("from_state", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
        sa.Column("to_state", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["actor_id"],
            ["app_user.id"],
        ),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["hcase.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_case_event_case_id"), "case_event", ["case_id"], unique=False)
    op.create_table(
        "referral",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("department_code", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("office_id", sa.Integer(), nullable=True),
        sa.Column("jurisdiction_code", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("role", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("claimed_by", sa.Integer(), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_activity_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claim_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("action_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("escalation", sa.Integer(), nullable=False),
        sa.Column("next_check_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("return_reason", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["hcase.id"],
        ),
        sa.ForeignKeyConstraint(
            ["claimed_by"],
            ["app_user.id"],
        ),
        sa.ForeignKeyConstraint(
            ["department_code"],
            ["department.code"],
        ),
        sa.ForeignKeyConstraint(
            ["jurisdiction_code"],
            ["jurisdiction.code"],
        ),
        sa.ForeignKeyConstraint(
            ["office_id"],
            ["office.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_referral_case_id"), "referral", ["case_id"], unique=False)
    op.create_index(
        "ix_referral_next_check",
        "referral",
        ["next_check_at"],
        unique=False,
        postgresql_where=sa.text("next_check_at IS NOT NULL"),
    )
    op.create_index(
        "ix_referral_one_active_per_department",
        "referral",
        ["case_id", "department_code"],
        unique=True,
        postgresql_where=sa.text("status NOT IN ('returned', 'cancelled')"),
    )
    op.create_index(op.f("ix_referral_status"), "referral", ["status"], unique=False)
    op.create_table(
        "report",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("external_id", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column("receipt_code", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("reporter", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("reporter_phone", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column(
            "situations", postgresql.ARRAY(sa.SmallInteger()), server_default="{}", nullable=False
        ),
        sa.Column("categories", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("child", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("jurisdiction_code", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("address", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("description", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("in_danger_now", sa.Boolean(), nullable=False),
        sa.Column("fingerprint", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("raw", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["hcase.id"],
        ),
        sa.ForeignKeyConstraint(
            ["jurisdiction_code"],
            ["jurisdiction.code"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("channel", "external_id"),
        sa.UniqueConstraint("receipt_code"),
    )
    op.create_index(op.f("ix_report_case_id"), "report", ["case_id"], unique=False)
    op.create_index(op.f("ix_report_created_at"), "report", ["created_at"], unique=False)
    op.create_index(
        "ix_report_recent_fingerprint", "report", ["fingerprint", "created_at"], unique=False
    )
    op.create_index(op.f("ix_report_reporter_phone"), "report", ["reporter_phone"], unique=False)
    op.create_table(
        "visit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("visited_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("visitor_id", sa.Integer(), nullable=True),
        sa.Column("findings", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("risk_before", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True),
        sa.Column("risk_after", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True),
        sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["hcase.id"],
        ),
        sa.ForeignKeyConstraint(
            ["visitor_id"],
            ["app_user.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_visit_case_id"), "visit", ["case_id"], unique=False)
    op.create_index(
        "ix_visit_pending_due",
        "visit",
        ["due_at"],
        unique=False,
        postgresql_where=sa.text("visited_at IS NULL AND escalated_at IS NULL"),
    )
    op.create_table(
        "notification",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("referral_id", sa.Integer(), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
        sa.Column("text", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["hcase.id"],
        ),
        sa.ForeignKeyConstraint(
            ["referral_id"],
            ["referral.id"],
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["app_user.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_notification_case_id"), "notification", ["case_id"], unique=False)
    # The audit log cannot be edited through the product, nor by a bug in it.
    op.execute("""
        CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$;
    """)
    op.execute("""
        CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log
        FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
    """)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS audit_log_no_change ON audit_log")
    op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
    op.drop_index(op.f("ix_notification_case_id"), table_name="notification")
    op.drop_table("notification")
    op.drop_index(
        "ix_visit_pending_due",
        table_name="visit",
        postgresql_where=sa.text("visited_at IS NULL AND escalated_at IS NULL"),
    )
    op.drop_index(op.f("ix_visit_case_id"), table_name="visit")
    op.drop_table("visit")
    op.drop_index(op.f("ix_report_reporter_phone"), table_name="report")
    op.drop_index("ix_report_recent_fingerprint", table_name="report")
    op.drop_index(op.f("ix_report_created_at"), table_name="report")
    op.drop_index(op.f("ix_report_case_id"), table_name="report")
    op.drop_table("report")
    op.drop_index(op.f("ix_referral_status"), table_name="referral")
    op.drop_index(
        "ix_referral_one_active_per_department",
        table_name="referral",
        postgresql_where=sa.text("status NOT IN ('returned', 'cancelled')"),
    )
    op.drop_index(
        "ix_referral_next_check",
        table_name="referral",
        postgresql_where=sa.text("next_check_at IS NOT NULL"),
    )
    op.drop_index(op.f("ix_referral_case_id"), table_name="referral")
    op.drop_table("referral")
    op.drop_index(op.f("ix_case_event_case_id"), table_name="case_event")
    op.drop_table("case_event")
    op.drop_index(op.f("ix_office_jurisdiction_code"), table_name="office")
    op.drop_table("office")
    op.drop_index(op.f("ix_hcase_state"), table_name="hcase")
    op.drop_index(op.f("ix_hcase_created_at"), table_name="hcase")
    op.drop_table("hcase")
    op.drop_table("category")
    op.drop_table("app_user")
    op.drop_index(
        "ix_outbox_pending", table_name="outbox", postgresql_where=sa.text("relayed_at IS NULL")
    )
    op.drop_table("outbox")
    op.drop_index(op.f("ix_jurisdiction_path"), table_name="jurisdiction")
    op.drop_index(op.f("ix_jurisdiction_parent_code"), table_name="jurisdiction")
    op.drop_table("jurisdiction")
    op.drop_table("department")
    op.drop_index(op.f("ix_audit_log_at"), table_name="audit_log")
    op.drop_table("audit_log")
