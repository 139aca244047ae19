"""A case's very likely duplicate, found by matching after intake, for the incoming list

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"


def upgrade() -> None:
    op.add_column(
        "hcase", sa.Column("likely_duplicate_of", sa.Integer, sa.ForeignKey("hcase.id"))
    )
    op.add_column("hcase", sa.Column("likely_duplicate_score", sa.Float))


def downgrade() -> None:
    op.drop_column("hcase", "likely_duplicate_score")
    op.drop_column("hcase", "likely_duplicate_of")
