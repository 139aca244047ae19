"""Casework's operations, for the JSON API and the console pages alike: owners and pairing,
the help plan, the written assessment, guardianship, conferences, closing, the reporter's
no-contact mark, call wrap-ups and the area staff's concerns.

Each takes the session and the client's address keyword-only (`channels.web.in_transaction`
passes them), loads what it acts on in the caller's scope (404 outside it), calls the rule
module of its concern (`owners`, `plans`, …), audits, and returns a typed result. Where a
body's fields are the rule's parameters by name (a placement, an intervention, an
assessment, a conference), the body is passed as they are: a field added to one is a
parameter the other must take. Refusals
are `workflows.errors` domain errors; the edge answers them in the contract's shape and the
console as a notice, so a page is refused exactly what the API refuses the same person.
"""

from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal, TypedDict, TypeVar, Unpack

from pydantic import AliasChoices, BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from channels.webform import ReportCreated
from db import clock
from db.models import Report
from db.telephony import VoiceCall
from dispatch.cases.access import load_case
from dispatch.cases.service import Actor
from dispatch.casework import (
    assessments,
    closing,
    concerns,
    guardianship,
    meetings,
    owners,
    plans,
    reporter_notice,
    wrapups,
)
from dispatch.common.lookup import scalar_or_404
from dispatch.common.views import from_row
from dispatch.staff.audit import audit
from dispatch.staff.auth import Principal
from dispatch.tasks.service import TaskOut, task_out
from dispatch.telephony.scope import via_case
from workflows.cases import receipts
from workflows.cases.intake import ChildIn
from workflows.errors import Invalid, NotFound
from workflows.reference import category_labels

Text = Annotated[str | None, Field(default=None, max_length=2000)]


# Owners and pairing, "my cases".


class AssignIn(BaseModel):
    username: str = Field(max_length=60)
    reason: Text = None


class HoldersOut(BaseModel):
    case_id: int
    owner: str | None
    pairing: str | None


async def assign_holder(
    *,
    session: AsyncSession,
    principal: Principal,
    ip: str | None,
    case_id: int,
    kind: owners.Kind,
    body: AssignIn,
) -> HoldersOut:
    """The case's owner or pairing person; a change needs a reason."""
    case = await load_case(session, principal, case_id, lock=True)
    await owners.assign(
        session=session,
        case=case,
        kind=kind,
        username=body.username,
        reason=body.reason,
        principal=principal,
        now=clock.now(),
    )
    audit(session, principal, f"case.{kind}", "case", case.id,
          detail={"user": body.username}, ip=ip)
    held = (await owners.holders_of(session, [case.id]))[case.id]
    return HoldersOut(case_id=case.id, owner=held.owner, pairing=held.pairing)


class MyCaseOut(BaseModel):
    id: int
    state: str
    risk_level: str | None
    jurisdiction: str | None
    held_as: Literal["owner", "pairing"]
    next_visit_due: datetime | None
    visit_overdue: bool
    updated_at: datetime


class MyCaseList(BaseModel):
    items: list[MyCaseOut]


async def my_cases(
    *,
    session: AsyncSession,
    principal: Principal,
    ip: str | None,
    limit: int = 50,
    include_closed: bool = False,
) -> MyCaseList:
    """The cases the caller holds as owner or pairing person, the next visit due first."""
    now = clock.now()
    rows = await owners.my_cases(
        session=session, principal=principal, limit=limit, include_closed=include_closed
    )
    audit(session, principal, "case.list", "case", None,
          detail={"count": len(rows), "list": "mine"}, ip=ip)
    return MyCaseList(
        items=[
            MyCaseOut(
                id=r.case.id,
                state=r.case.state,
                risk_level=r.case.risk_level,
                jurisdiction=r.case.jurisdiction_code,
                held_as=r.kind,
                next_visit_due=r.next_visit_due,
                visit_overdue=r.next_visit_due is not None and r.next_visit_due < now,
                updated_at=r.case.updated_at,
            )
            for r in rows
        ]
    )


# The help plan (一案一策).


