"""Tables of casework: tasks with owners and deadlines, who is responsible for a case, the
help plan's versions and items, and call wrap-ups.

A task is the generic unit of "someone must do this by then" that is not a referral: a
conference decision, a supervisor's required action, a caseworker's own reminder. It escalates
like a referral (warned, 督办 at its due date, 挂牌督办 at twice its window).
"""

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from db.columns import case_ref, partial_index, report_ref, text_list
from db.columns import timestamp as _ts

__all__ = [
    "CallWrapup",
    "CaseAssessment",
    "CaseAssignment",
    "CasePlan",
    "CaseMeeting",
    "CasePlanItem",
    "GuardianIntervention",
    "Placement",
    "ReportNoContact",
    "Task",
]


class Task(SQLModel, table=True):
    __table_args__ = (
        partial_index("ix_task_next_check", "next_check_at", where="next_check_at IS NOT NULL"),
        # A source's item makes at most one task (a retried decision is not two tasks).
        sa.UniqueConstraint("source", "source_id", "department_code"),
    )

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = case_ref(index=True)
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

    case_id: int = case_ref(primary_key=True)
    owner_id: int | None = Field(default=None, foreign_key="app_user.id", index=True)
    pairing_id: int | None = Field(default=None, foreign_key="app_user.id", index=True)
    updated_at: datetime | None = _ts()


class CasePlan(SQLModel, table=True):
    """One version of a case's help plan (一案一策): waiting for approval, adopted, or
    superseded by a later version (kept, with the reason for the change)."""

    __tablename__ = "case_plan"
    __table_args__ = (sa.UniqueConstraint("case_id", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = case_ref(index=True)
    version: int
    status: str = Field(max_length=20)  # pending_approval, adopted, superseded
    needs: list[str] = text_list()
    reason: str | None = None
    created_by: int = Field(foreign_key="app_user.id")
    approved_by: int | None = Field(default=None, foreign_key="app_user.id")
    adopted_at: datetime | None = _ts(nullable=True)
    created_at: datetime | None = _ts()


class CasePlanItem(SQLModel, table=True):
    """A need of a plan, its lead department, and the referral that carries it."""

    __tablename__ = "case_plan_item"

    id: int | None = Field(default=None, primary_key=True)
    plan_id: int = Field(foreign_key="case_plan.id", index=True)
    need: str = Field(max_length=40)
    department_code: str = Field(foreign_key="department.code")
    cooperating: list[str] = text_list()
    referral_id: int | None = Field(default=None, foreign_key="referral.id")
    due_at: datetime | None = _ts(nullable=True)


class CallWrapup(SQLModel, table=True):
    """What an answered call was (report, consultation, help, nuisance, silent, wrong
    number), recorded by the operator who closed it."""

    __tablename__ = "call_wrapup"

    call_id: int = Field(foreign_key="voice_call.id", primary_key=True)
    type: str = Field(max_length=20)
    note: str | None = None
    case_id: int | None = case_ref(default=None)
    operator_id: int = Field(foreign_key="app_user.id")
    created_at: datetime | None = _ts()


class CaseAssessment(SQLModel, table=True):
    """One written assessment of a case to the deployment's form, versioned per reassessment:
    the answers, the level they proposed, the level set (and why, when it differs)."""

    __tablename__ = "case_assessment"
    __table_args__ = (sa.UniqueConstraint("case_id", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = case_ref(index=True)
    version: int
    answers: dict = Field(default_factory=dict, sa_column=sa.Column(JSONB, nullable=False))
    score: int
    proposed_level: str = Field(max_length=10)
    risk_level: str = Field(max_length=10)
    override_reason: str | None = None
    summary: str
    needs: list[str] = text_list()
    created_by: int = Field(foreign_key="app_user.id")
    created_at: datetime | None = _ts()


class Placement(SQLModel, table=True):
    """Who cares for the child and under what arrangement (临时监护、长期监护、寄养、机构), from
    when to when, and the body responsible for it."""

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = case_ref(index=True)
    kind: str = Field(max_length=30)
    body: str = Field(max_length=200)
    department_code: str | None = Field(default=None, foreign_key="department.code")
    start_on: date
    end_on: date | None = None
    note: str | None = None
    created_by: int = Field(foreign_key="app_user.id")
    created_at: datetime | None = _ts()


class GuardianIntervention(SQLModel, table=True):
    """One step against a guardian who fails or harms the child, with the department that
    took it, the date and the document (文书) that records it."""

    __tablename__ = "guardian_intervention"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = case_ref(index=True)
    step: str = Field(max_length=30)
    department_code: str = Field(foreign_key="department.code")
    acted_on: date
    document: str | None = Field(default=None, max_length=200)
    note: str | None = None
    skip_reason: str | None = None
    created_by: int = Field(foreign_key="app_user.id")
    created_at: datetime | None = _ts()


class CaseMeeting(SQLModel, table=True):
    """A case conference called ahead (个案会商): when, where, which departments are invited;
    once held, who attended and the conference record (its decisions became tasks)."""

    __tablename__ = "case_meeting"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = case_ref(index=True)
    scheduled_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
    place: str | None = Field(default=None, max_length=200)
    agenda: str
    departments: list[str] = text_list()
    attended: list[str] = text_list()
    status: str = Field(default="scheduled", max_length=20)  # scheduled, held
    conference_id: int | None = Field(default=None, foreign_key="case_conference.id")
    created_by: int = Field(foreign_key="app_user.id")
    created_at: datetime | None = _ts()


class ReportNoContact(SQLModel, table=True):
    """A reporter who must not be contacted: they asked, they may be the child at risk, or
    their phone may be shared with the person causing the harm. Marked by the reporter on
    the form or by the operator; the receipt code still works."""

    __tablename__ = "report_no_contact"

    report_id: int = report_ref(primary_key=True)
    reason: str = Field(max_length=20)  # asked, may_be_child, shared_phone
    marked_by: str = Field(max_length=80)
    created_at: datetime | None = _ts()
