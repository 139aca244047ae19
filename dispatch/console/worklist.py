"""What waits for the center's hand: cases to assess, referrals to route or re-route after a
return, follow-up visits past due. Shared by the caseworkers' list and the supervisors'
board; always within the viewer's scope."""

from datetime import datetime

from sqlalchemy import and_, exists, literal_column, select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from db.models import Case, Referral, Visit
from dispatch.staff.auth import Principal
from dispatch.staff.scope import case_filter, referral_filter
from workflows.cases.workflow import FINISHED


async def cases_in_states(
    session: AsyncSession, principal: Principal, states: tuple[str, ...], *, limit: int = 50
) -> list[Case]:
    """Emergencies first, then the oldest waiting (first come, first assessed)."""
    stmt = (
        select(Case)
        .where(Case.state.in_(states), case_filter(principal))
        .order_by(Case.emergency.desc(), Case.id)
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars())


async def referrals_to_route(
    session: AsyncSession, principal: Principal, *, limit: int = 100
) -> list[tuple[Referral, Case]]:
    """Unrouted shares, and returned ones whose department has no live referral since:
    both wait for the center to name an office. The latest per case and department."""
    live = aliased(Referral)
    replaced = exists(
        select(live.id).where(
            live.case_id == Referral.case_id,
            live.department_code == Referral.department_code,
            live.status.not_in(("returned", "cancelled")),
        )
    )
    case = aliased(Case)  # not `Case`: the scope filter's own subquery on it must not correlate
    stmt = (
        select(Referral, case)
        .join(case, case.id == Referral.case_id)
        .where(
            referral_filter(principal),
            case.state.not_in(FINISHED),
            # Constants inline, not bound: the partial index of migration 0006 matches them.
            Referral.status.in_((literal_column("'unrouted'"), literal_column("'returned'"))),
            (Referral.status == "unrouted") | and_(Referral.status == "returned", ~replaced),
        )
        .ext(distinct_on(Referral.case_id, Referral.department_code))
        .order_by(Referral.case_id, Referral.department_code, Referral.id.desc())
        .limit(limit)
    )
    return [(r, c) for r, c in (await session.execute(stmt)).all()]


async def overdue_visits(
    session: AsyncSession, principal: Principal, now: datetime, *, limit: int = 100
) -> list[tuple[Visit, Case]]:
    stmt = (
        select(Visit, Case)
        .join(Case, Case.id == Visit.case_id)
        .where(
            Visit.visited_at.is_(None),
            Visit.due_at < now,
            Case.state == "following_up",
            case_filter(principal),
        )
        .order_by(Visit.due_at)
        .limit(limit)
    )
    return [(v, c) for v, c in (await session.execute(stmt)).all()]
