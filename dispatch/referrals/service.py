"""Referrals: creating them from a routing plan, each liaison action on them, and the
staff's operations (list, claim, act, route by hand) that the JSON API and console call.

Every action is one transaction with its case event, audit row and outbox rows. Claiming,
the hot one, lives in `dispatch.referrals.claims` (one conditional UPDATE with SKIP LOCKED).
"""

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator
from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from db import clock
from db.models import Case, CaseEvent, Referral
from db.referrals_repository import NewReferral, insert_referrals, tell_office
from db.timeline import case_event
from dispatch.cases.access import load_case
from dispatch.common.lookup import scalar_or_404
from dispatch.common.views import from_row
from dispatch.referrals.claims import Claimant, claim
from dispatch.referrals.deadlines import effective_risk, enter_phase, schedule
from dispatch.referrals.routing import Target, plan_routes_for
from dispatch.staff.audit import audit
from dispatch.staff.auth import Principal
from dispatch.staff.notifications import (
    notify,
    notify_case_supervisors,
    office_liaisons,
    queue_note_ids,
    supervisors,
)
from dispatch.staff.scope import referral_filter
from workflows.cases.workflow import FINISHED
from workflows.errors import Conflict, Forbidden, Invalid, WorkflowRefused
from workflows.reference import department_labels
from workflows.referrals.workflow import OPEN, STATUS_LABELS, apply_referral_event


def _event(
    case_id: int,
    event: str,
    actor: str,
    now: datetime,
    reason: str | None = None,
    actor_id: int | None = None,
    **data,
) -> CaseEvent:
    return case_event(
        case_id=case_id,
        event=event,
        actor=actor,
        actor_id=actor_id,
        reason=reason,
        data=data or None,
        created_at=now,
    )


async def deliver(session: AsyncSession, referral: Referral, now: datetime) -> None:
    """The referral is in its office's queue (the office's liaisons see it from now on):
    record it and tell them, in the transaction that routed it, so no job stands between
    a case's routing and its referrals reaching their offices."""
    referral.delivered_at = now
    await session.flush()
    note = _new_note(referral.case_id, referral.department_code)
    queue_note_ids(session, await tell_office(session, referral.id, note))


def _new_note(case_id: int, department: str) -> str:
    """What a referral's office liaisons are told when it reaches them."""
    dept = department_labels().get(department, department)
    return f"新转介：案件#{case_id}（{dept}），请及时认领"


async def create_referrals(
    session: AsyncSession, case: Case, targets: list[Target], actor: str, now: datetime
) -> list[int]:
    """One referral per department not already holding a live one; routed ones go out
    (delivered, their office's liaisons told), unrouted ones are the supervisors' to route.
    Returns the new referrals' ids. One statement (`db.referrals_repository`)."""
    risk = effective_risk(case)
    labels = department_labels()
    rows = []
    for target in targets:
        name = labels.get(target.department, target.department)
        status = "queued" if target.office_id else "unrouted"
        # The deadlines as a queued referral's first phase sets them, on a referral not
        # added to the session (the row itself is written below).
        plan = Referral(
            case_id=case.id,
            department_code=target.department,
            role=target.role,
            status=status,
            created_at=now,
            updated_at=now,
        )
        if status == "queued":
            enter_phase(plan, risk)
            reason, note = f"转介{name}", _new_note(case.id, target.department)
        else:
            reason = note = f"案件#{case.id} 无可接收的{name}部门，请人工指定"
        rows.append(
            NewReferral(
                department=target.department,
                office_id=target.office_id,
                jurisdiction_code=target.jurisdiction_code,
                role=target.role,
                status=status,
                claim_due_at=plan.claim_due_at,
                action_due_at=plan.action_due_at,
                next_check_at=plan.next_check_at,
                reason=reason,
                note=note,
            )
        )
    if not rows:
        return []
    unrouted = any(row.status == "unrouted" for row in rows)
    told = await supervisors(session, None, case.jurisdiction_code) if unrouted else []
    await session.flush()  # what the caller changed first (a withdrawn share frees its slot)
    made = await insert_referrals(session, case.id, rows, actor, now, told)
    queue_note_ids(session, [i for m in made for i in m.notification_ids])
    return [m.id for m in made]


