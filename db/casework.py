"""Tables of casework: tasks with owners and deadlines, and who is responsible for a case.

A task is the generic unit of "someone must do this by then" that is not a referral: a
conference decision, a supervisor's required action, a caseworker's own reminder. It escalates
like a referral (warned, 督办 at its due date, 挂牌督办 at twice its window).
"""

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from db.columns import timestamp as _ts

__all__ = ["CaseAssignment", "Task"]


class Task(SQLModel, table=True):
    __table_args__ = (
        sa.Index(
            "ix_task_next_check",
            "next_check_at",
            postgresql_where=sa.text("next_check_at IS NOT NULL"),
        ),
        # A source's item makes at most one task (a retried decision is not two tasks).
        sa.UniqueConstraint("source", "source_id", "department_code"),
    )

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="hcase.id", index=True)
    # What made it: conference_decision, supervision_note, manual, ... and that row's id.
    source: str = Field(max_length=30)
    source_id: str = Field(max_length=40)
    title: str = Field(max_length=200)
    detail: str | None = None
    department_code: str = Field(foreign_key="department.code")
    # The office's jurisdiction (the department's nearest office to the case): the scope a
    # department's staff are checked against, as for a referral.
    jurisdiction_code: str | None = Field(default=None, foreign_key="jurisdiction.code")
    owner_user_id: int | None = Field(default=None, foreign_key="app_user.id", index=True)
    status: str = Field(default="open", max_length=20, index=True)  # open, done, cancelled
    warn_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
    due_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
    flag_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
    escalation: int = Field(default=0)  # 0 none, 1 warned, 2 escalated, 3 flagged
    next_check_at: datetime | None = _ts(nullable=True)
    outcome: str | None = None
    cancel_reason: str | None = None
    created_by: str = Field(max_length=80)
    done_by: int | None = Field(default=None, foreign_key="app_user.id")
    done_at: datetime | None = _ts(nullable=True)
    created_at: datetime | None = _ts()
    updated_at: datetime | None = _ts()


class CaseAssignment(SQLModel, table=True):
    """The case's responsible caseworker (责任社工) and its pairing person (结对帮扶人).

    One row per case; the history of who held it, and why it changed, is on the timeline.
    """

    __tablename__ = "case_assignment"

    case_id: int = Field(foreign_key="hcase.id", primary_key=True)
    owner_id: int | None = Field(default=None, foreign_key="app_user.id", index=True)
    pairing_id: int | None = Field(default=None, foreign_key="app_user.id", index=True)
    updated_at: datetime | None = _ts()