class PlanIn(BaseModel):
    needs: list[Annotated[str, Field(max_length=40)]] = Field(max_length=30)
    reason: Text = None


class PlanItemOut(BaseModel):
    need: str
    department: str
    cooperating: list[str]
    referral_id: int | None
    referral_status: str | None
    due_at: datetime | None


class PlanOut(BaseModel):
    plan_id: int
    version: int
    status: str
    pending_approval: bool
    needs: list[str]
    reason: str | None
    items: list[PlanItemOut]


def plan_out(view: plans.PlanView) -> PlanOut:
    return from_row(
        PlanOut,
        view.plan,
        plan_id=view.plan.id,
        pending_approval=view.pending_approval,
        items=[
            from_row(
                PlanItemOut,
                i,
                department=i.department_code,
                referral_status=view.referral_status.get(i.referral_id) if i.referral_id else None,
            )
            for i in view.items
        ],
    )


async def propose_plan(
    *, session: AsyncSession, principal: Principal, ip: str | None, case_id: int, body: PlanIn
) -> PlanOut:
    """Needs → lead departments' referrals (after approval for red and orange)."""
    case = await load_case(session, principal, case_id, lock=True)
    view = await plans.propose(
        session=session,
        case=case,
        needs=body.needs,
        reason=body.reason,
        principal=principal,
        now=clock.now(),
    )
    audit(session, principal, "case.plan", "case", case.id,
          detail={"plan_id": view.plan.id, "status": view.plan.status}, ip=ip)
    return plan_out(view)


async def approve_plan(
    *, session: AsyncSession, principal: Principal, ip: str | None, case_id: int
) -> PlanOut:
    """A supervisor adopts the waiting plan; its referrals go out now."""
    case = await load_case(session, principal, case_id, lock=True)
    view = await plans.approve(
        session=session, case=case, principal=principal, now=clock.now()
    )
    audit(session, principal, "case.plan_approve", "case", case.id,
          detail={"plan_id": view.plan.id}, ip=ip)
    return plan_out(view)


async def read_plan(
    *, session: AsyncSession, principal: Principal, ip: str | None, case_id: int
) -> PlanOut:
    """The case's current plan (the waiting one, else the adopted one), each item's state."""
    case = await load_case(session, principal, case_id)
    view = await plans.current_plan(session, case.id)
    audit(session, principal, "case.plan_read", "case", case.id, ip=ip)
    if view is None:
        raise NotFound("plan_not_found", "该案件尚无帮扶计划")
    return plan_out(view)


# Call wrap-ups.


class WrapupIn(BaseModel):
    type: Literal["report", "consultation", "help", "nuisance", "silent", "wrong_number"]
    note: Text = None


class WrapupOut(BaseModel):
    call_id: int
    call_sid: str
    type: str
    note: str | None
    case_id: int | None
    created_at: datetime


async def wrap_up_call(
    *, session: AsyncSession, principal: Principal, ip: str | None, call_sid: str, body: WrapupIn
) -> WrapupOut:
    """Close an answered call with what it was (the call's sid, or its number)."""
    stmt = select(VoiceCall).where(
        wrapups.call_key(call_sid), via_case(VoiceCall.case_id, principal)
    )
    call = await scalar_or_404(session, stmt.with_for_update(), "call_not_found", "未找到该来电")
    row = await wrapups.wrap_up(
        session=session, call=call, kind=body.type, note=body.note, principal=principal,
        now=clock.now(),
    )
    audit(session, principal, "call.wrapup", "call", call.id, detail={"type": body.type}, ip=ip)
    return from_row(WrapupOut, row, call_sid=call.call_sid)


class WrapupCount(BaseModel):
    type: str
    label: str
    count: int


class WrapupStats(BaseModel):
    since: datetime
    until: datetime
    items: list[WrapupCount]
    not_wrapped_up: int


