"""Statistics index: cases per channel read the reports' (case_id, channel) pairs from an
index (an index-only scan), not the wide report rows with their descriptions

Revision ID: 0009
Revises: 0008

Read by `dispatch.console.stats` (the statistics page and the quarterly report's summary).
"""

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"


def upgrade() -> None:
    op.execute("CREATE INDEX ix_report_case_channel ON report (case_id, channel)")


def downgrade() -> None:
    op.execute("DROP INDEX ix_report_case_channel")
