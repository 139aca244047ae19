"""The tables. Designed up front for intake, workflow, dispatch, channels and audit.

Conventions: timestamps are `timestamptz`; codes (departments, categories, jurisdictions,
states) are short English identifiers, the Chinese labels live in config; personal data
stays in `report` rows, so the case and referral rows can be shown widely.
"""

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlmodel import Field, SQLModel

from db.columns import case_ref, partial_index, sealed_phone, text_list
from db.columns import phone_index as _phone_index
from db.columns import time_id as _time_id
from db.columns import timestamp as _ts
from db.crypto import EncryptedJSON, EncryptedText, indexed, name_index, phone_index


def _json(default: Any = None) -> Any:
    return Field(
        default_factory=(lambda: default) if default is not None else None,
        sa_column=sa.Column(JSONB, nullable=default is None),
    )


class Jurisdiction(SQLModel, table=True):
    """A node of the four-level network: 1 city, 2 district, 3 street/township, 4 community."""

    code: str = Field(primary_key=True, max_length=32)
    name: str = Field(max_length=100)
    level: int
    parent_code: str | None = Field(default=None, foreign_key="jurisdiction.code", index=True)
    # Materialized path of codes joined by '/', ending with '/': subtree = path LIKE 'x/%'.
    path: str = Field(max_length=400, index=True)


class Department(SQLModel, table=True):
    code: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=60)


class Category(SQLModel, table=True):
    code: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=60)
    lead_department: str = Field(foreign_key="department.code")
    cooperating: list[str] = text_list()


class Office(SQLModel, table=True):
    """A department's office at one jurisdiction (the unit a referral is sent to)."""

    __table_args__ = (sa.UniqueConstraint("department_code", "jurisdiction_code"),)

    id: int | None = Field(default=None, primary_key=True)
    department_code: str = Field(foreign_key="department.code")
    jurisdiction_code: str = Field(foreign_key="jurisdiction.code", index=True)
    name: str = Field(max_length=120)


class AppUser(SQLModel, table=True):
    __tablename__ = "app_user"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=60, unique=True)
    password_hash: str
    role: str = Field(max_length=20)
    department_code: str | None = Field(default=None, foreign_key="department.code")
    jurisdiction_code: str | None = Field(default=None, foreign_key="jurisdiction.code")
    # Where the service texts its overdue notices; nothing looks a user up by it.
    phone: str | None = sealed_phone()
    active: bool = Field(default=True)
    # Bumped on password change or logout-everywhere: outstanding tokens stop working.
    token_version: int = Field(default=0)
    created_at: datetime | None = _ts()
    # The TOTP seed of an optional second factor (dispatch.staff.totp), encrypted at rest.
    totp_secret: str | None = Field(default=None, sa_column=sa.Column(EncryptedText))
    # The last successful sign-in (token endpoint or console), for the accounts list.
    last_login_at: datetime | None = _ts(nullable=True)


class Case(SQLModel, table=True):
    __tablename__ = "hcase"

    id: int | None = _time_id()
    state: str = Field(max_length=20, index=True)
    risk_level: str | None = Field(default=None, max_length=10)
    categories: list[str] = text_list()
    emergency: bool = Field(default=False)
    mandatory: bool = Field(default=False)
    jurisdiction_code: str | None = Field(default=None, foreign_key="jurisdiction.code")
    merged_into_id: int | None = case_ref(default=None)
    assessment: dict | None = _json()
    # From the judgement of the text (workflows.triage): why the report is not a case at all
    # (consultation, not_minor, noise; never for an emergency), and the risk it predicts,
    # which orders the operators' incoming list before anyone has assessed the case.
    not_a_case: str | None = Field(default=None, max_length=20)
    predicted_risk: str | None = Field(default=None, max_length=10)
    # Matching after intake (dispatch.children): the case this one very likely repeats, for
    # the operators' incoming list.
    likely_duplicate_of: int | None = case_ref(default=None)
    likely_duplicate_score: float | None = None
    # The child's age in years and sex as the case's first report gives them (corrections
    # included), plain: the periodic report counts by age band and sex in SQL, opening no
    # sealed child (migration 0036; workflows.supervision.child_figures). Never the name.
    child_age: int | None = Field(default=None, sa_column=sa.Column(sa.SmallInteger))
    child_sex: str | None = Field(default=None, max_length=10)
    created_at: datetime | None = _ts(index=True)
    updated_at: datetime | None = _ts()
    # Retention (dispatch.retention, migration 0029): a legal hold keeps the case out of the
    # job while it lasts; `anonymised_at` is when the job blanked its personal data.
    legal_hold_at: datetime | None = _ts(nullable=True)
    legal_hold_by: str | None = Field(default=None, max_length=80)
    legal_hold_reason: str | None = None
    anonymised_at: datetime | None = _ts(nullable=True)


