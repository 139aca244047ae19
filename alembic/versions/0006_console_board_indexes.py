"""Console indexes: the deadline board reads open referrals by their running deadline, and
the center's routing list reads unrouted and returned shares in case order

Revision ID: 0006
Revises: 0005

The expressions and predicates are spelt exactly as `dispatch.console.board` and
`dispatch.console.worklist` write them (constants inline, not parameters), so the planner
can match them.
"""

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"

RUNNING_DUE = "(CASE WHEN status = 'queued' THEN claim_due_at ELSE action_due_at END)"
OPEN = "status IN ('queued', 'claimed')"


def upgrade() -> None:
    # Overdue and due soon: a range of the running deadline, most urgent first.
    op.execute(f"CREATE INDEX ix_referral_running_due ON referral ({RUNNING_DUE}) WHERE {OPEN}")
    # Warned, escalated and flagged (督办, 挂牌督办): few, whatever their deadline.
    op.execute(
        f"CREATE INDEX ix_referral_running_escalated ON referral (escalation, {RUNNING_DUE})"
        f" WHERE {OPEN} AND escalation > 0"
    )
    op.execute(
        "CREATE INDEX ix_referral_to_route ON referral (case_id, department_code, id DESC)"
        " WHERE status IN ('unrouted', 'returned')"
    )


def downgrade() -> None:
    op.execute("DROP INDEX ix_referral_to_route")
    op.execute("DROP INDEX ix_referral_running_escalated")
    op.execute("DROP INDEX ix_referral_running_due")
