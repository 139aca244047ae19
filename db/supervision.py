"""Tables of supervision: what the scorecard measures, 督查 orders, 重点个案, 督导 notes and
the periodic reports districts send up.

`ReferralMeasure` is written by a database trigger on the timeline (migration 0018), never
by the application: whoever records a claim, a first action or an escalation feeds it.
"""

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlmodel import Field, SQLModel

from db.columns import case_ref, timestamp

__all__ = [
    "KeyCase",
    "KeyCaseMinute",
    "PeriodicReport",
    "ReferralMeasure",
    "SupervisionNote",
    "SupervisionOrder",
    "TALLY_COUNTS",
    "scorecard_block",
    "scorecard_block_tally",
    "scorecard_day",
    "scorecard_minutes",
    "scorecard_tally",
]


class ReferralMeasure(SQLModel, table=True):
    __tablename__ = "referral_measure"

    referral_id: int = Field(primary_key=True, foreign_key="referral.id")
    first_claimed_at: datetime | None = timestamp(nullable=True)
    # Judged when it happened, against the deadline then in force.
    claimed_on_time: bool | None = None
    first_acted_at: datetime | None = timestamp(nullable=True)
    acted_on_time: bool | None = None
    escalated_at: datetime | None = timestamp(nullable=True)  # first 督办
    escalations: int = Field(default=0)
    flagged_at: datetime | None = timestamp(nullable=True)  # first automatic 挂牌督办


class SupervisionOrder(SQLModel, table=True):
    """挂牌督办 by hand: a case or one referral, a reason and a rectification deadline."""

    __tablename__ = "supervision_order"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = case_ref()
    referral_id: int | None = Field(default=None, foreign_key="referral.id")
    department_code: str = Field(foreign_key="department.code")
    office_id: int | None = Field(default=None, foreign_key="office.id")
    # The office's jurisdiction (else the case's): what a department's scope is checked on.
    jurisdiction_code: str | None = Field(default=None, foreign_key="jurisdiction.code")
    status: str = Field(max_length=20)  # open, answered, lifted
    reason: str
    due_at: datetime = timestamp()
    opened_by: int | None = Field(default=None, foreign_key="app_user.id")
    opened_by_label: str = Field(max_length=80)
    opened_at: datetime | None = timestamp()
    answer: str | None = None
    answered_by_label: str | None = Field(default=None, max_length=80)
    answered_at: datetime | None = timestamp(nullable=True)
    # The supervisor's word when sending an answer back, or when lifting.
    comment: str | None = None
    lifted_by_label: str | None = Field(default=None, max_length=80)
    lifted_at: datetime | None = timestamp(nullable=True)
    escalation: int = Field(default=0)  # 0, 1 overdue (督办), 2 twice the window (挂牌)
    next_check_at: datetime | None = timestamp(nullable=True)
    created_at: datetime | None = timestamp()


class KeyCase(SQLModel, table=True):
    """A 重点个案 flag: on the leadership meeting's list until cleared."""

    __tablename__ = "key_case"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = case_ref()
    reason: str
    flagged_by_label: str = Field(max_length=80)
    flagged_at: datetime | None = timestamp()
    cleared_by_label: str | None = Field(default=None, max_length=80)
    clear_reason: str | None = None
    cleared_at: datetime | None = timestamp(nullable=True)


class KeyCaseMinute(SQLModel, table=True):
    """What a leadership meeting said and decided about one key case."""

    __tablename__ = "key_case_minute"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = case_ref()
    meeting_on: date
    meeting: str = Field(max_length=120)
    minutes: str
    decisions: str
    recorded_by_label: str = Field(max_length=80)
    created_at: datetime | None = timestamp()


class SupervisionNote(SQLModel, table=True):
    """个案督导: a supervisor's review of a case; each required action became a task."""

    __tablename__ = "supervision_note"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = case_ref()
    findings: str
    # [{"text", "department", "due_at", "order_id" | "task_id"}]
    actions: list = Field(
        default_factory=list,
        sa_column=sa.Column(JSONB, nullable=False, server_default="[]"),
    )
    author_label: str = Field(max_length=80)
    created_at: datetime | None = timestamp()


