"""Driving a case through its workflow: one transaction per transition.

The rules (which event is allowed from which state, and with what) are in
`workflows.cases.workflow`; this module loads the facts they need, applies the result and its
consequences (routing on registration, a first visit on follow-up, cancelled referrals on
closing), and records the case event, audit row and outbox rows together.
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from channels.errors import ApiError
from db.models import Case, CaseEvent, Outbox, Referral, Visit
from dispatch.referrals.deadlines import effective_risk
from dispatch.referrals.routing import plan_routes
from dispatch.referrals.service import ACTIVE, cancel_open, create_referrals
from workflows.cases.workflow import CaseFacts, apply_case_event
from workflows.errors import WorkflowRefused
from workflows.referrals.deadlines import next_visit_due

# Who may send which event. Default deny: an event not listed is refused for everyone.
EVENT_ROLES = {
    "register": {"operator", "caseworker", "supervisor", "system"},
    "assess": {"caseworker", "supervisor", "system"},
    "handle": {"caseworker", "supervisor"},
    "follow_up": {"caseworker", "supervisor"},
    "reassess": {"caseworker", "supervisor"},
    "close": {"caseworker", "supervisor"},
    "reopen": {"caseworker", "supervisor"},
    "merge": {"caseworker", "supervisor"},
    "invalidate": {"operator", "caseworker", "supervisor"},
}
TERMINAL = ("closed", "merged", "invalid")


@dataclass
class Actor:
    """Who acts: a staff member, or the system itself (role 'system')."""

    name: str
    role: str
    user_id: int | None = None


async def facts_of(session: AsyncSession, case: Case) -> CaseFacts:
    referrals = await session.scalar(
        select(func.count()).where(Referral.case_id == case.id, Referral.status.in_(ACTIVE))
    )
    visits = await session.scalar(
        select(func.count()).where(Visit.case_id == case.id, Visit.visited_at.is_not(None))
    )
    return CaseFacts(
        id=case.id,
        state=case.state,
        risk_level=case.risk_level,
        referral_count=referrals or 0,
        visit_count=visits or 0,
    )


def refused(exc: WorkflowRefused) -> ApiError:
    status = 409 if exc.code == "transition_not_allowed" else 422
    if exc.code in ("override_not_allowed",):
        status = 403
    if exc.code in ("risk_level_required", "referral_required", "follow_up_visit_required"):
        status = 409
    return ApiError(status, exc.code, exc.message)


async def _drop_planned_visits(session: AsyncSession, case: Case) -> None:
    await session.execute(delete(Visit).where(Visit.case_id == case.id, Visit.visited_at.is_(None)))


async def plan_visit(session: AsyncSession, case: Case, since: datetime) -> Visit:
    """Cancel the planned visit (if any) and plan the next at the risk level's interval."""
    await _drop_planned_visits(session, case)
    visit = Visit(case_id=case.id, due_at=next_visit_due(since, effective_risk(case)))
    session.add(visit)
    return visit


async def transition(
    session: AsyncSession,
    case: Case,
    event: str,
    actor: Actor,
    now: datetime,
    *,
    reason: str | None = None,
    into_case: Case | None = None,
    override: bool = False,
) -> str:
    """Apply one workflow event to a locked case row; returns the new state."""
    if actor.role not in EVENT_ROLES.get(event, set()):
        if event not in EVENT_ROLES:
            raise ApiError(422, "unknown_event", "未知的流程操作")
        raise ApiError(403, "forbidden", "您的角色不能执行此操作")
    facts = await facts_of(session, case)
    try:
        new_state = apply_case_event(
            facts,
            event,
            reason=reason,
            into_case_id=into_case.id if into_case else None,
            override=override,
            actor_role=actor.role,
        )
    except WorkflowRefused as exc:
        raise refused(exc) from exc
    old_state = case.state
    case.state = new_state
    case.updated_at = now
    data: dict = {}
    if event == "merge" and into_case is not None:
        case.merged_into_id = into_case.id
        data["into_case_id"] = into_case.id
    if override:
        data["override"] = True
    session.add(
        CaseEvent(
            case_id=case.id,
            event=event,
            from_state=old_state,
            to_state=new_state,
            actor=actor.name,
            actor_id=actor.user_id,
            reason=reason,
            data=data or None,
            created_at=now,
        )
    )
    if event == "register":
        await create_referrals(session, case, await plan_routes(session, case), actor.name, now)
    elif event == "follow_up":
        await plan_visit(session, case, now)
    elif new_state in TERMINAL:
        await cancel_open(session, case, actor.name, now)
        await _drop_planned_visits(session, case)
    session.add(
        Outbox(
            topic="case.status", payload={"case_id": case.id, "state": new_state, "event": event}
        )
    )
    return new_state
