"""Tasks with owners and deadlines (conference decisions, supervision actions), and each
case's responsible caseworker and pairing person

Revision ID: 0014
Revises: 0009

Tables of `db.models_casework`; the sweep reads tasks due a look through a partial index,
"my cases" reads assignments by owner and by pairing person.
"""

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0009"


def _ts(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(
        name,
        sa.DateTime(timezone=True),
        nullable=nullable,
        server_default=None if nullable else sa.func.now(),
    )


def upgrade() -> None:
    op.create_table(
        "task",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("case_id", sa.Integer, sa.ForeignKey("hcase.id"), nullable=False, index=True),
        sa.Column("source", sa.String(30), nullable=False),
        sa.Column("source_id", sa.String(40), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("detail", sa.Text),
        sa.Column(
            "department_code", sa.String(40), sa.ForeignKey("department.code"), nullable=False
        ),
        sa.Column("jurisdiction_code", sa.String(32), sa.ForeignKey("jurisdiction.code")),
        sa.Column("owner_user_id", sa.Integer, sa.ForeignKey("app_user.id"), index=True),
        sa.Column("status", sa.String(20), nullable=False, index=True),
        sa.Column("warn_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("flag_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("escalation", sa.Integer, nullable=False, server_default="0"),
        _ts("next_check_at"),
        sa.Column("outcome", sa.Text),
        sa.Column("cancel_reason", sa.Text),
        sa.Column("created_by", sa.String(80), nullable=False),
        sa.Column("done_by", sa.Integer, sa.ForeignKey("app_user.id")),
        _ts("done_at"),
        _ts("created_at", nullable=False),
        _ts("updated_at", nullable=False),
        sa.UniqueConstraint("source", "source_id", "department_code"),
    )
    op.create_index(
        "ix_task_next_check",
        "task",
        ["next_check_at"],
        postgresql_where=sa.text("next_check_at IS NOT NULL"),
    )
    op.create_table(
        "case_assignment",
        sa.Column("case_id", sa.Integer, sa.ForeignKey("hcase.id"), primary_key=True),
        sa.Column("owner_id", sa.Integer, sa.ForeignKey("app_user.id"), index=True),
        sa.Column("pairing_id", sa.Integer, sa.ForeignKey("app_user.id"), index=True),
        _ts("updated_at", nullable=False),
    )


def downgrade() -> None:
    op.drop_table("case_assignment")
    op.drop_index("ix_task_next_check", table_name="task")
    op.drop_table("task")
