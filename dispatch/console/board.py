"""The supervisors' deadline board: referrals due soon, overdue (督办) and flagged (挂牌督办),
shares waiting to be routed, follow-up visits past due. A department's supervisor sees
their department's referrals; the center's, everything in their jurisdiction's subtree."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import case as when
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from channels.web import sessions
from db.models import Case, Referral
from dispatch.audit import audit
from dispatch.auth import Principal
from dispatch.console.web import ConsoleRoute, ConsoleUser, render, shown, staff
from dispatch.console.worklist import overdue_visits, referrals_to_route
from dispatch.deadlines import FLAGGED
from dispatch.scope import referral_filter

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)

SUPERVISOR = staff("supervisor")
SOON = timedelta(hours=4)


@dataclass(frozen=True)
class BoardItem:
    referral: Referral
    case: Case
    due_at: datetime


@dataclass
class Board:
    flagged: list[BoardItem]
    overdue: list[BoardItem]
    soon: list[BoardItem]


async def deadline_board(
    session: AsyncSession, principal: Principal, now: datetime, *, limit: int = 300
) -> Board:
    """Open referrals whose running deadline (claim while queued, first action once
    claimed) is within SOON, has passed, or has been warned about; most urgent first."""
    due = when((Referral.status == "queued", Referral.claim_due_at), else_=Referral.action_due_at)
    case = aliased(Case)  # not `Case`: the scope filter's own subquery on it must not correlate
    rows = await session.execute(
        select(Referral, case, due.label("due"))
        .join(case, case.id == Referral.case_id)
        .where(
            Referral.status.in_(("queued", "claimed")),
            or_(due <= now + SOON, Referral.escalation > 0),
            referral_filter(principal),
        )
        .order_by(due)
        .limit(limit)
    )
    board = Board([], [], [])
    for referral, of_case, due_at in rows.all():
        item = BoardItem(referral, of_case, due_at)
        if referral.escalation >= FLAGGED:
            board.flagged.append(item)
        elif due_at <= now:
            board.overdue.append(item)
        else:
            board.soon.append(item)
    return board


@router.get("/board", response_class=HTMLResponse)
async def board_page(request: Request, user: Annotated[ConsoleUser, Depends(SUPERVISOR)]):
    principal = user.principal
    now = datetime.now(UTC)
    async with sessions(request)() as session, session.begin():
        board = await deadline_board(session, principal, now)
        to_route = await referrals_to_route(session, principal) if principal.is_center else []
        late_visits = await overdue_visits(session, principal, now)
        items = board.flagged + board.overdue + board.soon
        ids = [i.case.id for i in items] + [c.id for _, c in to_route + late_visits]
        audit(session, principal, "case.list", "case", None, request, shown(ids))
    return render(
        request,
        user,
        "board.html",
        {"board": board, "to_route": to_route, "late_visits": late_visits, "now": now},
    )
