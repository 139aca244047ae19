"""Help plans and their items, call wrap-ups, visit reminders, written assessments, placements,
guardian interventions and case conferences called ahead,
reporters not to be contacted

Revision ID: 0015
Revises: 0014

Tables of `db.models_casework` (plans, wrap-ups) and `visit.reminded_at`, which the
reminder sweep sets so each planned visit is reminded once.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision: str = "0015"
down_revision: str | None = "0014"


def _now(name: str) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def upgrade() -> None:
    op.create_table(
        "case_plan",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("case_id", sa.Integer, sa.ForeignKey("hcase.id"), nullable=False, index=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("needs", ARRAY(sa.Text), nullable=False, server_default="{}"),
        sa.Column("reason", sa.Text),
        sa.Column("created_by", sa.Integer, sa.ForeignKey("app_user.id"), nullable=False),
        sa.Column("approved_by", sa.Integer, sa.ForeignKey("app_user.id")),
        sa.Column("adopted_at", sa.DateTime(timezone=True)),
        _now("created_at"),
        sa.UniqueConstraint("case_id", "version"),
    )
    op.create_table(
        "case_meeting",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("case_id", sa.Integer, sa.ForeignKey("hcase.id"), nullable=False, index=True),
        sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("place", sa.String(200)),
        sa.Column("agenda", sa.Text, nullable=False),
        sa.Column("departments", ARRAY(sa.Text), nullable=False, server_default="{}"),
        sa.Column("attended", ARRAY(sa.Text), nullable=False, server_default="{}"),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("conference_id", sa.Integer, sa.ForeignKey("case_conference.id")),
        sa.Column("created_by", sa.Integer, sa.ForeignKey("app_user.id"), nullable=False),
        _now("created_at"),
    )
    op.create_table(
        "report_no_contact",
        sa.Column("report_id", sa.Integer, sa.ForeignKey("report.id"), primary_key=True),
        sa.Column("reason", sa.String(20), nullable=False),
        sa.Column("marked_by", sa.String(80), nullable=False),
        _now("created_at"),
    )
    op.create_table(
        "placement",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("case_id", sa.Integer, sa.ForeignKey("hcase.id"), nullable=False, index=True),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("body", sa.String(200), nullable=False),
        sa.Column("department_code", sa.String(40), sa.ForeignKey("department.code")),
        sa.Column("start_on", sa.Date, nullable=False),
        sa.Column("end_on", sa.Date),
        sa.Column("note", sa.Text),
        sa.Column("created_by", sa.Integer, sa.ForeignKey("app_user.id"), nullable=False),
        _now("created_at"),
    )
    op.create_table(
        "guardian_intervention",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("case_id", sa.Integer, sa.ForeignKey("hcase.id"), nullable=False, index=True),
        sa.Column("step", sa.String(30), nullable=False),
        sa.Column(
            "department_code", sa.String(40), sa.ForeignKey("department.code"), nullable=False
        ),
        sa.Column("acted_on", sa.Date, nullable=False),
        sa.Column("document", sa.String(200)),
        sa.Column("note", sa.Text),
        sa.Column("skip_reason", sa.Text),
        sa.Column("created_by", sa.Integer, sa.ForeignKey("app_user.id"), nullable=False),
        _now("created_at"),
    )
    op.create_table(
        "case_plan_item",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("plan_id", sa.Integer, sa.ForeignKey("case_plan.id"), nullable=False, index=True),
        sa.Column("need", sa.String(40), nullable=False),
        sa.Column(
            "department_code", sa.String(40), sa.ForeignKey("department.code"), nullable=False
        ),
        sa.Column("cooperating", ARRAY(sa.Text), nullable=False, server_default="{}"),
        sa.Column("referral_id", sa.Integer, sa.ForeignKey("referral.id")),
        sa.Column("due_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "call_wrapup",
        sa.Column("call_id", sa.Integer, sa.ForeignKey("voice_call.id"), primary_key=True),
        sa.Column("type", sa.String(20), nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("case_id", sa.Integer, sa.ForeignKey("hcase.id")),
        sa.Column("operator_id", sa.Integer, sa.ForeignKey("app_user.id"), nullable=False),
        _now("created_at"),
    )
    op.add_column("visit", sa.Column("reminded_at", sa.DateTime(timezone=True)))
    op.create_table(
        "case_assessment",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("case_id", sa.Integer, sa.ForeignKey("hcase.id"), nullable=False, index=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("answers", JSONB, nullable=False),
        sa.Column("score", sa.Integer, nullable=False),
        sa.Column("proposed_level", sa.String(10), nullable=False),
        sa.Column("risk_level", sa.String(10), nullable=False),
        sa.Column("override_reason", sa.Text),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("needs", ARRAY(sa.Text), nullable=False, server_default="{}"),
        sa.Column("created_by", sa.Integer, sa.ForeignKey("app_user.id"), nullable=False),
        _now("created_at"),
        sa.UniqueConstraint("case_id", "version"),
    )


def downgrade() -> None:
    op.drop_table("guardian_intervention")
    op.drop_table("report_no_contact")
    op.drop_table("case_meeting")
    op.drop_table("placement")
    op.drop_table("case_assessment")
    op.drop_column("visit", "reminded_at")
    op.drop_table("call_wrapup")
    op.drop_table("case_plan_item")
    op.drop_table("case_plan")
