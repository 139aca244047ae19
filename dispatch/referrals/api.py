"""Referrals for liaisons and the center: the queue, claiming, working, returning, re-routing."""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import select

from channels.errors import ApiError
from channels.web import client_ip, json_only, sessions
from db.models import Referral
from dispatch.cases.api import load_case
from dispatch.referrals.claims import Claimant, claim
from dispatch.referrals.service import act, reroute
from dispatch.staff.audit import audit
from dispatch.staff.auth import Principal, require, require_center, runtime_of
from dispatch.staff.scope import referral_filter
from workflows.reference import department_labels
from workflows.referrals.workflow import STATUS_LABELS

router = APIRouter(prefix="/api/v1/referrals", tags=["referrals"])
VIEWERS = require("liaison", "operator", "caseworker", "supervisor")
LIAISON = require("liaison")
CASEWORK = require_center("caseworker", "supervisor")
STATUSES = tuple(STATUS_LABELS)  # unrouted, queued, …, withdrawn


class ReferralOut(BaseModel):
    id: int
    case_id: int
    department: str
    office_id: int | None
    jurisdiction: str | None
    role: str
    status: str
    claimed_by: int | None
    claim_due_at: datetime | None
    action_due_at: datetime | None
    escalation: int
    outcome: str | None
    return_reason: str | None
    withdraw_reason: str | None = None  # why the center withdrew it (status withdrawn)
    created_at: datetime
    updated_at: datetime


class ReferralList(BaseModel):
    items: list[ReferralOut]


def _out(r: Referral) -> ReferralOut:
    return ReferralOut(
        id=r.id,
        case_id=r.case_id,
        department=r.department_code,
        office_id=r.office_id,
        jurisdiction=r.jurisdiction_code,
        role=r.role,
        status=r.status,
        claimed_by=r.claimed_by,
        claim_due_at=r.claim_due_at,
        action_due_at=r.action_due_at,
        escalation=r.escalation,
        outcome=r.outcome,
        return_reason=r.return_reason,
        withdraw_reason=r.withdraw_reason,
        created_at=r.created_at,
        updated_at=r.updated_at,
    )


@router.get("", response_model=ReferralList)
async def list_referrals(
    request: Request,
    principal: Annotated[Principal, Depends(VIEWERS)],
    status: Annotated[str | None, Query(max_length=20)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    case_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> ReferralList:
    """What the caller may see, most urgent first (claim deadline, then age); `case_id`
    narrows it to one case's shares."""
    if status and status not in STATUSES:
        raise ApiError(422, "unknown_status", "未知的转介状态")
    stmt = (
        select(Referral)
        .where(referral_filter(principal))
        .order_by(Referral.claim_due_at.asc().nulls_last(), Referral.id)
        .limit(limit)
    )
    if status:
        stmt = stmt.where(Referral.status == status)
    if case_id is not None:
        stmt = stmt.where(Referral.case_id == case_id)
    async with sessions(request)() as session, session.begin():
        rows = (await session.execute(stmt)).scalars().all()
        audit(
            session,
            principal,
            "referral.list",
            "referral",
            None,
            request,
            {"count": len(rows), "status": status},
        )
    return ReferralList(items=[_out(r) for r in rows])


@router.post("/{referral_id}/claim", response_model=ReferralOut)
async def claim_referral(
    request: Request, referral_id: int, principal: Annotated[Principal, Depends(LIAISON)]
) -> ReferralOut:
    """200 for the one liaison who gets it; 409 for everyone else."""
    who = Claimant(principal.id, principal.label, client_ip(request))
    referral = await claim(
        runtime_of(request).engine, referral_id, who, referral_filter(principal), datetime.now(UTC)
    )
    return _out(referral)


class NoteIn(BaseModel):
    note: Annotated[str, Field(min_length=1, max_length=5000)]


class OutcomeIn(BaseModel):
    outcome: Annotated[str, Field(min_length=1, max_length=5000)]


class ReasonIn(BaseModel):
    reason: Annotated[str, Field(min_length=1, max_length=2000)]


async def _act(
    request: Request, referral_id: int, principal: Principal, event: str, note: str
) -> ReferralOut:
    now = datetime.now(UTC)
    async with sessions(request)() as session, session.begin():
        referral = await act(
            session,
            referral_id,
            principal.id,
            principal.label,
            event,
            note,
            referral_filter(principal),
            now,
        )
        audit(session, principal, f"referral.{event}", "referral", referral.id, request)
    return _out(referral)


@router.post(
    "/{referral_id}/progress", response_model=ReferralOut, dependencies=[Depends(json_only)]
)
async def progress(
    request: Request,
    referral_id: int,
    body: NoteIn,
    principal: Annotated[Principal, Depends(LIAISON)],
) -> ReferralOut:
    return await _act(request, referral_id, principal, "progress", body.note)


@router.post(
    "/{referral_id}/complete", response_model=ReferralOut, dependencies=[Depends(json_only)]
)
async def complete(
    request: Request,
    referral_id: int,
    body: OutcomeIn,
    principal: Annotated[Principal, Depends(LIAISON)],
) -> ReferralOut:
    return await _act(request, referral_id, principal, "complete", body.outcome)


@router.post("/{referral_id}/return", response_model=ReferralOut, dependencies=[Depends(json_only)])
async def return_referral(
    request: Request,
    referral_id: int,
    body: ReasonIn,
    principal: Annotated[Principal, Depends(LIAISON)],
) -> ReferralOut:
    return await _act(request, referral_id, principal, "return", body.reason)


class RouteIn(BaseModel):
    department: Annotated[str, Field(max_length=40)]
    office_id: int | None = None

    @field_validator("department")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in department_labels():
            raise ValueError("unknown department")
        return value


@router.post(
    "/route/{case_id}",
    response_model=ReferralOut,
    status_code=201,
    dependencies=[Depends(json_only)],
)
async def route_case(
    request: Request,
    case_id: int,
    body: RouteIn,
    principal: Annotated[Principal, Depends(CASEWORK)],
) -> ReferralOut:
    """Send a case's share to a department by hand (after a return, or when unrouted)."""
    now = datetime.now(UTC)
    async with sessions(request)() as session, session.begin():
        case = await load_case(session, principal, case_id, lock=True)
        if case.state in ("closed", "merged", "invalid"):
            raise ApiError(409, "case_closed", "案件已结束，不能转介")
        referral = await reroute(
            session, case, body.department, body.office_id, principal.label, now
        )
        audit(
            session,
            principal,
            "referral.route",
            "referral",
            referral.id,
            request,
            {"case_id": case.id, "department": body.department},
        )
    return _out(referral)
