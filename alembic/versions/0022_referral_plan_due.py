"""A help plan's due date on the referral it created (一案一策 → 转介办结期限)

Revision ID: 0022
Revises: 0020

The plan gives each need's lead department a time to deliver (casework.toml `due`). The
referral carries it as a third deadline phase after claim and first action: while in
progress it must be completed by `plan_due_at`, warned, 督办 and 挂牌督办 like the others
(`plan_window` from `plan_started_at`, so twice the window is known for flagging).
"""

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0020"


def upgrade() -> None:
    op.add_column("referral", sa.Column("plan_window", sa.String(10)))
    op.add_column("referral", sa.Column("plan_started_at", sa.DateTime(timezone=True)))
    op.add_column("referral", sa.Column("plan_due_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    for column in ("plan_due_at", "plan_started_at", "plan_window"):
        op.drop_column("referral", column)
