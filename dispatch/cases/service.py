"""Cases: reading them (scoped, audited) and driving them through their workflow, one
transaction per transition. The JSON API, the console pages and the jobs call these.

The rules (which event is allowed from which state, and with what) are in
`workflows.cases.workflow`; this module loads the facts they need, applies the result and its
consequences (routing on registration, a first visit on follow-up, cancelled referrals on
closing), and records the case event, audit row and outbox rows together.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, Field, field_validator
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db import clock
from db.models import Case, CaseEvent, Referral, Report, Visit
from db.paging import newest_first, next_before_id
from dispatch.cases.access import load_case
from dispatch.casework.owners import holders_of
from dispatch.casework.reporter_notice import tell_reporters
from dispatch.children.records import follow_case_merge
from dispatch.common.views import from_row
from dispatch.partners.feedback import owe_feedback
from dispatch.referrals.deadlines import effective_risk, schedule
from dispatch.referrals.routing import plan_routes
from dispatch.referrals.service import cancel_open, create_referrals
from dispatch.staff.audit import add_case_event, add_timeline_event, audit
from dispatch.staff.auth import AREA_ROLES, Principal
from dispatch.staff.permissions import EVENT_ROLES
from dispatch.staff.scope import case_event_filter, case_filter, referral_filter, sees_reporter
from workflows.cases.workflow import FINISHED, CaseFacts, apply_case_event
from workflows.casework.plan import need_names
from workflows.errors import Conflict, DomainError, Forbidden, Invalid, WorkflowRefused
from workflows.referrals.deadlines import levels, next_visit_due
from workflows.referrals.workflow import ACTIVE


@dataclass
class Actor:
    """Who acts: a staff member, or the system itself (role 'system')."""

    name: str
    role: str
    user_id: int | None = None


async def facts_of(session: AsyncSession, case: Case) -> CaseFacts:
    # Both counts in one round trip: every transition of every intake asks for them.
    referral_count = (
        select(func.count())
        .where(Referral.case_id == case.id, Referral.status.in_(ACTIVE))
        .scalar_subquery()
    )
    visit_count = (
        select(func.count())
        .where(Visit.case_id == case.id, Visit.visited_at.is_not(None))
        .scalar_subquery()
    )
    referrals, visits = (await session.execute(select(referral_count, visit_count))).one()
    return CaseFacts(
        id=case.id,
        state=case.state,
        risk_level=case.risk_level,
        referral_count=referrals or 0,
        visit_count=visits or 0,
        mandatory=case.mandatory,
        emergency=case.emergency,
    )


_CONFLICTS = (
    "transition_not_allowed",
    "risk_level_required",
    "referral_required",
    "follow_up_visit_required",
)


def refused(exc: WorkflowRefused) -> DomainError:
    """The workflow's refusal as the service answers it: not now (409), not you (403), or
    something missing from the request (422)."""
    if exc.code in ("override_not_allowed", "supervisor_required"):
        return Forbidden(exc.code, exc.message)
    kind = Conflict if exc.code in _CONFLICTS else Invalid
    return kind(exc.code, exc.message)


async def _drop_planned_visits(session: AsyncSession, case: Case) -> None:
    await session.execute(delete(Visit).where(Visit.case_id == case.id, Visit.visited_at.is_(None)))


async def plan_visit(session: AsyncSession, case: Case, since: datetime) -> Visit:
    """Cancel the planned visit (if any) and plan the next at the risk level's interval."""
    await _drop_planned_visits(session, case)
    visit = Visit(case_id=case.id, due_at=next_visit_due(since, effective_risk(case)))
    session.add(visit)
    return visit


async def transition(
    session: AsyncSession,
    case: Case,
    event: str,
    actor: Actor,
    now: datetime,
    *,
    reason: str | None = None,
    into_case: Case | None = None,
    override: bool = False,
) -> str:
    """Apply one workflow event to a locked case row; returns the new state."""
    if actor.role not in EVENT_ROLES.get(event, set()):
        if event not in EVENT_ROLES:
            raise Invalid("unknown_event", "未知的流程操作")
        raise Forbidden("forbidden", "您的角色不能执行此操作")
    facts = await facts_of(session, case)
    try:
        new_state = apply_case_event(
            facts,
            event,
            reason=reason,
            into_case_id=into_case.id if into_case else None,
            override=override,
            actor_role=actor.role,
        )
    except WorkflowRefused as exc:
        raise refused(exc) from exc
    old_state = case.state
    case.state = new_state
    case.updated_at = now
    data: dict = {}
    if event == "merge" and into_case is not None:
        case.merged_into_id = into_case.id
        data["into_case_id"] = into_case.id
        await follow_case_merge(session, case.id, into_case.id, actor.name)
    if override:
        data["override"] = True
    add_timeline_event(
        session, actor.name, case.id, event,
        actor_id=actor.user_id, from_state=old_state, to_state=new_state, reason=reason,
        data=data or None, created_at=now,
    )
    if event == "register":
        await create_referrals(session, case, await plan_routes(session, case), actor.name, now)
    elif event == "follow_up":
        await plan_visit(session, case, now)
    elif new_state in FINISHED:
        await cancel_open(session, case, actor.name, now)
        await _drop_planned_visits(session, case)
    if new_state in ("handling", "closed"):
        await tell_reporters(session, case, new_state, now)
    # The partners who forwarded the case are owed its new status: written here, in the
    # transition's transaction, rather than by a job of its own after it (one job less per
    # transition, and the partner's message cannot lag behind the change).
    await owe_feedback(session, case.id)
    return new_state


