"""The supervisors' deadline board: referrals due soon, overdue (督办) and flagged (挂牌督办),
shares waiting to be routed, follow-up visits past due. A department's supervisor sees
their department's referrals; the center's, everything in their jurisdiction's subtree."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import ColumnElement, func, literal_column, or_, select
from sqlalchemy import case as when
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from channels.web import sessions
from db import clock
from db.models import Case, Referral
from dispatch.console.web import ConsoleRoute, ConsoleUser, audit_list, render, staff
from dispatch.console.worklist import overdue_visits, referrals_to_route
from dispatch.staff.auth import Principal
from dispatch.staff.permissions import SUPERVISION
from dispatch.staff.scope import referral_filter
from workflows.holidays import calendar_warning
from workflows.referrals.deadlines import FLAGGED

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)

SUPERVISOR = staff(SUPERVISION)
SOON = timedelta(hours=4)


@dataclass(frozen=True)
class BoardItem:
    referral: Referral
    case: Case
    due_at: datetime


@dataclass
class Board:
    """Each section's most urgent items (at most `limit`) and how many there are in all."""

    flagged: list[BoardItem]
    overdue: list[BoardItem]
    soon: list[BoardItem]
    counts: dict[str, int]
    limit: int


# Constants written into the SQL, not bound: the partial and expression indexes of migration
# 0006 are matched by the planner only against literal SQL.
_OPEN = Referral.status.in_((literal_column("'queued'"), literal_column("'claimed'")))
_RUNNING_DUE = when(
    (Referral.status == literal_column("'queued'"), Referral.claim_due_at),
    else_=Referral.action_due_at,
)
_ESCALATED = Referral.escalation > literal_column("0")
_FLAGGED = Referral.escalation >= literal_column(str(FLAGGED))
_NOT_FLAGGED = Referral.escalation < literal_column(str(FLAGGED))


async def _items(
    session: AsyncSession, principal: Principal, *where: ColumnElement[bool], limit: int
) -> list[BoardItem]:
    case = aliased(Case)  # not `Case`: the scope filter's own subquery on it must not correlate
    rows = await session.execute(
        select(Referral, case, _RUNNING_DUE.label("due"))
        .join(case, case.id == Referral.case_id)
        .where(_OPEN, *where, referral_filter(principal))
        .order_by(_RUNNING_DUE, Referral.id)
        .limit(limit)
    )
    return [BoardItem(referral, of_case, due_at) for referral, of_case, due_at in rows.all()]


async def deadline_board(
    session: AsyncSession, principal: Principal, now: datetime, *, limit: int = 100
) -> Board:
    """Open referrals by their running deadline (claim while queued, first action once
    claimed), most urgent first: flagged (挂牌督办) whatever the deadline; then the overdue;
    then those due within SOON or already warned. Each section is read on its own, so a
    flood of overdue referrals never pushes the flagged ones off the board."""
    flagged = await _items(session, principal, _ESCALATED, _FLAGGED, limit=limit)
    overdue = await _items(session, principal, _NOT_FLAGGED, _RUNNING_DUE <= now, limit=limit)
    due_soon = await _items(
        session,
        principal,
        _NOT_FLAGGED,
        _RUNNING_DUE > now,
        _RUNNING_DUE <= now + SOON,
        limit=limit,
    )
    warned_later = await _items(
        session, principal, _ESCALATED, _NOT_FLAGGED, _RUNNING_DUE > now + SOON, limit=limit
    )
    soon = (due_soon + warned_later)[:limit]  # the second list's deadlines are all later
    counts = await deadline_counts(session, now, referral_filter(principal))
    return Board(flagged, overdue, soon, counts, limit)


async def deadline_counts(
    session: AsyncSession, now: datetime, *where: ColumnElement[bool]
) -> dict[str, int]:
    """How many open referrals are flagged, overdue and due soon: the board's section
    counts (within a scope), and the city's for `/metrics` (no scope)."""
    counted = (
        await session.execute(
            select(
                func.count().filter(_FLAGGED),
                func.count().filter(_NOT_FLAGGED, _RUNNING_DUE <= now),
                func.count().filter(_NOT_FLAGGED, _RUNNING_DUE > now),
            ).where(_OPEN, or_(_RUNNING_DUE <= now + SOON, _ESCALATED), *where)
        )
    ).one()
    return dict(zip(("flagged", "overdue", "soon"), counted, strict=True))


@router.get("/board", response_class=HTMLResponse)
async def board_page(request: Request, user: Annotated[ConsoleUser, Depends(SUPERVISOR)]):
    principal = user.principal
    now = clock.now()
    async with sessions(request)() as session, session.begin():
        board = await deadline_board(session, principal, now)
        to_route = await referrals_to_route(session, principal) if principal.is_center else []
        late_visits = await overdue_visits(session, principal, now)
        items = board.flagged + board.overdue + board.soon
        ids = [i.case.id for i in items] + [c.id for _, c in to_route + late_visits]
        audit_list(session, principal, request, "case", ids)
    return render(
        request,
        user,
        "board.html",
        {
            "board": board,
            "to_route": to_route,
            "late_visits": late_visits,
            "now": now,
            "calendar_warning": calendar_warning(now.date()),
        },
    )