class PeriodicReport(SQLModel, table=True):
    """A district's report for one period (月报/季报/半年报/年报), from draft to the city's word."""

    __tablename__ = "periodic_report"
    __table_args__ = (sa.UniqueConstraint("district_code", "period"),)

    id: int | None = Field(default=None, primary_key=True)
    district_code: str = Field(foreign_key="jurisdiction.code")
    period: str = Field(max_length=10)  # 2026-07, 2026Q3, 2026H1, 2026
    status: str = Field(max_length=20)  # draft, reviewed, submitted, acknowledged, returned
    # The figures as they stood when the report was reviewed: what the city receives.
    figures: dict | None = Field(default=None, sa_column=sa.Column(JSONB, nullable=True))
    narrative: str = ""
    # [{"title", "text"}]: anonymised by the district (no names, phones or addresses).
    typical_cases: list = Field(
        default_factory=list,
        sa_column=sa.Column(JSONB, nullable=False, server_default="[]"),
    )
    comment: str | None = None  # the city's, when it returns the report
    history: list = Field(
        default_factory=list,
        sa_column=sa.Column(JSONB, nullable=False, server_default="[]"),
    )
    updated_by_label: str = Field(max_length=80)
    submitted_at: datetime | None = timestamp(nullable=True)
    created_at: datetime | None = timestamp()
    updated_at: datetime | None = timestamp()


# The scorecard's tally of closed UTC days (migration 0027), written only by
# `dispatch.supervision.tally`: Core tables, rows are never loaded as objects.
TALLY_COUNTS = (
    "received",
    "claimed",
    "claimed_on_time",
    "acted_on_time",
    "escalated",
    "auto_flagged",
    "returned",
)

scorecard_day = sa.Table(
    "scorecard_day",
    SQLModel.metadata,
    sa.Column("day", sa.Date, primary_key=True),
    # When the day was counted or last found untouched since (dispatch.supervision.tally).
    sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
)
scorecard_tally = sa.Table(
    "scorecard_tally",
    SQLModel.metadata,
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("department_code", sa.String, nullable=False),
    sa.Column("office_id", sa.Integer, nullable=False),
    sa.Column("jurisdiction_code", sa.String),  # the referral's (its office's)
    sa.Column("case_jurisdiction", sa.String),  # the case's
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("return_reason", sa.Text),
    *(sa.Column(name, sa.Integer, nullable=False) for name in TALLY_COUNTS),
    sa.Column("claim_minutes", ARRAY(sa.Integer), nullable=False),
    sa.Column("act_minutes", ARRAY(sa.Integer), nullable=False),
)
# A local month's whole UTC days, all counted (migration 0033, `dispatch.supervision.blocks`):
# which blocks are built, their counts, and their minutes per bucket, counted and exact.
scorecard_block = sa.Table(
    "scorecard_block",
    SQLModel.metadata,
    sa.Column("first_day", sa.Date, primary_key=True),
    sa.Column("after_day", sa.Date, nullable=False),
    sa.Column("built_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("bounds", sa.Text, nullable=False),  # the buckets it was built with
)
scorecard_block_tally = sa.Table(
    "scorecard_block_tally",
    SQLModel.metadata,
    sa.Column(
        "block",
        sa.Date,
        sa.ForeignKey("scorecard_block.first_day", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    *(
        sa.Column(c.name, c.type, nullable=c.nullable)
        for c in scorecard_tally.c
        if c.name not in ("day", "claim_minutes", "act_minutes")
    ),
)
scorecard_minutes = sa.Table(
    "scorecard_minutes",
    SQLModel.metadata,
    sa.Column(
        "block",
        sa.Date,
        sa.ForeignKey("scorecard_block.first_day", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("department_code", sa.String, nullable=False),
    sa.Column("office_id", sa.Integer, nullable=False),
    sa.Column("jurisdiction_code", sa.String),
    sa.Column("case_jurisdiction", sa.String),
    sa.Column("what", sa.String(6), nullable=False),  # "claim" or "action"
    sa.Column("bucket", sa.SmallInteger, nullable=False),
    sa.Column("n", sa.Integer, nullable=False),
    sa.Column("minutes", ARRAY(sa.Integer), nullable=False),  # the exact ones, ascending
    sa.Column("counts", ARRAY(sa.Integer), nullable=False),  # how many of each
    sa.Index("ix_scorecard_minutes_block", "block", "what", "bucket"),
)