class ReferralBrief(BaseModel):
    id: int
    department: str
    status: str


class CaseSummary(BaseModel):
    id: int
    state: str
    risk_level: str | None
    categories: list[str]
    emergency: bool
    mandatory: bool
    jurisdiction: str | None
    # From the judgement of the text: why it is not a case (consultation, not_minor, noise)
    # or null; and the risk it predicts before anyone assessed the case.
    not_a_case: str | None = None
    predicted_risk: str | None = None
    created_at: datetime
    updated_at: datetime
    referrals: list[ReferralBrief]
    # The responsible caseworker and the pairing person (usernames), when assigned.
    owner: str | None = None
    pairing: str | None = None


class CaseList(BaseModel):
    items: list[CaseSummary]
    next_before_id: int | None


class TimelineEntry(BaseModel):
    at: datetime
    event: str
    from_state: str | None
    to_state: str | None
    actor: str
    reason: str | None
    data: dict[str, Any] | None


class ReportView(BaseModel):
    id: int
    channel: str
    received_at: datetime
    description: str
    situations: list[int]
    child: dict[str, Any] | None
    address: str | None
    in_danger_now: bool
    # None when the viewer may not know who reported (departments other than police).
    reporter: dict[str, Any] | None
    # The judgement of the report's text (labels, scores, evidence phrases, engine version).
    judgement: dict[str, Any] | None = None


class VisitView(BaseModel):
    id: int
    due_at: datetime | None
    visited_at: datetime | None
    findings: str | None
    risk_before: str | None
    risk_after: str | None
    overdue: bool


class CaseDetail(CaseSummary):
    assessment: dict[str, Any] | None
    merged_into_id: int | None
    timeline: list[TimelineEntry]
    reports: list[ReportView]
    # Recorded visits and the planned next one (overdue when its date has passed).
    visits: list[VisitView]


async def _referrals(
    session, principal: Principal, case_ids: list[int]
) -> dict[int, list[ReferralBrief]]:
    """The cases' referrals the principal may see (`referral_filter`): the center every
    share of its cases, a department its own, as the console's case page and the referral
    list show them (a liaison's case rows listed every department's shares)."""
    out: dict[int, list[ReferralBrief]] = {cid: [] for cid in case_ids}
    if not case_ids:
        return out
    rows = await session.execute(
        select(Referral.id, Referral.case_id, Referral.department_code, Referral.status)
        .where(Referral.case_id.in_(case_ids), referral_filter(principal))
        .order_by(Referral.id)
    )
    for rid, cid, dept, status in rows:
        out[cid].append(ReferralBrief(id=rid, department=dept, status=status))
    return out


Shown = TypeVar("Shown", bound=CaseSummary)


def _shown(
    view: type[Shown], case: Case, referrals: list[ReferralBrief], held: Any = None,
    **values: Any,
) -> Shown:
    """The case as `view` (a CaseSummary) shows it: its referrals and holders with it."""
    return from_row(
        view, case, jurisdiction=case.jurisdiction_code, referrals=referrals,
        owner=held.owner if held else None, pairing=held.pairing if held else None, **values,
    )


async def list_cases(
    *,
    session: AsyncSession,
    principal: Principal,
    ip: str | None,
    state: str | None = None,
    limit: int = 50,
    before_id: int | None = None,
) -> CaseList:
    """Newest first, in the caller's scope. No personal data in the list."""
    stmt = select(Case).where(case_filter(principal))
    if state:
        stmt = stmt.where(Case.state == state)
    stmt = newest_first(stmt, Case.id, limit=limit, before_id=before_id)
    cases = (await session.execute(stmt)).scalars().all()
    refs = await _referrals(session, principal, [c.id for c in cases])
    held = await holders_of(session, [c.id for c in cases])
    audit(session, principal, "case.list", "case", None,
          detail={"count": len(cases), "state": state}, ip=ip)
    items = [_shown(CaseSummary, c, refs[c.id], held.get(c.id)) for c in cases]
    return CaseList(items=items, next_before_id=next_before_id(items, limit))


