"""Staff API for cases: list and read, scoped and audited (workflow events live beside it)."""

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel
from sqlalchemy import select

from channels.errors import ApiError
from channels.web import sessions
from db.models import Case, CaseEvent, Referral, Report, Visit
from dispatch.staff.audit import audit
from dispatch.staff.auth import Principal, require
from dispatch.staff.scope import case_filter, sees_reporter

router = APIRouter(prefix="/api/v1/cases", tags=["cases"])
STAFF = require("operator", "caseworker", "supervisor", "liaison")


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


async def _referrals(session, case_ids: list[int]) -> dict[int, list[ReferralBrief]]:
    out: dict[int, list[ReferralBrief]] = {cid: [] for cid in case_ids}
    if not case_ids:
        return out
    rows = await session.execute(
        select(Referral.id, Referral.case_id, Referral.department_code, Referral.status)
        .where(Referral.case_id.in_(case_ids))
        .order_by(Referral.id)
    )
    for rid, cid, dept, status in rows:
        out[cid].append(ReferralBrief(id=rid, department=dept, status=status))
    return out


def _summary(case: Case, referrals: list[ReferralBrief]) -> dict[str, Any]:
    return {
        "id": case.id,
        "state": case.state,
        "risk_level": case.risk_level,
        "categories": case.categories,
        "emergency": case.emergency,
        "mandatory": case.mandatory,
        "jurisdiction": case.jurisdiction_code,
        "not_a_case": case.not_a_case,
        "predicted_risk": case.predicted_risk,
        "created_at": case.created_at,
        "updated_at": case.updated_at,
        "referrals": referrals,
    }


@router.get("", response_model=CaseList)
async def list_cases(
    request: Request,
    principal: Annotated[Principal, Depends(STAFF)],
    state: Annotated[str | None, Query(max_length=20)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before_id: Annotated[int | None, Query(ge=1)] = None,
) -> CaseList:
    """Newest first, in the caller's scope. No personal data in the list."""
    stmt = select(Case).where(case_filter(principal)).order_by(Case.id.desc()).limit(limit)
    if state:
        stmt = stmt.where(Case.state == state)
    if before_id:
        stmt = stmt.where(Case.id < before_id)
    async with sessions(request)() as session, session.begin():
        cases = (await session.execute(stmt)).scalars().all()
        refs = await _referrals(session, [c.id for c in cases])
        audit(
            session,
            principal,
            "case.list",
            "case",
            None,
            request,
            {"count": len(cases), "state": state},
        )
    items = [CaseSummary(**_summary(c, refs[c.id])) for c in cases]
    more = len(items) == limit
    return CaseList(items=items, next_before_id=items[-1].id if more and items else None)


def _reporter_view(report: Report, principal: Principal) -> dict[str, Any] | None:
    if not sees_reporter(principal):
        return None
    reporter = dict(report.reporter or {})
    if report.reporter_phone:
        reporter["phone"] = report.reporter_phone
    return reporter or None


async def load_case(session, principal: Principal, case_id: int, *, lock: bool = False) -> Case:
    """The case if the principal may see it; 404 otherwise (no hint that it exists).
    With `lock`, the row is locked for an update in this transaction."""
    stmt = select(Case).where(Case.id == case_id, case_filter(principal))
    case = (await session.execute(stmt.with_for_update() if lock else stmt)).scalar_one_or_none()
    if case is None:
        raise ApiError(404, "case_not_found", "未找到该案件")
    return case


@router.get("/{case_id}", response_model=CaseDetail)
async def get_case(
    request: Request,
    case_id: int,
    principal: Annotated[Principal, Depends(STAFF)],
) -> CaseDetail:
    now = datetime.now(UTC)
    async with sessions(request)() as session, session.begin():
        case = await load_case(session, principal, case_id)
        refs = await _referrals(session, [case.id])
        events = (
            (
                await session.execute(
                    select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.id)
                )
            )
            .scalars()
            .all()
        )
        reports = (
            (
                await session.execute(
                    select(Report).where(Report.case_id == case.id).order_by(Report.id)
                )
            )
            .scalars()
            .all()
        )
        visits = (
            (
                await session.execute(
                    select(Visit).where(Visit.case_id == case.id).order_by(Visit.id)
                )
            )
            .scalars()
            .all()
        )
        audit(
            session,
            principal,
            "case.read",
            "case",
            case.id,
            request,
            {"reporter_shown": sees_reporter(principal)},
        )
    return CaseDetail(
        **_summary(case, refs[case.id]),
        assessment=case.assessment,
        merged_into_id=case.merged_into_id,
        timeline=[
            TimelineEntry(
                at=e.created_at,
                event=e.event,
                from_state=e.from_state,
                to_state=e.to_state,
                actor=e.actor,
                reason=e.reason,
                data=e.data,
            )
            for e in events
        ],
        visits=[
            VisitView(
                id=v.id,
                due_at=v.due_at,
                visited_at=v.visited_at,
                findings=v.findings,
                risk_before=v.risk_before,
                risk_after=v.risk_after,
                overdue=v.visited_at is None and v.due_at is not None and v.due_at < now,
            )
            for v in visits
        ],
        reports=[
            ReportView(
                id=r.id,
                channel=r.channel,
                received_at=r.created_at,
                description=r.description,
                situations=r.situations,
                child=r.child,
                address=r.address,
                in_danger_now=r.in_danger_now,
                reporter=_reporter_view(r, principal),
                judgement=r.judgement,
            )
            for r in reports
        ],
    )