@indexed(
    phone_index=lambda row: phone_index(row.reporter_phone),
    name_index=lambda report: name_index((report.child or {}).get("name")),
)
class Report(SQLModel, table=True):
    """One intake from one channel. Holds the personal data; the case points at the facts."""

    __table_args__ = (
        sa.UniqueConstraint("channel", "external_id"),
        sa.Index("ix_report_recent_fingerprint", "fingerprint", "created_at"),
        sa.Index("ix_report_recent_content", "content_fingerprint", "created_at"),
        sa.Index("ix_report_match_keys", "match_keys", postgresql_using="gin"),
        sa.Index("ix_report_name_index", "name_index", postgresql_using="gin"),
        # An unnamed child's place and time (migration 0034, dispatch.children.matching_service).
        sa.Index("ix_report_place_time", "jurisdiction_code", "created_at"),
    )

    id: int | None = _time_id()
    channel: str = Field(max_length=20)
    external_id: str = Field(max_length=120)
    receipt_code: str = Field(max_length=16, unique=True)
    case_id: int = case_ref(index=True)
    # Who reported (name, unit, role, phone): ciphertext at rest, for the center and police.
    reporter: dict | None = Field(default=None, sa_column=sa.Column(EncryptedJSON))
    # Ciphertext; looked up (the caller profile, search, matching) by its blind index.
    reporter_phone: str | None = sealed_phone()
    phone_index: str | None = _phone_index(index=True)
    situations: list[int] = Field(
        default_factory=list,
        sa_column=sa.Column(ARRAY(sa.SmallInteger), nullable=False, server_default="{}"),
    )
    categories: list[str] = text_list()
    # What the reporter said of the child (name, age, gender, address): ciphertext at rest;
    # `name_index` holds keyed hashes of the name's character pairs, for search by name.
    child: dict | None = Field(default=None, sa_column=sa.Column(EncryptedJSON))
    name_index: list[str] = text_list()
    jurisdiction_code: str | None = Field(default=None, foreign_key="jurisdiction.code")
    address: str | None = None
    description: str
    in_danger_now: bool = Field(default=False)
    # Hash of the submission's content: a double click within seconds finds its twin.
    fingerprint: str | None = Field(default=None, max_length=64)
    # Hash of the description alone (workflows.cases.intake.content_fingerprint): a burst of
    # copies from a script finds its first.
    content_fingerprint: str | None = Field(default=None, max_length=64)
    # Why the report was joined to its case and not routed ("burst": it repeats a report
    # received shortly before); an operator looks at it. None for a routed report.
    held: str | None = Field(default=None, max_length=20)
    # The partner's order, the SMS or call parameters as received: ciphertext at rest.
    raw: dict | None = Field(default=None, sa_column=sa.Column(EncryptedJSON))
    # The judgement of the report's text (workflows.triage.Judgement.to_dict(): labels,
    # scores, evidence, engine version); for an SMS report, of the whole thread so far.
    judgement: dict | None = _json()
    # Blocking keys of the child and place it names (workflows.matching.keys), GIN-indexed:
    # how `GET /cases/{id}/similar` finds candidates without scanning.
    match_keys: list[str] = text_list()
    created_at: datetime | None = _ts(index=True)


class CaseEvent(SQLModel, table=True):
    """The timeline: who did what to a case, when, and why."""

    __tablename__ = "case_event"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = case_ref(index=True)
    event: str = Field(max_length=40)
    from_state: str | None = Field(default=None, max_length=20)
    to_state: str | None = Field(default=None, max_length=20)
    actor_id: int | None = Field(default=None, foreign_key="app_user.id")
    actor: str = Field(max_length=80)
    reason: str | None = None
    data: dict | None = _json()
    created_at: datetime | None = _ts()