async def cancel_open(session: AsyncSession, case: Case, actor: str, now: datetime) -> int:
    """The case closed (or merged, or was found invalid): its open referrals are cancelled."""
    rows = (
        (
            await session.execute(
                select(Referral)
                .where(Referral.case_id == case.id, Referral.status.in_(OPEN))
                .with_for_update()
            )
        )
        .scalars()
        .all()
    )
    for referral in rows:
        held_by, was = referral.claimed_by, referral.status
        referral.status = "cancelled"
        referral.next_check_at = None
        referral.updated_at = now
        session.add(
            _event(
                case.id,
                "referral_cancelled",
                actor,
                now,
                referral_id=referral.id,
                department=referral.department_code,
            )
        )
        if was == "unrouted":
            continue  # no office ever had it
        told = (
            [held_by]
            if held_by
            else await office_liaisons(
                session, referral.department_code, referral.jurisdiction_code or ""
            )
        )
        await notify(
            session,
            told,
            "referral_cancelled",
            f"案件#{case.id} 已由未保中心结案或撤销，该转介无需继续办理",
            case_id=case.id,
            referral_id=referral.id,
        )
    return len(rows)


async def act(
    session: AsyncSession,
    referral_id: int,
    user_id: int,
    actor: str,
    event: str,
    note: str | None,
    visible,
    now: datetime,
) -> Referral:
    """progress / complete / return by the liaison holding the claim."""
    stmt = select(Referral).where(Referral.id == referral_id, visible).with_for_update()
    referral = await scalar_or_404(session, stmt, "referral_not_found", "未找到该转介")
    if referral.claimed_by != user_id:
        raise Forbidden("not_claimant", "只有认领该转介的联络员可以办理")
    try:
        new_status = apply_referral_event(referral.status, event, note=note)
    except WorkflowRefused as refused:
        kind = Conflict if refused.code == "transition_not_allowed" else Invalid
        raise kind(refused.code, refused.message) from refused
    changed = new_status != referral.status
    referral.status = new_status
    referral.last_activity_at = now
    referral.updated_at = now
    if event == "complete":
        referral.outcome = note
    if event == "return":
        referral.return_reason = note
    case = await session.get(Case, referral.case_id)
    if changed:
        enter_phase(referral, effective_risk(case))
    else:
        schedule(referral, effective_risk(case))
    names = {
        "progress": "referral_progress",
        "complete": "referral_completed",
        "return": "referral_returned",
    }
    session.add(
        _event(
            referral.case_id,
            names[event],
            actor,
            now,
            note,
            actor_id=user_id,
            referral_id=referral.id,
            department=referral.department_code,
        )
    )
    if event == "return":
        dept = department_labels().get(referral.department_code, referral.department_code)
        await notify_case_supervisors(
            session,
            case,
            "referral_returned",
            f"案件#{case.id} 的转介被{dept}退回，请重新指派",
            referral_id=referral.id,
        )
    return referral


async def reroute(
    session: AsyncSession,
    case: Case,
    department: str,
    office_id: int | None,
    actor: str,
    now: datetime,
) -> Referral:
    """The center sends a returned or unrouted share to a department office it names."""
    target = await plan_routes_for(session, case, department, office_id)
    unrouted = (
        await session.execute(
            select(Referral)
            .where(
                Referral.case_id == case.id,
                Referral.department_code == department,
                Referral.status == "unrouted",
            )
            .with_for_update()
        )
    ).scalar_one_or_none()
    if unrouted is not None:
        if target.office_id is None:
            raise Invalid("no_office", "该部门在此辖区及上级均无办理机构，请指定机构")
        unrouted.office_id = target.office_id
        unrouted.jurisdiction_code = target.jurisdiction_code
        unrouted.status = "queued"
        unrouted.created_at = now
        unrouted.updated_at = now
        enter_phase(unrouted, effective_risk(case))
        session.add(
            _event(
                case.id,
                "referral_routed",
                actor,
                now,
                referral_id=unrouted.id,
                department=department,
                office_id=target.office_id,
            )
        )
        await deliver(session, unrouted, now)
        return unrouted
    made = await create_referrals(session, case, [target], actor, now)
    if not made:
        raise Conflict("referral_exists", "该部门已有进行中的转介")
    return await session.get(Referral, made[0])


# The staff's operations on referrals, for the JSON API and the console alike.

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
    plan_due_at: datetime | None = None  # a help plan's time to deliver, while in progress
    escalation: int
    outcome: str | None
    return_reason: str | None
    withdraw_reason: str | None = None  # why the center withdrew it (status withdrawn)
    created_at: datetime
    updated_at: datetime


