"""Outbox rows are done when their work is: `done_at` set by the job in the same transaction
as its effect; `relayed_at` now only means "enqueued at", and `enqueues` counts the attempts
(the job id of attempt n is `outbox-<id>-<n>`)

Revision ID: 0008
Revises: 0007

Rows relayed before this revision cannot be told apart from done ones: they are taken as done.
"""

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"


def upgrade() -> None:
    op.add_column("outbox", sa.Column("done_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("outbox", sa.Column("enqueues", sa.Integer(), nullable=False, server_default="0"))
    op.execute("UPDATE outbox SET done_at = relayed_at, enqueues = 1 WHERE relayed_at IS NOT NULL")
    # The reconciler's probe: enqueued, not done, oldest first.
    op.create_index(
        "ix_outbox_undone",
        "outbox",
        ["relayed_at", "id"],
        postgresql_where=sa.text("done_at IS NULL AND relayed_at IS NOT NULL"),
    )
    # The dispatch status: what is not done yet, by age.
    op.create_index(
        "ix_outbox_not_done", "outbox", ["created_at"], postgresql_where=sa.text("done_at IS NULL")
    )
    # Pruning done rows after the retention period.
    op.create_index(
        "ix_outbox_done", "outbox", ["done_at"], postgresql_where=sa.text("done_at IS NOT NULL")
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_done", table_name="outbox")
    op.drop_index("ix_outbox_not_done", table_name="outbox")
    op.drop_index("ix_outbox_undone", table_name="outbox")
    op.drop_column("outbox", "enqueues")
    op.drop_column("outbox", "done_at")
