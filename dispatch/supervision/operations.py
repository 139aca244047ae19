"""Supervision's audited operations: each one service call with its audit row, the same
for the JSON API (`Caller.run`) and the console's forms (`as_user`), so the two cannot
come to audit one act differently.

Keyword-only in the house's operation shape (`session=`, `ip=`, `principal=`); the time
is the clock's when the operation runs. `service.open_order` stays unaudited on purpose:
a 督导 note opens its orders through it and is audited once, as the note.
"""

from datetime import date, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from db import clock
from db.models import KeyCase, KeyCaseMinute, SupervisionNote, SupervisionOrder
from dispatch.console import periods
from dispatch.staff.audit import audit
from dispatch.staff.auth import Principal
from dispatch.supervision import service
from dispatch.supervision.scorecard import Scorecard, scorecard


async def read_scorecard(
    *,
    session: AsyncSession,
    ip: str | None,
    principal: Principal,
    period: periods.Period,
    by: str,
    what: str,
) -> Scorecard:
    """The scorecard over `period`, audited as `what` (read on screen, or exported)."""
    card = await scorecard(session, principal, period.start, period.end, by=by, now=clock.now())
    detail = {"from": period.start.isoformat(), "to": period.end.isoformat(), "by": by}
    audit(session, principal, what, "referral", None, detail=detail, ip=ip)
    return card


def _audit_order(
    session: AsyncSession,
    principal: Principal,
    action: str,
    order: SupervisionOrder,
    ip: str | None,
) -> None:
    """An order's act is audited on its case, naming the order."""
    audit(session, principal, action, "case", order.case_id, detail={"order_id": order.id}, ip=ip)


async def open_order(
    *,
    session: AsyncSession,
    ip: str | None,
    principal: Principal,
    target: service.OrderTarget,
    reason: str,
    due_at: datetime,
) -> SupervisionOrder:
    """挂牌督办 by hand."""
    order = await service.open_order(session, principal, target, reason, due_at, clock.now())
    _audit_order(session, principal, "supervision.order", order, ip)
    return order


async def order_event(
    *,
    session: AsyncSession,
    ip: str | None,
    principal: Principal,
    order_id: int,
    event: str,
    text: str,
) -> SupervisionOrder:
    """answer, send_back or lift, audited as `supervision.<event>`."""
    order = await service.order_event(session, principal, order_id, event, text, clock.now())
    _audit_order(session, principal, f"supervision.{event}", order, ip)
    return order


async def flag_key_case(
    *, session: AsyncSession, ip: str | None, principal: Principal, case_id: int, reason: str
) -> KeyCase:
    flag = await service.flag_key_case(session, principal, case_id, reason, clock.now())
    audit(session, principal, "supervision.key_case", "case", case_id, ip=ip)
    return flag


async def clear_key_case(
    *, session: AsyncSession, ip: str | None, principal: Principal, case_id: int, reason: str
) -> KeyCase:
    flag = await service.clear_key_case(session, principal, case_id, reason, clock.now())
    audit(session, principal, "supervision.key_case_clear", "case", case_id, ip=ip)
    return flag


async def record_minutes(
    *,
    session: AsyncSession,
    ip: str | None,
    principal: Principal,
    case_id: int,
    meeting_on: date,
    meeting: str,
    minutes: str,
    decisions: str,
) -> KeyCaseMinute:
    row = await service.record_minutes(
        session, principal, case_id, meeting_on, meeting, minutes, decisions, clock.now()
    )
    audit(session, principal, "supervision.minutes", "case", case_id, ip=ip)
    return row


async def add_note(
    *,
    session: AsyncSession,
    ip: str | None,
    principal: Principal,
    case_id: int,
    findings: str,
    actions: list[service.RequiredAction],
) -> SupervisionNote:
    """A 督导 note, its required actions opened as orders (audited once, as the note)."""
    note = await service.add_note(session, principal, case_id, findings, actions, clock.now())
    audit(session, principal, "supervision.note", "case", case_id, ip=ip)
    return note
