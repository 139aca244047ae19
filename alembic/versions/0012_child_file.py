"""The child file (一人一档): child, guardians, siblings, case links, the file's events,
ledger imports; blocking keys on reports and children under GIN indexes

Revision ID: 0012
Revises: 0015

The reports' keys start empty; `hotline children keys` fills them for reports taken before.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision: str = "0012"
down_revision: str | None = "0015"


def _now() -> sa.TextClause:
    return sa.text("now()")


def _texts(name: str) -> sa.Column:
    return sa.Column(name, ARRAY(sa.Text), nullable=False, server_default="{}")


def upgrade() -> None:
    op.add_column("report", _texts("match_keys"))
    op.create_index("ix_report_match_keys", "report", ["match_keys"], postgresql_using="gin")
    op.create_table(
        "child",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(100)),
        sa.Column("name_pinyin", sa.String(300)),
        sa.Column("gender", sa.String(10)),
        sa.Column("birth_date", sa.Date),
        sa.Column("age", sa.Integer),
        sa.Column("age_given_on", sa.Date),
        sa.Column("id_number", sa.Text),
        sa.Column("id_index", sa.String(64), index=True),
        sa.Column("hukou", sa.String(200)),
        sa.Column("address", sa.String(200)),
        sa.Column("jurisdiction_code", sa.String(32), sa.ForeignKey("jurisdiction.code")),
        sa.Column("school", sa.String(100)),
        sa.Column("school_class", sa.String(50)),
        _texts("categories"),
        sa.Column("risk_level", sa.String(10)),
        _texts("match_keys"),
        sa.Column("merged_into_id", sa.Integer, sa.ForeignKey("child.id")),
        sa.Column("last_seen_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
    )
    op.create_index("ix_child_match_keys", "child", ["match_keys"], postgresql_using="gin")
    op.create_table(
        "guardian",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("child_id", sa.Integer, sa.ForeignKey("child.id"), nullable=False, index=True),
        sa.Column("relation", sa.String(20), nullable=False),
        sa.Column("name", sa.String(100)),
        sa.Column("phone", sa.Text),
        sa.Column("phone_index", sa.String(64), index=True),
        sa.Column("state", sa.String(20), nullable=False),
    )
    op.create_table(
        "child_sibling",
        sa.Column("child_id", sa.Integer, sa.ForeignKey("child.id"), primary_key=True),
        sa.Column(
            "sibling_id", sa.Integer, sa.ForeignKey("child.id"), primary_key=True, index=True
        ),
    )
    op.create_table(
        "case_child",
        sa.Column("case_id", sa.Integer, sa.ForeignKey("hcase.id"), primary_key=True),
        sa.Column(
            "child_id", sa.Integer, sa.ForeignKey("child.id"), primary_key=True, index=True
        ),
        sa.Column("linked_by", sa.String(80), nullable=False),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
    )
    op.create_table(
        "child_event",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("child_id", sa.Integer, sa.ForeignKey("child.id"), nullable=False, index=True),
        sa.Column("event", sa.String(30), nullable=False),
        sa.Column("actor", sa.String(80), nullable=False),
        sa.Column("actor_id", sa.Integer, sa.ForeignKey("app_user.id")),
        sa.Column("case_id", sa.Integer, sa.ForeignKey("hcase.id")),
        sa.Column("reason", sa.Text),
        sa.Column("data", JSONB),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
    )
    op.create_table(
        "ledger_import",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("filename", sa.String(200), nullable=False),
        sa.Column("jurisdiction_code", sa.String(32), sa.ForeignKey("jurisdiction.code")),
        sa.Column("actor", sa.String(80), nullable=False),
        sa.Column("counts", JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
    )


def downgrade() -> None:
    for table in ("ledger_import", "child_event", "case_child", "child_sibling", "guardian"):
        op.drop_table(table)
    op.drop_index("ix_child_match_keys", "child")
    op.drop_table("child")
    op.drop_index("ix_report_match_keys", "report")
    op.drop_column("report", "match_keys")
