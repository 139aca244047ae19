"""Supervision's operations: 督查 orders (挂牌督办 by hand, 限时整改), their sweep,
重点个案 and the leadership meeting's minutes, 个案督导 notes.

Each operation is one transaction with its timeline event, audit row and notifications;
the JSON API (`Caller.run`), the console pages (`as_user`, `submit`) and the scheduler all
call these functions, so the two front ends cannot come to audit one act differently.
"""

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db import clock
from db.models import (
    Case,
    CaseEvent,
    KeyCase,
    KeyCaseMinute,
    Office,
    Referral,
    SupervisionNote,
    SupervisionOrder,
)
from db.timeline import case_event
from dispatch.common.lookup import scalar_or_404
from dispatch.console import periods
from dispatch.staff.audit import add_with_event, audit
from dispatch.staff.auth import Principal
from dispatch.staff.notifications import notify, office_liaisons, supervisors
from dispatch.staff.scope import case_filter, referral_filter
from dispatch.supervision.access import SUPERVISING_ROLES, is_department_staff, order_filter
from dispatch.supervision.scorecard import Scorecard, scorecard
from workflows import supervision as rules
from workflows.errors import Conflict, DomainError, Forbidden, Invalid, NotFound, WorkflowRefused
from workflows.reference import allowed, department_labels

ORDER_EVENTS = {
    "open": "supervision_ordered",
    "answer": "supervision_answered",
    "send_back": "supervision_sent_back",
    "lift": "supervision_lifted",
}


def _refused(exc: WorkflowRefused) -> DomainError:
    """Not now (409) when the order's state does not allow the event, else something
    missing or wrong in the request (422)."""
    kind = Conflict if exc.code == "transition_not_allowed" else Invalid
    return kind(exc.code, exc.message)


def _must_supervise(principal: Principal) -> None:
    if principal.role not in SUPERVISING_ROLES or not principal.is_center:
        raise Forbidden("forbidden", "只有中心督导或督查专员可以执行此操作")


def _event(
    case_id: int,
    event: str,
    principal: Principal | None,
    now: datetime,
    reason: str | None = None,
    **data: Any,
) -> CaseEvent:
    return case_event(
        case_id=case_id,
        event=event,
        actor=principal.label if principal else "system:supervision",
        actor_id=principal.id if principal else None,
        reason=reason,
        data=data or None,
        created_at=now,
    )


async def _case(session: AsyncSession, principal: Principal, case_id: int) -> Case:
    stmt = select(Case).where(Case.id == case_id, case_filter(principal)).with_for_update()
    return await scalar_or_404(session, stmt, "case_not_found", "未找到该案件")


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


# --- 督查 orders ------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderTarget:
    case_id: int | None = None
    referral_id: int | None = None
    department: str | None = None


async def _department_users(session: AsyncSession, order: SupervisionOrder) -> list[int]:
    """Who must answer: the office's liaisons and the department's supervisors above it."""
    users = []
    if order.office_id:
        office = await session.get(Office, order.office_id)
        if office:
            users += await office_liaisons(session, order.department_code, office.jurisdiction_code)
    everyone = await supervisors(session, order.department_code, order.jurisdiction_code)
    return users + everyone


def _audit_order(
    session: AsyncSession, principal: Principal, ip: str | None, act: str, order: SupervisionOrder
) -> None:
    """An order's act is audited on its case, naming the order."""
    audit(session, principal, act, "case", order.case_id, detail={"order_id": order.id}, ip=ip)


async def open_order(
    *,
    session: AsyncSession,
    ip: str | None,
    principal: Principal,
    target: OrderTarget,
    reason: str,
    due_at: datetime,
) -> SupervisionOrder:
    """挂牌督办 by hand, audited (a 督导 note's orders are audited once, as the note)."""
    order = await _open_order(session, principal, target, reason, due_at, clock.now())
    _audit_order(session, principal, ip, "supervision.order", order)
    return order