class Referral(SQLModel, table=True):
    """One department's share of a case, with its own lifecycle and deadlines."""

    __table_args__ = (
        # The escalation sweep reads only what is due: an index, not a scan.
        partial_index("ix_referral_next_check", "next_check_at", where="next_check_at IS NOT NULL"),
        # One live referral per department per case; returned, cancelled and withdrawn
        # ones stay as history.
        partial_index(
            "ix_referral_one_active_per_department",
            "case_id",
            "department_code",
            unique=True,
            where="status NOT IN ('returned', 'cancelled', 'withdrawn')",
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = case_ref(index=True)
    department_code: str = Field(foreign_key="department.code")
    office_id: int | None = Field(default=None, foreign_key="office.id")
    # The office's jurisdiction: what a liaison's scope is checked against.
    jurisdiction_code: str | None = Field(default=None, foreign_key="jurisdiction.code")
    role: str = Field(max_length=20)  # lead, cooperating, police_copy
    status: str = Field(max_length=20, index=True)
    claimed_by: int | None = Field(default=None, foreign_key="app_user.id")
    claimed_at: datetime | None = _ts(nullable=True)
    last_activity_at: datetime | None = _ts(nullable=True)
    claim_due_at: datetime | None = _ts(nullable=True)
    action_due_at: datetime | None = _ts(nullable=True)
    # A help plan's time to deliver (casework.toml `due`, e.g. "5wd") from its adoption:
    # the third deadline phase, after claim and first action (migration 0022).
    plan_window: str | None = Field(default=None, max_length=10)
    plan_started_at: datetime | None = _ts(nullable=True)
    plan_due_at: datetime | None = _ts(nullable=True)
    # Set by the worker when the referral has reached its office's queue.
    delivered_at: datetime | None = _ts(nullable=True)
    escalation: int = Field(default=0)  # 0 none, 1 warned, 2 escalated, 3 flagged
    # When the sweep must look at this referral again; NULL once nothing is pending.
    next_check_at: datetime | None = _ts(nullable=True)
    outcome: str | None = None
    return_reason: str | None = None
    # Why the center withdrew it (a correction made the department unneeded, or moved it).
    withdraw_reason: str | None = None
    created_at: datetime | None = _ts()
    updated_at: datetime | None = _ts()


class Outbox(SQLModel, table=True):
    """A unit of work, written in the same transaction as the change that caused it.

    PostgreSQL owns it until it is done: `relayed_at` is when it was last enqueued into RQ,
    `done_at` is set by its job in the transaction of its effect. The scheduler's reconciler
    enqueues again (attempt `enqueues` + 1) whatever is enqueued and not done in time.
    """

    __table_args__ = (
        partial_index("ix_outbox_pending", "available_at", "id", where="relayed_at IS NULL"),
        partial_index(
            "ix_outbox_undone",
            "relayed_at",
            "id",
            where="done_at IS NULL AND relayed_at IS NOT NULL",
        ),
        partial_index("ix_outbox_not_done", "created_at", where="done_at IS NULL"),
        partial_index("ix_outbox_done", "done_at", where="done_at IS NOT NULL"),
    )

    id: int | None = Field(default=None, primary_key=True)
    topic: str = Field(max_length=40)
    payload: dict = _json({})
    created_at: datetime | None = _ts()
    available_at: datetime | None = _ts()
    relayed_at: datetime | None = _ts(nullable=True)  # enqueued at (the last time)
    done_at: datetime | None = _ts(nullable=True)
    enqueues: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    attempts: int = Field(default=0)
    last_error: str | None = None


class AuditLog(SQLModel, table=True):
    """Append-only: a trigger refuses UPDATE and DELETE."""

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime | None = _ts(index=True)
    actor_id: int | None = None
    actor: str = Field(max_length=80)
    action: str = Field(max_length=40)
    object_type: str = Field(max_length=20)
    object_id: str | None = Field(default=None, max_length=40)
    ip: str | None = Field(default=None, max_length=64)
    detail: dict | None = _json()


class Visit(SQLModel, table=True):
    """A follow-up visit (回访): planned at the risk level's interval, then recorded."""

    __table_args__ = (
        partial_index(
            "ix_visit_pending_due", "due_at", where="visited_at IS NULL AND escalated_at IS NULL"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = case_ref(index=True)
    due_at: datetime | None = _ts(nullable=True)
    visited_at: datetime | None = _ts(nullable=True)
    visitor_id: int | None = Field(default=None, foreign_key="app_user.id")
    findings: str | None = None
    risk_before: str | None = Field(default=None, max_length=10)
    risk_after: str | None = Field(default=None, max_length=10)
    # When an overdue planned visit was escalated, so it is escalated once.
    escalated_at: datetime | None = _ts(nullable=True)
    # When its holders were reminded that it is coming (dispatch.casework.owners), once.
    reminded_at: datetime | None = _ts(nullable=True)
    created_at: datetime | None = _ts()


class Notification(SQLModel, table=True):
    """A message to staff (a new referral, a deadline warning, 督办): sent by SMS or to the log."""

    id: int | None = Field(default=None, primary_key=True)
    case_id: int | None = case_ref(default=None, index=True)
    referral_id: int | None = Field(default=None, foreign_key="referral.id")
    user_id: int | None = Field(default=None, foreign_key="app_user.id")
    kind: str = Field(max_length=30)
    text: str
    status: str = Field(default="pending", max_length=20)  # pending, sent, logged, failed
    channel: str | None = Field(default=None, max_length=20)
    attempts: int = Field(default=0)
    error: str | None = None
    created_at: datetime | None = _ts()
    sent_at: datetime | None = _ts(nullable=True)


from db.casework import *  # noqa: E402,F401,F403  (tasks, owners, plans, casework records)
from db.partners import *  # noqa: E402,F401,F403  (the partner forwards' tables)
from db.stats import *  # noqa: E402,F401,F403  (the statistics page's tally)
from db.supervision import *  # noqa: E402,F401,F403  (scorecard measures, 督查, reports)
from db.telephony import *  # noqa: E402,F401,F403  (the Twilio channels' tables)
from db.triage import *  # noqa: E402,F401,F403  (corrections as labelled examples)