async def wrapup_stats(
    *,
    session: AsyncSession,
    principal: Principal,
    ip: str | None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> WrapupStats:
    """Answered calls of the period by wrap-up type (default: the last 30 days)."""
    until = until or clock.now()
    since = since or until - timedelta(days=30)
    if since.tzinfo is None or until.tzinfo is None:
        raise Invalid("timezone_required", "起止时间需要带时区")
    if since >= until:
        raise Invalid("bad_period", "开始时间必须早于结束时间")
    counts, pending = await wrapups.wrapup_counts(
        session, since, until, via_case(VoiceCall.case_id, principal)
    )
    audit(session, principal, "call.wrapup_stats", "call", None, ip=ip)
    labels = wrapups.wrapup_types()
    return WrapupStats(
        since=since,
        until=until,
        not_wrapped_up=pending,
        items=[WrapupCount(type=k, label=labels[k], count=n) for k, n in counts.items()],
    )


# Concerns from the area staff.


class ConcernIn(BaseModel):
    description: str = Field(min_length=1, max_length=5000)
    jurisdiction: str | None = Field(default=None, max_length=32)
    child: ChildIn = ChildIn()
    categories: list[Annotated[str, Field(max_length=40)]] = Field(default=[], max_length=13)
    in_danger_now: bool = False


async def raise_concern(
    *, session: AsyncSession, principal: Principal, ip: str | None, body: ConcernIn
) -> ReportCreated:
    """A 儿童主任 or 未保站 worker reports a child of their area: it opens a report."""
    known = category_labels()
    if any(c not in known for c in body.categories):
        raise Invalid("unknown_category", f"困境类型应为：{'、'.join(known.values())}")
    result = await concerns.raise_concern(
        session=session,
        principal=principal,
        description=body.description,
        jurisdiction=body.jurisdiction,
        child=body.child.model_dump(exclude_none=True),
        categories=body.categories,
        in_danger_now=body.in_danger_now,
    )
    audit(session, principal, "case.concern", "case", result.case_id, ip=ip)
    return ReportCreated(
        receipt_code=receipts.display(result.receipt_code),
        report_id=result.report_id,
        case_id=result.case_id,
    )


# The written assessment.


class AssessIn(BaseModel):
    answers: dict[Annotated[str, Field(max_length=40)], Annotated[str, Field(max_length=40)]]
    # Absent: the proposed level is accepted. Another level needs `override_reason`.
    risk_level: str | None = Field(default=None, max_length=10)
    override_reason: Text = None
    summary: str = Field(max_length=5000)
    needs: list[Annotated[str, Field(max_length=40)]] = Field(default=[], max_length=30)


class AssessmentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # read straight off its row

    version: int
    answers: dict[str, str]
    score: int
    proposed_level: str
    risk_level: str
    override_reason: str | None
    summary: str
    needs: list[str]
    created_at: datetime


class AssessmentList(BaseModel):
    items: list[AssessmentOut]


_Out = TypeVar("_Out", bound=BaseModel)


class OnCase(TypedDict):
    """What every operation on a case is given, keyword by keyword."""

    session: AsyncSession
    principal: Principal
    ip: str | None
    case_id: int


async def _record_on_case(
    record: Callable[..., Awaitable[Any]],
    action: str,
    out: type[_Out],
    *, session: AsyncSession, principal: Principal, ip: str | None, case_id: int,
    body: BaseModel, detail: Callable[[Any], dict[str, Any]] | None = None,
) -> _Out:
    """The operations whose body is the rule's parameters (the module's docstring) run
    alike: on the locked case, `record` checks and adds the row, one audit row of the
    `action` (with the row's `detail`), the row as `out`. Their `**context` is an `OnCase`."""
    case = await load_case(session, principal, case_id, lock=True)
    row = await record(
        session=session, case=case, principal=principal, now=clock.now(), **body.model_dump()
    )
    audit(session, principal, action, "case", case.id, detail=detail and detail(row), ip=ip)
    return out.model_validate(row)


async def assess(*, body: AssessIn, **context: Unpack[OnCase]) -> AssessmentOut:
    """An assessment to the form: the answers propose a level; accept or override it."""
    return await _record_on_case(
        assessments.assess, "case.assess", AssessmentOut, body=body, **context,
        detail=lambda row: {"version": row.version},
    )


async def list_assessments(
    *, session: AsyncSession, principal: Principal, ip: str | None, case_id: int
) -> AssessmentList:
    """Every version of the case's written assessment, newest first."""
    case = await load_case(session, principal, case_id)
    rows = await assessments.history(session, case.id)
    audit(session, principal, "case.assessments_read", "case", case.id, ip=ip)
    return AssessmentList(items=[AssessmentOut.model_validate(r) for r in rows])


# Guardianship: placements and interventions.


class PlacementIn(BaseModel):
    kind: str = Field(max_length=30, json_schema_extra={"x-choices": "placement_kind"})
    body: str = Field(max_length=200)
    department: str | None = Field(
        default=None, max_length=40, json_schema_extra={"x-choices": "department"}
    )
    start_on: date
    end_on: date | None = None
    note: Text = None


class PlacementOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # read straight off its row

    id: int
    kind: str
    body: str
    department: str | None = Field(validation_alias=AliasChoices("department_code", "department"))
    start_on: date
    end_on: date | None
    note: str | None


class InterventionIn(BaseModel):
    step: str = Field(max_length=30, json_schema_extra={"x-choices": "intervention_step"})
    department: str = Field(max_length=40, json_schema_extra={"x-choices": "department"})
    acted_on: date
    document: str | None = Field(default=None, max_length=200)
    note: Text = None
    skip_reason: Text = None


class InterventionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # read straight off its row

    id: int
    step: str
    department: str = Field(validation_alias=AliasChoices("department_code", "department"))
    acted_on: date
    document: str | None
    note: str | None
    skip_reason: str | None


class GuardianshipOut(BaseModel):
    placements: list[PlacementOut]
    interventions: list[InterventionOut]


async def add_placement(*, body: PlacementIn, **context: Unpack[OnCase]) -> PlacementOut:
    """A guardianship or placement record: kind, responsible body, start and end."""
    record = guardianship.add_placement
    return await _record_on_case(record, "case.placement", PlacementOut, body=body, **context)


async def add_intervention(*, body: InterventionIn, **context: Unpack[OnCase]) -> InterventionOut:
    """A step against a failing guardian (劝诫 → 训诫 → 处罚 → 撤销监护资格诉讼)."""
    record, action = guardianship.add_intervention, "case.intervention"
    return await _record_on_case(record, action, InterventionOut, body=body, **context)


async def read_guardianship(
    *, session: AsyncSession, principal: Principal, ip: str | None, case_id: int
) -> GuardianshipOut:
    case = await load_case(session, principal, case_id)
    placements, steps = await guardianship.records(session, case.id)
    audit(session, principal, "case.guardianship_read", "case", case.id, ip=ip)
    return GuardianshipOut(
        placements=[PlacementOut.model_validate(p) for p in placements],
        interventions=[InterventionOut.model_validate(i) for i in steps],
    )


# Case conferences.


class MeetingIn(BaseModel):
    scheduled_at: datetime
    departments: list[
        Annotated[str, Field(max_length=40, json_schema_extra={"x-choices": "department"})]
    ] = Field(max_length=20)
    agenda: str = Field(max_length=2000)
    place: str | None = Field(default=None, max_length=200)


class MeetingOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # read straight off its row

    id: int
    case_id: int
    scheduled_at: datetime
    place: str | None
    agenda: str
    departments: list[str]
    attended: list[str]
    status: str
    conference_id: int | None


class MeetingList(BaseModel):
    proposed: list[str] = []  # why a conference is proposed on the case (triggers)
    items: list[MeetingOut]


class DecisionIn(BaseModel):
    title: str = Field(max_length=200)
    department: str = Field(max_length=40, json_schema_extra={"x-choices": "department"})
    due: datetime | Annotated[str, Field(max_length=10)] = "5wd"


class HeldIn(BaseModel):
    attended: list[Annotated[str, Field(max_length=40)]] = Field(max_length=20)
    participants: str = Field(default="", max_length=2000)
    notes: str = Field(min_length=1, max_length=5000)
    decisions: list[DecisionIn] = Field(default=[], max_length=20)


class HeldOut(BaseModel):
    meeting: MeetingOut
    tasks: list[TaskOut]


async def schedule_meeting(*, body: MeetingIn, **context: Unpack[OnCase]) -> MeetingOut:
    """Call a case conference and invite the departments (console and SMS)."""
    return await _record_on_case(
        meetings.schedule, "case.meeting", MeetingOut, body=body, **context,
        detail=lambda row: {"meeting_id": row.id},
    )


async def case_meetings(
    *, session: AsyncSession, principal: Principal, ip: str | None, case_id: int
) -> MeetingList:
    """The case's conferences, and why one is proposed now (the configured triggers)."""
    case = await load_case(session, principal, case_id)
    rows = await meetings.meetings(session, principal, case_id=case.id)
    proposed = await meetings.proposed_because(session, case)
    audit(session, principal, "case.meetings_read", "case", case.id, ip=ip)
    return MeetingList(proposed=proposed, items=[MeetingOut.model_validate(m) for m in rows])


async def my_meetings(
    *, session: AsyncSession, principal: Principal, ip: str | None
) -> MeetingList:
    """Conferences still to be held that the caller's department is invited to (or, for the
    center, on its cases)."""
    rows = await meetings.meetings(session, principal, upcoming=True)
    audit(session, principal, "meeting.list", "case", None, detail={"count": len(rows)}, ip=ip)
    return MeetingList(items=[MeetingOut.model_validate(m) for m in rows])


async def record_meeting(
    *, session: AsyncSession, principal: Principal, ip: str | None, meeting_id: int, body: HeldIn
) -> HeldOut:
    """The conference was held: attendance, notes, and each decision as a task."""
    meeting = await meetings.load_meeting(session, principal, meeting_id)
    await load_case(session, principal, meeting.case_id, lock=True)
    tasks = await meetings.hold(
        session=session,
        meeting=meeting,
        attended=body.attended,
        participants=body.participants,
        notes=body.notes,
        decisions=[meetings.Decision(d.title, d.department, d.due) for d in body.decisions],
        principal=principal,
        now=clock.now(),
    )
    audit(session, principal, "case.conference", "case", meeting.case_id,
          detail={"meeting_id": meeting.id, "tasks": [t.id for t in tasks]}, ip=ip)
    return HeldOut(meeting=MeetingOut.model_validate(meeting), tasks=[task_out(t) for t in tasks])


# Closing, and the reporter who is not to be contacted.


class CloseIn(BaseModel):
    type: str = Field(max_length=30)
    reason: Text = None
    override: bool = Field(
        default=False,
        description="督导强制结案：不按结案标准，须督导填写原因",
    )


class ClosedOut(BaseModel):
    id: int
    state: str
    closing_type: str


async def close_case(
    *, session: AsyncSession, principal: Principal, ip: str | None, case_id: int, body: CloseIn
) -> ClosedOut:
    """Close to criteria with a type; open referrals' liaisons and the reporter are told."""
    case = await load_case(session, principal, case_id, lock=True)
    await closing.close_case(
        session=session,
        case=case,
        kind=body.type,
        reason=body.reason,
        actor=Actor(principal.label, principal.role, principal.id),
        now=clock.now(),
        override=body.override,
    )
    audit(session, principal, "case.close", "case", case.id,
          detail={"type": body.type, "override": body.override}, ip=ip)
    return ClosedOut(id=case.id, state=case.state, closing_type=body.type)


class NoContactIn(BaseModel):
    reason: Literal["asked", "may_be_child", "shared_phone"]


async def mark_no_contact(
    *, session: AsyncSession, principal: Principal, ip: str | None, report_id: int,
    body: NoContactIn,
) -> None:
    """Mark a reporter not to be contacted about the handling (the receipt still works)."""
    report = await session.get(Report, report_id)
    if report is None:
        raise NotFound("report_not_found", "未找到该报告")
    await load_case(session, principal, report.case_id)
    await reporter_notice.mark_no_contact(
        session=session, report=report, reason=body.reason, actor=principal.label,
        now=clock.now(),
    )
    audit(session, principal, "report.no_contact", "report", report.id,
          detail={"reason": body.reason}, ip=ip)