async def _open_order(
    session: AsyncSession,
    principal: Principal,
    target: OrderTarget,
    reason: str,
    due_at: datetime,
    now: datetime,
    *,
    alongside: bool = False,
) -> SupervisionOrder:
    """Put a referral, or a case's share of one department, under 挂牌督办 with a deadline.
    One order at a time per case and department, unless `alongside` (a 督导 note's actions)."""
    _must_supervise(principal)
    if not reason.strip():
        raise Invalid("reason_required", "请填写督办事由")
    try:
        rules.check_order_deadline(now, due_at)
    except WorkflowRefused as exc:
        raise _refused(exc) from exc
    referral = None
    if target.referral_id is not None:
        referral = (
            await session.execute(
                select(Referral).where(
                    Referral.id == target.referral_id, referral_filter(principal)
                )
            )
        ).scalar_one_or_none()
        if referral is None:
            raise NotFound("referral_not_found", "未找到该转介")
        case = await _case(session, principal, referral.case_id)
        department = referral.department_code
    else:
        if target.case_id is None or not target.department:
            raise Invalid("target_required", "请指定转介，或案件及责任部门")
        if target.department not in department_labels():
            raise Invalid("unknown_department", "未知的部门，可选：" + allowed(department_labels()))
        case = await _case(session, principal, target.case_id)
        department = target.department
        referral = (
            await session.execute(
                select(Referral)
                .where(Referral.case_id == case.id, Referral.department_code == department)
                .order_by(Referral.id.desc())
                .limit(1)
            )
        ).scalar_one_or_none()
    duplicate = (
        None
        if alongside
        else await session.scalar(
            select(SupervisionOrder.id).where(
                SupervisionOrder.case_id == case.id,
                SupervisionOrder.department_code == department,
                SupervisionOrder.status != "lifted",
            )
        )
    )
    if duplicate:
        raise Conflict("order_exists", f"该部门在此案件上已有未解除的督办（督办#{duplicate}）")
    order = SupervisionOrder(
        case_id=case.id,
        referral_id=referral.id if referral else None,
        department_code=department,
        office_id=referral.office_id if referral else None,
        jurisdiction_code=(referral.jurisdiction_code if referral else None)
        or case.jurisdiction_code,
        status="open",
        reason=reason.strip(),
        due_at=due_at,
        opened_by=principal.id,
        opened_by_label=principal.label,
        opened_at=now,
        next_check_at=rules.order_next_check(now, due_at, 0),
        created_at=now,
    )
    await add_with_event(
        session, principal, order, ORDER_EVENTS["open"],
        id_as="order_id", reason=order.reason, created_at=now,
        referral_id=order.referral_id, department=department, due_at=due_at.isoformat(),
    )
    name = department_labels().get(department, department)
    await notify(
        session,
        await _department_users(session, order),
        "supervision_ordered",
        f"案件#{case.id}（{name}）被挂牌督办，请在期限内整改并反馈",
        case_id=case.id,
        referral_id=order.referral_id,
    )
    return order


async def _order(session: AsyncSession, principal: Principal, order_id: int) -> SupervisionOrder:
    stmt = select(SupervisionOrder).where(SupervisionOrder.id == order_id, order_filter(principal))
    return await scalar_or_404(session, stmt.with_for_update(), "order_not_found", "未找到该督办")


async def order_event(
    *,
    session: AsyncSession,
    ip: str | None,
    principal: Principal,
    order_id: int,
    event: str,
    text: str,
) -> SupervisionOrder:
    """answer (the department), send_back or lift (the center's supervisor or 督查专员),
    audited as `supervision.<event>`."""
    now = clock.now()
    order = await _order(session, principal, order_id)
    if event == "answer":
        if not is_department_staff(principal) or principal.department != order.department_code:
            raise Forbidden("forbidden", "只有被督办部门的联络员或督导可以反馈整改情况")
    elif event in ("send_back", "lift"):
        _must_supervise(principal)
    try:
        order.status = rules.apply_order_event(order.status, event, text)
    except WorkflowRefused as exc:
        raise _refused(exc) from exc
    words = text.strip()
    if event == "answer":
        order.answer, order.answered_by_label, order.answered_at = words, principal.label, now
        order.next_check_at = None  # the clock stops while the supervisor reads the answer
    else:
        order.comment = words
        if event == "lift":
            order.lifted_by_label, order.lifted_at = principal.label, now
            order.next_check_at = None
        else:
            order.next_check_at = rules.order_next_check(
                order.opened_at, order.due_at, order.escalation
            )
    session.add(
        _event(
            order.case_id,
            ORDER_EVENTS[event],
            principal,
            now,
            words,
            order_id=order.id,
            referral_id=order.referral_id,
            department=order.department_code,
        )
    )
    name = department_labels().get(order.department_code, order.department_code)
    if event == "answer":
        users = await supervisors(session, None, order.jurisdiction_code)
        text_out = f"案件#{order.case_id} 督办（{name}）已反馈整改情况，请审核"
    else:
        users = await _department_users(session, order)
        verb = "已解除" if event == "lift" else "被退回，请继续整改"
        text_out = f"案件#{order.case_id} 督办（{name}）{verb}"
    await notify(session, users, ORDER_EVENTS[event], text_out, case_id=order.case_id)
    _audit_order(session, principal, ip, f"supervision.{event}", order)
    return order


