"""The help plan (一案一策): needs become referrals to their lead departments.

A plan names the case's needs; each need's lead department (casework.toml) gets a referral
when the plan is adopted, unless the case already has one with that department, which the
item then points at. A red or orange case's plan waits for a supervisor's approval first.
A new plan replaces the current one only with a reason: referrals the old plan sent to a
department the new one no longer needs are withdrawn with that reason, and their liaisons
are told; none disappears silently.
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.casework import CasePlan, CasePlanItem
from db.models import Case, CaseEvent, Referral
from db.timeline import case_event
from dispatch.cases.corrections import withdraw
from dispatch.referrals.deadlines import effective_risk, set_plan_due
from dispatch.referrals.routing import plan_routes_for
from dispatch.referrals.service import create_referrals
from dispatch.staff.auth import Principal
from dispatch.staff.notifications import notify_case_supervisors
from workflows.casework.plan import Need, needs_approval, needs_table, plan_needs, replan
from workflows.errors import Conflict, Forbidden, Invalid, WorkflowRefused
from workflows.reference import department_labels
from workflows.referrals.workflow import ACTIVE, OPEN

PLANNABLE = ("reported", "assessing", "handling", "following_up")
LIVE = ("pending_approval", "adopted")
STATUS_LABELS = {
    "pending_approval": "待督导审批",
    "adopted": "已实施",
    "superseded": "已被新计划取代",
}


@dataclass(frozen=True)
class PlanView:
    plan: CasePlan
    items: list[CasePlanItem]
    referral_status: dict[int, str]  # referral id → its status, for each item's state

    @property
    def pending_approval(self) -> bool:
        return self.plan.status == "pending_approval"


def _event(
    case: Case, event: str, principal: Principal, now: datetime, reason: str, plan: CasePlan
) -> CaseEvent:
    return case_event(
        case_id=case.id,
        event=event,
        actor=principal.label,
        actor_id=principal.id,
        reason=reason,
        data={"plan_id": plan.id, "version": plan.version, "needs": plan.needs},
        created_at=now,
    )


async def _live(session: AsyncSession, case_id: int, status: str) -> CasePlan | None:
    return await session.scalar(
        select(CasePlan)
        .where(CasePlan.case_id == case_id, CasePlan.status == status)
        .order_by(CasePlan.version.desc())
        .limit(1)
        .with_for_update()
    )


async def _items(session: AsyncSession, plan_id: int) -> list[CasePlanItem]:
    return list(
        (
            await session.execute(
                select(CasePlanItem)
                .where(CasePlanItem.plan_id == plan_id)
                .order_by(CasePlanItem.id)
            )
        ).scalars()
    )


async def propose(
    *,
    session: AsyncSession,
    case: Case,
    needs: list[str],
    reason: str | None,
    principal: Principal,
    now: datetime,
) -> PlanView:
    """A new plan on the locked case: adopted at once, or waiting for approval."""
    if case.state not in PLANNABLE:
        raise Conflict("not_plannable", "案件当前状态不能制定帮扶计划")
    try:
        chosen = plan_needs(needs)
    except WorkflowRefused as exc:
        raise Invalid(exc.code, exc.message) from exc
    pending = await _live(session, case.id, "pending_approval")
    adopted = await _live(session, case.id, "adopted")
    reason = (reason or "").strip() or None
    if (pending or adopted) and not reason:
        raise Invalid("reason_required", "调整帮扶计划需要填写原因")
    if pending is not None:
        pending.status = "superseded"
    version = (
        await session.scalar(
            select(func.coalesce(func.max(CasePlan.version), 0)).where(CasePlan.case_id == case.id)
        )
    ) + 1
    plan = CasePlan(
        case_id=case.id,
        version=version,
        status="pending_approval" if needs_approval(case.risk_level) else "adopted",
        needs=[n.name for n in chosen],
        reason=reason,
        created_by=principal.id,
        created_at=now,
    )
    session.add(plan)
    await session.flush()
    names = "、".join(plan.needs)
    session.add(_event(case, "plan_proposed", principal, now, reason or f"帮扶计划：{names}", plan))
    if plan.status == "pending_approval":
        await notify_case_supervisors(
            session, case, "plan_approval", f"案件#{case.id} 的帮扶计划待审批"
        )
        items = [
            CasePlanItem(
                plan_id=plan.id,
                need=n.name,
                department_code=n.lead,
                cooperating=list(n.cooperating),
            )
            for n in chosen
        ]
        session.add_all(items)
        await session.flush()
        return PlanView(plan, items, {})
    return await _adopt(session, case, plan, chosen, adopted, principal, now)


async def approve(
    *, session: AsyncSession, case: Case, principal: Principal, now: datetime
) -> PlanView:
    """A supervisor adopts the case's waiting plan: its referrals go out now."""
    if principal.role != "supervisor" or not principal.is_center:
        raise Forbidden("forbidden", "只有中心督导可以审批帮扶计划")
    plan = await _live(session, case.id, "pending_approval")
    if plan is None:
        raise Conflict("no_pending_plan", "该案件没有待审批的帮扶计划")
    # The waiting plan's items named no referral yet; adoption writes them afresh.
    await session.execute(delete(CasePlanItem).where(CasePlanItem.plan_id == plan.id))
    table = needs_table()
    chosen = [table[n] for n in plan.needs if n in table]
    adopted = await _live(session, case.id, "adopted")
    plan.status = "adopted"
    return await _adopt(session, case, plan, chosen, adopted, principal, now)


