"""Call wrap-up (来电小结): the operator closes every answered call with what it was.

A report must already be registered from the call (or the call linked to its case); a
consultation, a request for help, a nuisance, a silent call or a wrong number is recorded
as such without opening a case. The statistics count calls by type over a period, and how
many answered calls are still waiting for their wrap-up.
"""

from datetime import datetime

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.casework import CallWrapup
from db.telephony import VoiceCall
from dispatch.staff.audit import add_case_event
from dispatch.staff.auth import Principal
from workflows import config
from workflows.errors import Conflict, Invalid


def wrapup_types() -> dict[str, str]:
    """Type code → Chinese label, in the deployment's order."""
    return dict(config.casework().wrapup_types)


async def wrap_up(
    *,
    session: AsyncSession,
    call: VoiceCall,
    kind: str,
    note: str | None,
    principal: Principal,
    now: datetime,
) -> CallWrapup:
    """Record the wrap-up of a locked call row; refused for a call nobody answered, a call
    already wrapped up, or a "report" with no report registered from it."""
    types = wrapup_types()
    if kind not in types:
        raise Invalid("unknown_type", f"小结类型应为：{'、'.join(types.values())}")
    if call.answered_at is None:
        raise Conflict("call_not_answered", "该来电未接通，无需小结")
    if await session.get(CallWrapup, call.id) is not None:
        raise Conflict("already_wrapped_up", "该来电已小结")
    if kind == "report" and call.case_id is None:
        raise Conflict("report_not_linked", "请先从来电登记报告或关联案件，再按“报告线索”小结")
    row = CallWrapup(
        call_id=call.id,
        type=kind,
        note=(note or "").strip() or None,
        case_id=call.case_id,
        operator_id=principal.id,
        created_at=now,
    )
    session.add(row)
    if call.case_id is not None:
        add_case_event(
            session,
            principal,
            call.case_id,
            "call_wrapup",
            reason=f"来电小结：{types[kind]}",
            data={"call_id": call.id, "type": kind},
            created_at=now,
        )
    return row


async def wrapup_counts(
    session: AsyncSession, since: datetime, until: datetime, visible: ColumnElement[bool]
) -> tuple[dict[str, int], int]:
    """Calls answered in [since, until) by wrap-up type (every type, zeros too), and the
    answered calls of the period still without a wrap-up; only the calls `visible` to the
    reader (the caller's scope, `dispatch.telephony.scope.via_case`), as the list of calls
    waiting for their wrap-up beside these figures: a district's desk counted the whole
    city's calls."""
    answered = (
        VoiceCall.answered_at.is_not(None)
        & (VoiceCall.answered_at >= since)
        & (VoiceCall.answered_at < until)
        & visible
    )
    rows = await session.execute(
        select(CallWrapup.type, func.count())
        .join(VoiceCall, VoiceCall.id == CallWrapup.call_id)
        .where(answered)
        .group_by(CallWrapup.type)
    )
    counts = dict.fromkeys(wrapup_types(), 0)
    counts.update({kind: n for kind, n in rows})
    pending = await session.scalar(
        select(func.count())
        .select_from(VoiceCall)
        .outerjoin(CallWrapup, CallWrapup.call_id == VoiceCall.id)
        .where(answered, CallWrapup.call_id.is_(None))
    )
    return counts, pending or 0


def call_key(call_id: str):
    """A call named by its Twilio sid, or by its number in our tables."""
    if call_id.isdigit():
        return or_(VoiceCall.call_sid == call_id, VoiceCall.id == int(call_id))
    return VoiceCall.call_sid == call_id