def _reporter_view(report: Report, principal: Principal) -> dict[str, Any] | None:
    if not sees_reporter(principal):
        return None
    reporter = dict(report.reporter or {})
    if report.reporter_phone:
        reporter["phone"] = report.reporter_phone
    return reporter or None


async def _of_case(session: AsyncSession, table: Any, case_id: int) -> list:
    """A case's rows of one table (reports, visits), oldest first."""
    stmt = select(table).where(table.case_id == case_id).order_by(table.id)
    return list((await session.execute(stmt)).scalars())


async def get_case(
    *, session: AsyncSession, principal: Principal, ip: str | None, case_id: int
) -> CaseDetail:
    """The case with its timeline, reports and visits; the reporter only for those who may
    know who reported."""
    now = clock.now()
    case = await load_case(session, principal, case_id)
    refs = await _referrals(session, principal, [case.id])
    held = (await holders_of(session, [case.id])).get(case.id)
    events = list((await session.execute(
        select(CaseEvent)
        .where(CaseEvent.case_id == case.id, case_event_filter(principal))
        .order_by(CaseEvent.id)
    )).scalars())
    reports = await _of_case(session, Report, case.id)
    visits = await _of_case(session, Visit, case.id)
    audit(session, principal, "case.read", "case", case.id,
          detail={"reporter_shown": sees_reporter(principal)}, ip=ip)
    return _shown(
        CaseDetail, case, refs[case.id], held,
        timeline=[from_row(TimelineEntry, e, at=e.created_at) for e in events],
        visits=[
            from_row(
                VisitView, v,
                overdue=v.visited_at is None and v.due_at is not None and v.due_at < now,
            )
            for v in visits
        ],
        reports=[
            from_row(
                ReportView, r, received_at=r.created_at, reporter=_reporter_view(r, principal)
            )
            for r in reports
        ],
    )


# The workflow's operations on one case, each in the caller's transaction.

# The deployment's needs (casework.toml): the same names the help plan routes.
NEEDS = need_names()
Reason = Annotated[str | None, Field(default=None, max_length=2000)]


class EventIn(BaseModel):
    event: Literal[
        "register",
        "assess",
        "handle",
        "follow_up",
        "reassess",
        "close",
        "reopen",
        "merge",
        "invalidate",
    ]
    reason: Reason = None
    into_case_id: int | None = None
    override: bool = False


class StateOut(BaseModel):
    id: int
    state: str
    risk_level: str | None


def _actor(principal: Principal) -> Actor:
    return Actor(principal.label, principal.role, principal.id)


async def _locked_case(session, principal: Principal, case_id: int) -> Case:
    return await load_case(session, principal, case_id, lock=True)


async def send_event(
    *, session: AsyncSession, principal: Principal, ip: str | None, case_id: int, body: EventIn
) -> StateOut:
    """Drive the workflow. A transition the workflow does not allow is 409, with the reason."""
    now = clock.now()
    case = await _locked_case(session, principal, case_id)
    into = None
    if body.event == "merge":
        if body.into_case_id is None:
            raise Invalid("into_case_required", "并案需要指定并入的案件")
        if body.into_case_id == case.id:
            raise Conflict("merge_into_self", "不能并入案件本身")
        into = await _locked_case(session, principal, body.into_case_id)
        if into.state in ("merged", "invalid"):
            raise Conflict("target_not_open", "目标案件已并案或不予受理，不能并入")
    await transition(
        session,
        case,
        body.event,
        _actor(principal),
        now,
        reason=body.reason,
        into_case=into,
        override=body.override,
    )
    audit(session, principal, f"case.{body.event}", "case", case.id, ip=ip)
    return StateOut(id=case.id, state=case.state, risk_level=case.risk_level)


RiskLevel = Annotated[str, Field(json_schema_extra={"x-choices": "risk_level"})]