async def _department_referral(
    session: AsyncSession, case: Case, department: str, principal: Principal, now: datetime
) -> Referral:
    """The case's live referral with the department, made now if it has none."""
    found = await session.scalar(
        select(Referral).where(
            Referral.case_id == case.id,
            Referral.department_code == department,
            Referral.status.in_(ACTIVE),
        )
    )
    if found is not None:
        return found
    target = await plan_routes_for(session, case, department, None)
    made = await create_referrals(session, case, [target], principal.label, now)
    return await session.get(Referral, made[0])


async def _adopt(
    session: AsyncSession,
    case: Case,
    plan: CasePlan,
    chosen: list[Need],
    previous: CasePlan | None,
    principal: Principal,
    now: datetime,
) -> PlanView:
    plan.approved_by, plan.adopted_at = principal.id, now
    if previous is not None:
        previous.status = "superseded"
        old_items = await _items(session, previous.id)
        table = needs_table()
        change = replan([table[n] for n in previous.needs if n in table], chosen)
        dropped = set(change.dropped)
        why = f"帮扶计划调整：{plan.reason or '不再需要'}"
        for item in old_items:
            if item.department_code not in dropped or item.referral_id is None:
                continue
            referral = await session.get(Referral, item.referral_id, with_for_update=True)
            if referral is not None and referral.status in OPEN:
                await withdraw(session, case, referral, why, principal.label, now)
                dropped.discard(item.department_code)
    items: list[CasePlanItem] = []
    status: dict[int, str] = {}
    for need in chosen:
        referral = await _department_referral(session, case, need.lead, principal, now)
        set_plan_due(referral, need.due, now, effective_risk(case))
        status[referral.id] = referral.status
        items.append(
            CasePlanItem(
                plan_id=plan.id,
                need=need.name,
                department_code=need.lead,
                cooperating=list(need.cooperating),
                referral_id=referral.id,
                due_at=referral.plan_due_at,
            )
        )
    session.add_all(items)
    labels = department_labels()
    who = "、".join(dict.fromkeys(labels.get(i.department_code, i.department_code) for i in items))
    session.add(_event(case, "plan_adopted", principal, now, f"帮扶计划实施，转介{who}", plan))
    await session.flush()
    return PlanView(plan, items, status)


async def current_plan(session: AsyncSession, case_id: int) -> PlanView | None:
    """The waiting plan if there is one, else the adopted one, with each referral's state."""
    plan = await session.scalar(
        select(CasePlan)
        .where(CasePlan.case_id == case_id, CasePlan.status.in_(LIVE))
        .order_by(CasePlan.version.desc())
        .limit(1)
    )
    if plan is None:
        return None
    items = await _items(session, plan.id)
    ids = [i.referral_id for i in items if i.referral_id]
    rows = await session.execute(
        select(Referral.id, Referral.status).where(Referral.id.in_(ids or [0]))
    )
    return PlanView(plan, items, {rid: state for rid, state in rows})