async def sweep_orders(session: AsyncSession, now: datetime, limit: int = 200) -> int:
    """Rectifications past their deadline escalate like referrals: 督办 at the deadline
    (the department's and the center's supervisors), 挂牌 at twice the window (the city's)."""
    rows = (
        (
            await session.execute(
                select(SupervisionOrder)
                .where(SupervisionOrder.next_check_at <= now)
                .order_by(SupervisionOrder.next_check_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
        .scalars()
        .all()
    )
    names = department_labels()
    for order in rows:
        stage = rules.order_stage(order.opened_at, order.due_at, now)
        if order.status == "open" and stage > order.escalation:
            order.escalation = stage
            name = names.get(order.department_code, order.department_code)
            if stage == rules.ORDER_FLAGGED:
                event, words = "supervision_escalated", "严重逾期未整改，报市级督办"
                users = await supervisors(session, order.department_code, None)
            else:
                event, words = "supervision_overdue", "整改已逾期，督办"
                users = await supervisors(session, order.department_code, order.jurisdiction_code)
            users += await _department_users(session, order)
            text = f"案件#{order.case_id} 督办（{name}）{words}"
            session.add(
                _event(
                    order.case_id,
                    event,
                    None,
                    now,
                    text,
                    order_id=order.id,
                    department=order.department_code,
                    due_at=order.due_at.isoformat(),
                )
            )
            await notify(session, users, event, text, case_id=order.case_id)
        order.next_check_at = (
            rules.order_next_check(order.opened_at, order.due_at, order.escalation)
            if order.status == "open"
            else None
        )
    return len(rows)


async def list_orders(
    session: AsyncSession, principal: Principal, status: str | None, limit: int
) -> list[SupervisionOrder]:
    stmt = select(SupervisionOrder).where(order_filter(principal))
    if status:
        stmt = stmt.where(SupervisionOrder.status == status)
    stmt = stmt.order_by(SupervisionOrder.status != "open", SupervisionOrder.due_at).limit(limit)
    return list((await session.execute(stmt)).scalars())


# --- 重点个案 ----------------------------------------------------------------------------


async def _key_case_change(
    session: AsyncSession, principal: Principal, case_id: int, reason: str, missing: str
) -> tuple[Case, KeyCase | None, str]:
    """What flagging and clearing both check first (a supervisor, a reason, the case in
    scope), then the case's active flag if it has one, and the reason as kept."""
    _must_supervise(principal)
    if not reason.strip():
        raise Invalid("reason_required", missing)
    case = await _case(session, principal, case_id)
    active = (
        await session.execute(
            select(KeyCase).where(KeyCase.case_id == case.id, KeyCase.cleared_at.is_(None))
        )
    ).scalar_one_or_none()
    return case, active, reason.strip()


async def flag_key_case(
    *, session: AsyncSession, ip: str | None, principal: Principal, case_id: int, reason: str
) -> KeyCase:
    now = clock.now()
    case, active, reason = await _key_case_change(
        session, principal, case_id, reason, "请填写列为重点个案的理由"
    )
    if active:
        raise Conflict("already_key_case", "该案件已是重点个案")
    flag = KeyCase(case_id=case.id, reason=reason, flagged_by_label=principal.label, flagged_at=now)
    session.add(flag)
    session.add(_event(case.id, "key_case_flagged", principal, now, flag.reason))
    audit(session, principal, "supervision.key_case", "case", case_id, ip=ip)
    return flag


async def clear_key_case(
    *, session: AsyncSession, ip: str | None, principal: Principal, case_id: int, reason: str
) -> KeyCase:
    now = clock.now()
    case, flag, reason = await _key_case_change(
        session, principal, case_id, reason, "请填写撤销重点个案的理由"
    )
    if flag is None:
        raise Conflict("not_key_case", "该案件不是重点个案")
    flag.cleared_at, flag.cleared_by_label, flag.clear_reason = now, principal.label, reason
    session.add(_event(case.id, "key_case_cleared", principal, now, flag.clear_reason))
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
    """The leadership meeting's minutes and decisions about one key case."""
    now = clock.now()
    _must_supervise(principal)
    if not (meeting.strip() and minutes.strip() and decisions.strip()):
        raise Invalid("minutes_required", "请填写会议名称、会议纪要和决定事项")
    case = await _case(session, principal, case_id)
    row = KeyCaseMinute(
        case_id=case.id,
        meeting_on=meeting_on,
        meeting=meeting.strip(),
        minutes=minutes.strip(),
        decisions=decisions.strip(),
        recorded_by_label=principal.label,
        created_at=now,
    )
    await add_with_event(
        session, principal, row, "key_case_minute",
        id_as="minute_id", reason=row.decisions, created_at=now, meeting_on=meeting_on.isoformat(),
    )
    audit(session, principal, "supervision.minutes", "case", case_id, ip=ip)
    return row


async def key_cases(
    session: AsyncSession, principal: Principal, limit: int = 200
) -> list[dict[str, Any]]:
    """The list for the leadership meeting: active key cases in scope, with their minutes."""
    rows = (
        await session.execute(
            select(KeyCase, Case)
            .join(Case, Case.id == KeyCase.case_id)
            .where(KeyCase.cleared_at.is_(None), case_filter(principal))
            .order_by(KeyCase.flagged_at)
            .limit(limit)
        )
    ).all()
    ids = [case.id for _, case in rows]
    minutes: dict[int, list[KeyCaseMinute]] = {}
    if ids:
        for m in (
            await session.execute(
                select(KeyCaseMinute)
                .where(KeyCaseMinute.case_id.in_(ids))
                .order_by(KeyCaseMinute.meeting_on, KeyCaseMinute.id)
            )
        ).scalars():
            minutes.setdefault(m.case_id, []).append(m)
    return [
        {"flag": flag, "case": case, "minutes": minutes.get(case.id, [])} for flag, case in rows
    ]


# --- 个案督导 ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RequiredAction:
    text: str
    department: str
    due_at: datetime


async def add_note(
    *,
    session: AsyncSession,
    ip: str | None,
    principal: Principal,
    case_id: int,
    findings: str,
    actions: list[RequiredAction],
) -> SupervisionNote:
    """A supervisor's review of a case. Each required action becomes a rectification
    order on the responsible department (with its deadline, answered, lifted and escalated
    like any 督查 order), so nothing required is left as words in a note."""
    now = clock.now()
    _must_supervise(principal)
    if not findings.strip():
        raise Invalid("findings_required", "请填写督导意见")
    case = await _case(session, principal, case_id)
    made = []
    for action in actions:
        order = await _open_order(
            session,
            principal,
            OrderTarget(case_id=case.id, department=action.department),
            f"个案督导要求：{action.text.strip()}",
            action.due_at,
            now,
            alongside=True,
        )
        made.append(
            {
                "text": action.text.strip(),
                "department": action.department,
                "due_at": action.due_at.isoformat(),
                "order_id": order.id,
            }
        )
    note = SupervisionNote(
        case_id=case.id,
        findings=findings.strip(),
        actions=made,
        author_label=principal.label,
        created_at=now,
    )
    await add_with_event(
        session, principal, note, "supervision_note",
        id_as="note_id", reason=note.findings, created_at=now, orders=[a["order_id"] for a in made],
    )
    audit(session, principal, "supervision.note", "case", case_id, ip=ip)
    return note


async def case_supervision(
    session: AsyncSession, principal: Principal, case_id: int
) -> dict[str, Any]:
    """Everything supervision holds about one case: orders, key flag, minutes, notes."""
    stmt = select(Case).where(Case.id == case_id, case_filter(principal))
    case = await scalar_or_404(session, stmt, "case_not_found", "未找到该案件")

    async def rows(model, *where, order=None):
        stmt = select(model).where(model.case_id == case.id, *where)
        return list((await session.execute(stmt.order_by(order or model.id))).scalars())

    return {
        "case": case,
        "orders": await rows(SupervisionOrder),
        "key": next(iter(await rows(KeyCase, KeyCase.cleared_at.is_(None))), None),
        "minutes": await rows(KeyCaseMinute),
        "notes": await rows(SupervisionNote),
        "referrals": await rows(Referral),
    }