class AssessmentIn(BaseModel):
    risk_level: RiskLevel
    guardianship: Annotated[str | None, Field(default=None, max_length=2000)] = None
    needs: list[Annotated[str, Field(json_schema_extra={"enum": list(NEEDS)})]] = []
    notes: Annotated[str | None, Field(default=None, max_length=5000)] = None

    @field_validator("risk_level")
    @classmethod
    def _level(cls, value: str) -> str:
        if value not in levels():
            raise ValueError("未知的风险等级，可选：" + "、".join(levels()))
        return value

    @field_validator("needs")
    @classmethod
    def _needs(cls, value: list[str]) -> list[str]:
        if any(n not in NEEDS for n in value):
            raise ValueError("未知的需求，可选：" + "、".join(NEEDS))
        return list(dict.fromkeys(value))


ASSESSABLE = ("reported", "assessing", "handling", "following_up")


async def apply_assessment(
    session: AsyncSession, case: Case, assessment: dict, principal: Principal, now: datetime
) -> None:
    """Set the locked case's risk level and assessment (`risk_level` and the rest of the
    written result): open referrals' deadlines and the next visit follow the new level.
    Shared by the quick assessment and the written one to the form (dispatch.casework)."""
    if case.state not in ASSESSABLE:
        raise Conflict("not_assessable", "案件当前状态不能评估")
    before, level = case.risk_level, assessment["risk_level"]
    case.risk_level = level
    case.assessment = {
        **assessment,
        "assessed_at": now.isoformat(),
        "assessed_by": principal.username,
    }
    case.updated_at = now
    add_case_event(
        session, principal, case.id, "assessment",
        created_at=now,
        data={
            "risk_before": before,
            "risk_after": level,
            "needs": assessment.get("needs") or [],
        },
    )
    open_refs = (
        (
            await session.execute(
                select(Referral).where(
                    Referral.case_id == case.id, Referral.status.in_(("queued", "claimed"))
                )
            )
        )
        .scalars()
        .all()
    )
    for referral in open_refs:
        schedule(referral, effective_risk(case))
    if case.state == "following_up" and before != level:
        await plan_visit(session, case, now)


async def assess(
    *, session: AsyncSession, principal: Principal, ip: str | None, case_id: int,
    body: AssessmentIn,
) -> StateOut:
    """Risk level, guardianship and needs. Open referrals' deadlines follow the new level."""
    now = clock.now()
    case = await _locked_case(session, principal, case_id)
    await apply_assessment(session, case, body.model_dump(), principal, now)
    audit(session, principal, "case.assess", "case", case.id, ip=ip)
    return StateOut(id=case.id, state=case.state, risk_level=case.risk_level)


class VisitIn(BaseModel):
    visited_at: datetime | None = None
    findings: Annotated[str, Field(min_length=1, max_length=5000)]
    risk_after: RiskLevel | None = None

    @field_validator("risk_after")
    @classmethod
    def _level(cls, value: str | None) -> str | None:
        if value is not None and value not in levels():
            raise ValueError("未知的风险等级，可选：" + "、".join(levels()))
        return value


class VisitOut(BaseModel):
    id: int
    visited_at: datetime
    next_due_at: datetime | None


async def record_visit(
    *, session: AsyncSession, principal: Principal, ip: str | None, case_id: int, body: VisitIn
) -> VisitOut:
    """Record a follow-up visit; the next one is planned at the (new) level's interval.
    Area staff record what they saw; only the center changes the risk level."""
    now = clock.now()
    if principal.role in AREA_ROLES and body.risk_after:
        raise Forbidden("risk_by_center", "风险等级由未保中心评估，请在回访情况中说明变化")
    if principal.role not in AREA_ROLES and not principal.is_center:
        raise Forbidden("forbidden", "您的角色不能执行此操作")
    visited_at = body.visited_at or now
    if visited_at.tzinfo is None:
        raise Invalid("timezone_required", "回访时间需要带时区")
    case = await _locked_case(session, principal, case_id)
    if case.state not in ("handling", "following_up"):
        raise Conflict("not_following_up", "案件当前状态不能登记回访")
    before = case.risk_level
    visit = Visit(
        case_id=case.id,
        visited_at=visited_at,
        visitor_id=principal.id,
        findings=body.findings,
        risk_before=before,
        risk_after=body.risk_after or before,
    )
    session.add(visit)
    if body.risk_after and body.risk_after != before:
        case.risk_level = body.risk_after
    case.updated_at = now
    await session.flush()
    add_case_event(
        session, principal, case.id, "visit",
        created_at=now,
        data={"visit_id": visit.id, "risk_before": before, "risk_after": visit.risk_after},
    )
    next_visit = None
    if case.state == "following_up":
        next_visit = await plan_visit(session, case, visited_at)
    audit(session, principal, "case.visit", "case", case.id, ip=ip)
    return VisitOut(
        id=visit.id, visited_at=visited_at, next_due_at=next_visit.due_at if next_visit else None
    )
