"""Retention: a case's legal hold, when it was anonymised, when its recording was deleted

Revision ID: 0029
Revises: 0027

The retention job (dispatch.retention) anonymises a case once its period is over and
leaves a held one alone: `legal_hold_*` is the hold (who, when, why), `anonymised_at`
marks the case done, so a run is idempotent and a stopped one resumes where it left off.
`voice_call.recording_deleted_at` keeps the record that the audio was deleted at Twilio.
Partial indexes keep the job's probes off the rows already done.
"""

import sqlalchemy as sa
from alembic import op

revision: str = "0029"
down_revision: str | None = "0027"


def upgrade() -> None:
    ts = sa.DateTime(timezone=True)
    op.add_column("hcase", sa.Column("legal_hold_at", ts))
    op.add_column("hcase", sa.Column("legal_hold_by", sa.String(80)))
    op.add_column("hcase", sa.Column("legal_hold_reason", sa.Text()))
    op.add_column("hcase", sa.Column("anonymised_at", ts))
    op.add_column("voice_call", sa.Column("recording_deleted_at", ts))
    op.create_index(
        "ix_hcase_retention_pending",
        "hcase",
        ["state", "id"],
        postgresql_where=sa.text("anonymised_at IS NULL AND legal_hold_at IS NULL"),
    )
    op.create_index(
        "ix_voice_call_recording_kept",
        "voice_call",
        ["created_at"],
        postgresql_where=sa.text("recording_sid IS NOT NULL AND recording_deleted_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_voice_call_recording_kept", table_name="voice_call")
    op.drop_index("ix_hcase_retention_pending", table_name="hcase")
    op.drop_column("voice_call", "recording_deleted_at")
    op.drop_column("hcase", "anonymised_at")
    op.drop_column("hcase", "legal_hold_reason")
    op.drop_column("hcase", "legal_hold_by")
    op.drop_column("hcase", "legal_hold_at")
