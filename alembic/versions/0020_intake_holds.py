"""Public intake: a report's content fingerprint, and bursts held for an operator

Revision ID: 0020
Revises: 0019

`content_fingerprint` hashes the description alone (spacing and punctuation ignored,
`workflows.cases.intake.content_fingerprint`); a web report repeating one received shortly
before joins its case with `held` set (the reason, "burst") instead of being routed again.
Indexed like `fingerprint`, for the lookup of a recent one.
"""

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"


def upgrade() -> None:
    op.add_column("report", sa.Column("content_fingerprint", sa.String(64), nullable=True))
    op.add_column("report", sa.Column("held", sa.String(20), nullable=True))
    op.create_index(
        "ix_report_recent_content", "report", ["content_fingerprint", "created_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_report_recent_content", table_name="report")
    op.drop_column("report", "held")
    op.drop_column("report", "content_fingerprint")
