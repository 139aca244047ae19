"""Supervision: referral measures for the scorecard, 督查 orders, 重点个案, 个案督导 notes

Revision ID: 0018
Revises: 0013

`referral_measure` holds, per referral, the moments the department scorecard is made of
(first claim, first action, first 督办 / 挂牌督办) and whether each was on time when it
happened. A trigger on the timeline (`case_event`) keeps it: every writer of a referral's
claim, progress, completion or escalation event feeds it without knowing of it, so the
scorecard reads one narrow row per referral instead of searching the timeline's JSON.
Existing history is backfilled from the timeline here.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0018"
down_revision: str | None = "0013"


def _ts(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(
        name,
        sa.DateTime(timezone=True),
        nullable=nullable,
        server_default=None if nullable else sa.func.now(),
    )


MEASURE_FUNCTION = """
CREATE FUNCTION referral_measure_from_event() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    rid integer := (NEW.data->>'referral_id')::integer;
    r referral%ROWTYPE;
BEGIN
    SELECT * INTO r FROM referral WHERE id = rid;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    INSERT INTO referral_measure (referral_id) VALUES (rid) ON CONFLICT DO NOTHING;
    IF NEW.event = 'referral_claimed' THEN
        UPDATE referral_measure SET
            first_claimed_at = NEW.created_at,
            claimed_on_time = NEW.created_at <= COALESCE(r.claim_due_at, NEW.created_at)
        WHERE referral_id = rid AND first_claimed_at IS NULL;
    ELSIF NEW.event IN ('referral_progress', 'referral_completed') THEN
        UPDATE referral_measure SET
            first_acted_at = NEW.created_at,
            acted_on_time = NEW.created_at <= COALESCE(r.action_due_at, NEW.created_at)
        WHERE referral_id = rid AND first_acted_at IS NULL;
    ELSIF NEW.event = 'escalated' THEN
        UPDATE referral_measure SET
            escalated_at = COALESCE(escalated_at, NEW.created_at),
            escalations = escalations + 1
        WHERE referral_id = rid;
    ELSIF NEW.event = 'flagged' THEN
        UPDATE referral_measure SET flagged_at = COALESCE(flagged_at, NEW.created_at)
        WHERE referral_id = rid;
    END IF;
    RETURN NULL;
END $$
"""

MEASURE_TRIGGER = """
CREATE TRIGGER case_event_referral_measure AFTER INSERT ON case_event FOR EACH ROW
WHEN (NEW.event IN ('referral_claimed', 'referral_progress', 'referral_completed',
                    'escalated', 'flagged')
      AND NEW.data ? 'referral_id')
EXECUTE FUNCTION referral_measure_from_event()
"""

# The same definitions over the history already on the timeline.
BACKFILL = """
WITH ev AS (
    SELECT (e.data->>'referral_id')::integer AS rid, e.event, e.created_at
    FROM case_event e
    WHERE e.event IN ('referral_claimed', 'referral_progress', 'referral_completed',
                      'escalated', 'flagged')
      AND e.data ? 'referral_id'
), firsts AS (
    SELECT rid,
           min(created_at) FILTER (WHERE event = 'referral_claimed') AS claimed,
           min(created_at) FILTER (WHERE event IN ('referral_progress', 'referral_completed'))
               AS acted,
           min(created_at) FILTER (WHERE event = 'escalated') AS escalated,
           count(*) FILTER (WHERE event = 'escalated') AS escalations,
           min(created_at) FILTER (WHERE event = 'flagged') AS flagged
    FROM ev GROUP BY rid
)
INSERT INTO referral_measure (referral_id, first_claimed_at, claimed_on_time, first_acted_at,
                              acted_on_time, escalated_at, escalations, flagged_at)
SELECT f.rid, f.claimed, f.claimed <= COALESCE(r.claim_due_at, f.claimed),
       f.acted, f.acted <= COALESCE(r.action_due_at, f.acted),
       f.escalated, f.escalations, f.flagged
