"""Legal hold (诉讼保全) on a case: while it lasts the retention job leaves the case, its
child file and its recordings alone, whatever their periods say (a lawsuit, an
investigation, a complaint needs the record as it is).

The center's supervisor places and lifts it, with a reason, in the case's scope; both are
on the case's timeline (the reason there, as any timeline reason) and in the audit log
(codes only). Anyone who may read the case may see whether it is held.

The operations, as every service's: keyword-only, the session and the client's address
passed in (`channels.web.in_transaction`), refusals as `workflows.errors`; the JSON routes
are in `dispatch.retention.holds`.
"""

from datetime import datetime

from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from db import clock
from db.models import Case
from dispatch.cases.access import load_case
from dispatch.staff.audit import add_case_event, audit
from dispatch.staff.auth import Principal
from dispatch.staff.permissions import LEGAL_HOLD
from workflows.errors import Conflict, Forbidden, Invalid


class HoldIn(BaseModel):
    reason: str = Field(max_length=1000)


class HoldOut(BaseModel):
    case_id: int
    held: bool
    since: datetime | None = None
    by: str | None = None
    reason: str | None = None


def require_holder(principal: Principal) -> None:
    """The center's supervisor only: a department's supervisor holds the role, not the job."""
    if not LEGAL_HOLD.allows(principal):
        raise Forbidden("forbidden", "只有中心主管可以设置或解除诉讼保全")


def _out(case: Case) -> HoldOut:
    return HoldOut(
        case_id=case.id or 0,
        held=case.legal_hold_at is not None,
        since=case.legal_hold_at,
        by=case.legal_hold_by,
        reason=case.legal_hold_reason,
    )


def _reason(text: str, what: str) -> str:
    reason = text.strip()
    if not reason:
        raise Invalid("reason_required", f"请填写{what}诉讼保全的理由", fields={"reason": "必填"})
    return reason


def _record(
    session: AsyncSession, principal: Principal, ip: str | None, case: Case, reason: str,
    now: datetime,
) -> HoldOut:
    """The placing or lifting just done to `case`, on its timeline (with the reason) and in
    the audit log (codes only)."""
    held = case.legal_hold_at is not None
    event = "legal_hold_placed" if held else "legal_hold_lifted"
    add_case_event(session, principal, case.id, event, reason=reason, created_at=now)
    action = "case.legal_hold" if held else "case.legal_hold_lift"
    audit(session, principal, action, "case", case.id, detail={"held": held}, ip=ip)
    return _out(case)


async def get_hold(
    *, session: AsyncSession, principal: Principal, ip: str | None, case_id: int
) -> HoldOut:
    """Whether the case is held, for anyone who may read it."""
    return _out(await load_case(session, principal, case_id))


async def place_hold(
    *, session: AsyncSession, principal: Principal, ip: str | None, case_id: int, reason: str
) -> HoldOut:
    """Place the hold; sent again with the same reason (a retry), it changes nothing."""
    require_holder(principal)
    reason = _reason(reason, "设置")
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
    return _record(session, principal, ip, case, reason, now)


async def lift_hold(
    *, session: AsyncSession, principal: Principal, ip: str | None, case_id: int, reason: str
) -> HoldOut:
    """Lift the hold (with a reason, like placing it): the retention periods apply again."""
    require_holder(principal)
    reason = _reason(reason, "解除")
    case = await load_case(session, principal, case_id, lock=True)
    if case.legal_hold_at is None:
        raise Conflict("not_held", "该案件未处于诉讼保全")
    case.legal_hold_at = case.legal_hold_by = case.legal_hold_reason = None
    return _record(session, principal, ip, case, reason, clock.now())
