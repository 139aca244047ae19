"""Legal hold (诉讼保全) on a case: while it lasts the retention job leaves the case, its
child file and its recordings alone, whatever their periods say (a lawsuit, an
investigation, a complaint needs the record as it is).

The center's supervisor places and lifts it, with a reason, in the case's scope; both are
on the case's timeline (the reason there, as any timeline reason) and in the audit log
(codes only). Anyone who may read the case may see whether it is held.
"""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from channels.web import json_only, sessions
from db import clock
from db.engine import transaction
from db.models import Case
from db.timeline import case_event
from dispatch.cases.access import load_case
from dispatch.staff.audit import audit
from dispatch.staff.auth import Principal, current_principal
from dispatch.staff.permissions import CASE_READ, LEGAL_HOLD, requires
from workflows.errors import Conflict, Forbidden, Invalid

router = APIRouter(prefix="/api/v1/cases", tags=["cases"])
READERS = requires(CASE_READ)
async def holder(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    """The center's supervisor only: a department's supervisor holds the role, not the job."""
    if not LEGAL_HOLD.allows(principal):
        raise Forbidden("forbidden", "只有中心主管可以设置或解除诉讼保全")
    return principal


HOLDERS = [Depends(current_principal), Depends(json_only)]


class HoldIn(BaseModel):
    reason: str = Field(max_length=1000)


class HoldOut(BaseModel):
    case_id: int
    held: bool
    since: datetime | None = None
    by: str | None = None
    reason: str | None = None


def _out(case: Case) -> HoldOut:
    return HoldOut(
        case_id=case.id or 0,
        held=case.legal_hold_at is not None,
        since=case.legal_hold_at,
        by=case.legal_hold_by,
        reason=case.legal_hold_reason,
    )


def _reason(body: HoldIn, what: str) -> str:
    reason = body.reason.strip()
    if not reason:
        raise Invalid("reason_required", f"请填写{what}诉讼保全的理由", fields={"reason": "必填"})
    return reason


def _record(
    request: Request, session: AsyncSession, principal: Principal, case: Case, reason: str,
    now: datetime,
) -> HoldOut:
    """The placing or lifting just done to `case`, on its timeline (with the reason) and in
    the audit log (codes only)."""
    held = case.legal_hold_at is not None
    session.add(case_event(
        case_id=case.id, event="legal_hold_placed" if held else "legal_hold_lifted",
        actor=principal.label, actor_id=principal.id, reason=reason, created_at=now,
    ))
    action = "case.legal_hold" if held else "case.legal_hold_lift"
    audit(session, principal, action, "case", case.id, request, {"held": held})
    return _out(case)


@router.get("/{case_id}/legal-hold", response_model=HoldOut)
async def get_hold(
    request: Request, case_id: int, principal: Annotated[Principal, Depends(READERS)]
) -> HoldOut:
    async with sessions(request)() as session:
        return _out(await load_case(session, principal, case_id))


@router.put("/{case_id}/legal-hold", response_model=HoldOut, dependencies=HOLDERS)
async def place_hold(
    request: Request, case_id: int, body: HoldIn, principal: Annotated[Principal, Depends(holder)]
) -> HoldOut:
    """Place the hold; sent again with the same reason (a retry), it changes nothing."""
    reason = _reason(body, "设置")
    async with transaction(sessions(request)) as session:
        case = await load_case(session, principal, case_id, lock=True)
        if case.anonymised_at is not None:
            raise Conflict("case_anonymised", "该案件已按保存期限匿名化，无法再设置诉讼保全")
        if case.legal_hold_at is not None:
            if case.legal_hold_reason == reason:
                return _out(case)
            raise Conflict("already_held", "该案件已处于诉讼保全，请先解除再重新设置")
        now = clock.now()
        case.legal_hold_at, case.legal_hold_by = now, principal.label
        case.legal_hold_reason = reason
        return _record(request, session, principal, case, reason, now)


@router.delete("/{case_id}/legal-hold", response_model=HoldOut, dependencies=HOLDERS)
async def lift_hold(
    request: Request, case_id: int, body: HoldIn, principal: Annotated[Principal, Depends(holder)]
) -> HoldOut:
    """Lift the hold (with a reason, like placing it): the retention periods apply again."""
    reason = _reason(body, "解除")
    async with transaction(sessions(request)) as session:
        case = await load_case(session, principal, case_id, lock=True)
        if case.legal_hold_at is None:
            raise Conflict("not_held", "该案件未处于诉讼保全")
        case.legal_hold_at = case.legal_hold_by = case.legal_hold_reason = None
        return _record(request, session, principal, case, reason, clock.now())
