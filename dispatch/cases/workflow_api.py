"""Staff API that changes cases: workflow events, assessment, follow-up visits."""

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import select

from channels.errors import ApiError
from channels.web import json_only, sessions
from db.models import Case, CaseEvent, Referral, Visit
from dispatch.cases.api import load_case
from dispatch.cases.service import Actor, plan_visit, transition
from dispatch.referrals.deadlines import effective_risk, schedule
from dispatch.staff.audit import audit
from dispatch.staff.auth import Principal, require_center
from workflows.referrals.deadlines import levels

router = APIRouter(prefix="/api/v1/cases", tags=["workflow"], dependencies=[Depends(json_only)])
CENTER_STAFF = require_center("operator", "caseworker", "supervisor")
CASEWORK = require_center("caseworker", "supervisor")

NEEDS = (
    "生活救助",
    "教育救助",
    "医疗救治",
    "心理咨询",
    "监护干预",
    "法律援助",
    "临时监护",
    "政策帮扶",
)
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


@router.post("/{case_id}/events", response_model=StateOut)
async def post_event(
    request: Request,
    case_id: int,
    body: EventIn,
    principal: Annotated[Principal, Depends(CENTER_STAFF)],
) -> StateOut:
    """Drive the workflow. A transition the workflow does not allow is 409, with the reason."""
    now = datetime.now(UTC)
    async with sessions(request)() as session, session.begin():
        case = await _locked_case(session, principal, case_id)
        into = None
        if body.event == "merge":
            if body.into_case_id is None:
                raise ApiError(422, "into_case_required", "并案需要指定并入的案件")
            if body.into_case_id == case.id:
                raise ApiError(409, "merge_into_self", "不能并入案件本身")
            into = await _locked_case(session, principal, body.into_case_id)
            if into.state in ("merged", "invalid"):
                raise ApiError(409, "target_not_open", "目标案件已并案或不予受理，不能并入")
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
        audit(session, principal, f"case.{body.event}", "case", case.id, request)
    return StateOut(id=case.id, state=case.state, risk_level=case.risk_level)


class AssessmentIn(BaseModel):
    risk_level: str
    guardianship: Annotated[str | None, Field(default=None, max_length=2000)] = None
    needs: list[str] = []
    notes: Annotated[str | None, Field(default=None, max_length=5000)] = None

    @field_validator("risk_level")
    @classmethod
    def _level(cls, value: str) -> str:
        if value not in levels():
            raise ValueError("unknown risk level")
        return value

    @field_validator("needs")
    @classmethod
    def _needs(cls, value: list[str]) -> list[str]:
        if any(n not in NEEDS for n in value):
            raise ValueError("unknown need")
        return list(dict.fromkeys(value))


ASSESSABLE = ("reported", "assessing", "handling", "following_up")


@router.post("/{case_id}/assessment", response_model=StateOut)
async def post_assessment(
    request: Request,
    case_id: int,
    body: AssessmentIn,
    principal: Annotated[Principal, Depends(CASEWORK)],
) -> StateOut:
    """Risk level, guardianship and needs. Open referrals' deadlines follow the new level."""
    now = datetime.now(UTC)
    async with sessions(request)() as session, session.begin():
        case = await _locked_case(session, principal, case_id)
        if case.state not in ASSESSABLE:
            raise ApiError(409, "not_assessable", "案件当前状态不能评估")
        before = case.risk_level
        case.risk_level = body.risk_level
        case.assessment = {
            **body.model_dump(),
            "assessed_at": now.isoformat(),
            "assessed_by": principal.username,
        }
        case.updated_at = now
        session.add(
            CaseEvent(
                case_id=case.id,
                event="assessment",
                actor=principal.label,
                actor_id=principal.id,
                created_at=now,
                data={"risk_before": before, "risk_after": body.risk_level, "needs": body.needs},
            )
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
        if case.state == "following_up" and before != body.risk_level:
            await plan_visit(session, case, now)
        audit(session, principal, "case.assess", "case", case.id, request)
    return StateOut(id=case.id, state=case.state, risk_level=case.risk_level)


class VisitIn(BaseModel):
    visited_at: datetime | None = None
    findings: Annotated[str, Field(min_length=1, max_length=5000)]
    risk_after: str | None = None

    @field_validator("risk_after")
    @classmethod
    def _level(cls, value: str | None) -> str | None:
        if value is not None and value not in levels():
            raise ValueError("unknown risk level")
        return value


class VisitOut(BaseModel):
    id: int
    visited_at: datetime
    next_due_at: datetime | None


@router.post("/{case_id}/visits", response_model=VisitOut, status_code=201)
async def post_visit(
    request: Request,
    case_id: int,
    body: VisitIn,
    principal: Annotated[Principal, Depends(CASEWORK)],
) -> VisitOut:
    """Record a follow-up visit; the next one is planned at the (new) level's interval."""
    now = datetime.now(UTC)
    visited_at = body.visited_at or now
    if visited_at.tzinfo is None:
        raise ApiError(422, "timezone_required", "回访时间需要带时区")
    async with sessions(request)() as session, session.begin():
        case = await _locked_case(session, principal, case_id)
        if case.state not in ("handling", "following_up"):
            raise ApiError(409, "not_following_up", "案件当前状态不能登记回访")
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
        session.add(
            CaseEvent(
                case_id=case.id,
                event="visit",
                actor=principal.label,
                actor_id=principal.id,
                created_at=now,
                data={"visit_id": visit.id, "risk_before": before, "risk_after": visit.risk_after},
            )
        )
        next_visit = None
        if case.state == "following_up":
            next_visit = await plan_visit(session, case, visited_at)
        audit(session, principal, "case.visit", "case", case.id, request)
    return VisitOut(
        id=visit.id, visited_at=visited_at, next_due_at=next_visit.due_at if next_visit else None
    )