class ReferralList(BaseModel):
    items: list[ReferralOut]
    # Where the next page starts (pass it back as `after`); none after the last page.
    next_after: str | None = None


def _cursor(referral: Referral) -> str:
    """The list's order key of a row: its claim deadline (or "-" for none) and its id."""
    due = referral.claim_due_at.isoformat() if referral.claim_due_at else "-"
    return f"{due}~{referral.id}"


def _after(cursor: str) -> Any:
    """Rows after `cursor` in the list's order (claim deadline, none last, then id)."""
    due_text, _, id_text = cursor.rpartition("~")
    try:
        last_id = int(id_text)
        due = None if due_text == "-" else datetime.fromisoformat(due_text)
        if not 0 < last_id < 2**31 or (due is not None and due.tzinfo is None):
            raise ValueError(cursor)
    except ValueError:
        raise Invalid("bad_cursor", "翻页参数 after 无效：请使用上一页返回的 next_after") from None
    if due is None:
        return and_(Referral.claim_due_at.is_(None), Referral.id > last_id)
    return or_(
        Referral.claim_due_at > due,
        and_(Referral.claim_due_at == due, Referral.id > last_id),
        Referral.claim_due_at.is_(None),
    )


def _out(r: Referral) -> ReferralOut:
    return from_row(ReferralOut, r, department=r.department_code, jurisdiction=r.jurisdiction_code)


async def list_referrals(
    *,
    session: AsyncSession,
    principal: Principal,
    ip: str | None,
    status: str | None = None,
    limit: int = 50,
    case_id: int | None = None,
    after: str | None = None,
) -> ReferralList:
    """What the caller may see, most urgent first (claim deadline, then age); `case_id`
    narrows it to one case's shares; `after` (a page's `next_after`) the next page."""
    if status is not None and status not in STATUSES:
        raise Invalid("unknown_status", "未知的转介状态，可选：" + "、".join(STATUSES))
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
    if after:
        stmt = stmt.where(_after(after))
    rows = (await session.execute(stmt)).scalars().all()
    audit(
        session,
        principal,
        "referral.list",
        "referral",
        None,
        detail={"count": len(rows), "status": status},
        ip=ip,
    )
    more = _cursor(rows[-1]) if rows and len(rows) == limit else None
    return ReferralList(items=[_out(r) for r in rows], next_after=more)


async def claim_referral(
    *, engine: AsyncEngine, principal: Principal, ip: str | None, referral_id: int
) -> ReferralOut:
    """The one liaison who gets it has it; everyone else is refused (409). On the engine,
    not a session: the claim is one lean statement of its own (`dispatch.referrals.claims`)."""
    who = Claimant(principal.id, principal.label, ip)
    referral = await claim(engine, referral_id, who, referral_filter(principal), clock.now())
    return _out(referral)


class NoteIn(BaseModel):
    note: Annotated[str, Field(min_length=1, max_length=5000)]


class OutcomeIn(BaseModel):
    outcome: Annotated[str, Field(min_length=1, max_length=5000)]


class ReasonIn(BaseModel):
    reason: Annotated[str, Field(min_length=1, max_length=2000)]


LiaisonAction = Literal["progress", "complete", "return"]


async def record_action(
    *,
    session: AsyncSession,
    principal: Principal,
    ip: str | None,
    referral_id: int,
    event: LiaisonAction,
    note: str,
) -> ReferralOut:
    """progress / complete / return by the liaison holding the claim."""
    now = clock.now()
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
    audit(session, principal, f"referral.{event}", "referral", referral.id, ip=ip)
    return _out(referral)


class RouteIn(BaseModel):
    department: Annotated[str, Field(max_length=40, json_schema_extra={"x-choices": "department"})]
    office_id: int | None = None

    @field_validator("department")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in department_labels():
            raise ValueError("未知的部门，可选：" + "、".join(department_labels()))
        return value


async def route_case(
    *, session: AsyncSession, principal: Principal, ip: str | None, case_id: int, body: RouteIn
) -> ReferralOut:
    """Send a case's share to a department by hand (after a return, or when unrouted)."""
    now = clock.now()
    case = await load_case(session, principal, case_id, lock=True)
    if case.state in FINISHED:
        raise Conflict("case_closed", "案件已结束，不能转介")
    referral = await reroute(session, case, body.department, body.office_id, principal.label, now)
    audit(
        session,
        principal,
        "referral.route",
        "referral",
        referral.id,
        detail={"case_id": case.id, "department": body.department},
        ip=ip,
    )
    return _out(referral)