FROM firsts f JOIN referral r ON r.id = f.rid
"""


def upgrade() -> None:
    op.create_table(
        "referral_measure",
        sa.Column(
            "referral_id",
            sa.Integer,
            sa.ForeignKey("referral.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        _ts("first_claimed_at"),
        sa.Column("claimed_on_time", sa.Boolean),
        _ts("first_acted_at"),
        sa.Column("acted_on_time", sa.Boolean),
        _ts("escalated_at"),
        sa.Column("escalations", sa.Integer, nullable=False, server_default="0"),
        _ts("flagged_at"),
    )
    op.execute(MEASURE_FUNCTION)
    op.execute(MEASURE_TRIGGER)
    op.execute(BACKFILL)
    # The scorecard reads one period's referrals by when they reached their office.
    op.create_index("ix_referral_created_at", "referral", ["created_at"])

    op.create_table(
        "supervision_order",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("case_id", sa.Integer, sa.ForeignKey("hcase.id"), nullable=False, index=True),
        sa.Column("referral_id", sa.Integer, sa.ForeignKey("referral.id"), index=True),
        sa.Column(
            "department_code", sa.String(40), sa.ForeignKey("department.code"), nullable=False
        ),
        sa.Column("office_id", sa.Integer, sa.ForeignKey("office.id")),
        sa.Column("jurisdiction_code", sa.String(32), sa.ForeignKey("jurisdiction.code")),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        _ts("due_at", nullable=False),
        sa.Column("opened_by", sa.Integer, sa.ForeignKey("app_user.id")),
        sa.Column("opened_by_label", sa.String(80), nullable=False),
        _ts("opened_at", nullable=False),
        sa.Column("answer", sa.Text),
        sa.Column("answered_by_label", sa.String(80)),
        _ts("answered_at"),
        sa.Column("comment", sa.Text),
        sa.Column("lifted_by_label", sa.String(80)),
        _ts("lifted_at"),
        sa.Column("escalation", sa.Integer, nullable=False, server_default="0"),
        _ts("next_check_at"),
        _ts("created_at", nullable=False),
    )
    op.create_index(
        "ix_supervision_order_next_check",
        "supervision_order",
        ["next_check_at"],
        postgresql_where=sa.text("next_check_at IS NOT NULL"),
    )
    op.create_index(
        "ix_supervision_order_department_opened",
        "supervision_order",
        ["department_code", "opened_at"],
    )

    op.create_table(
        "key_case",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("case_id", sa.Integer, sa.ForeignKey("hcase.id"), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("flagged_by_label", sa.String(80), nullable=False),
        _ts("flagged_at", nullable=False),
        sa.Column("cleared_by_label", sa.String(80)),
        sa.Column("clear_reason", sa.Text),
        _ts("cleared_at"),
    )
    op.create_index(
        "ix_key_case_one_active",
        "key_case",
        ["case_id"],
        unique=True,
        postgresql_where=sa.text("cleared_at IS NULL"),
    )
    op.create_table(
        "key_case_minute",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("case_id", sa.Integer, sa.ForeignKey("hcase.id"), nullable=False, index=True),
        sa.Column("meeting_on", sa.Date, nullable=False),
        sa.Column("meeting", sa.String(120), nullable=False),
        sa.Column("minutes", sa.Text, nullable=False),
        sa.Column("decisions", sa.Text, nullable=False),
        sa.Column("recorded_by_label", sa.String(80), nullable=False),
        _ts("created_at", nullable=False),
    )
    op.create_table(
        "supervision_note",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("case_id", sa.Integer, sa.ForeignKey("hcase.id"), nullable=False, index=True),
        sa.Column("findings", sa.Text, nullable=False),
        sa.Column("actions", JSONB, nullable=False, server_default="[]"),
        sa.Column("author_label", sa.String(80), nullable=False),
        _ts("created_at", nullable=False),
    )


def downgrade() -> None:
    op.drop_table("supervision_note")
    op.drop_table("key_case_minute")
    op.drop_table("key_case")
    op.drop_table("supervision_order")
    op.drop_index("ix_referral_created_at", table_name="referral")
    op.execute("DROP TRIGGER IF EXISTS case_event_referral_measure ON case_event")
    op.execute("DROP FUNCTION IF EXISTS referral_measure_from_event()")
    op.drop_table("referral_measure")
