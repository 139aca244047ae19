"""Staff API of the partner loop: feedback lines, messages and their delivery attempts, a
retry by hand, and the forwards' figures (the operations: `dispatch.partners.service`)."""

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from channels.web import sessions
from db.engine import transaction
from dispatch.common.endpoints import CaseFilter, RowId, acting
from dispatch.partners import service
from dispatch.partners.service import (
    FIRST,
    LAST,
    DeliveryState,
    ForwardStats,
    MessageDetail,
    MessageList,
    PartnerLines,
    Source,
)
from dispatch.staff.permissions import PARTNER_MANAGE, PARTNER_READ, requires

router = APIRouter(prefix="/api/v1", tags=["forwards"])
READERS = requires(PARTNER_READ)
Readers = acting(READERS)
Managers = acting(requires(PARTNER_MANAGE))


@router.get("/partners", response_model=PartnerLines, dependencies=[Depends(READERS)])
async def partner_lines(request: Request) -> PartnerLines:
    """Each partner's feedback line: how much waits, and why the first in line waits."""
    async with transaction(sessions(request)) as session:
        return await service.partner_lines(session=session)


@router.get("/partners/messages", response_model=MessageList)
async def partner_messages(
    caller: Readers,
    source: Annotated[Source | None, Query()] = None,
    state: Annotated[DeliveryState, Query()] = "all",
    case_id: CaseFilter = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> MessageList:
    """Status messages, newest first, with their delivery state."""
    return await caller.run(
        service.partner_messages, source=source, state=state, case_id=case_id, limit=limit
    )


@router.get("/partners/messages/{message_id}", response_model=MessageDetail)
async def partner_message(message_id: RowId, caller: Readers) -> MessageDetail:
    """One message with every attempt to deliver it."""
    return await caller.run(service.partner_message, message_id=message_id)


@router.post("/partners/messages/{message_id}/retry", status_code=202)
async def retry_message(message_id: RowId, caller: Managers) -> dict[str, bool]:
    """Try the partner's line again now, without waiting out the backoff (after the partner
    says it is back, say). Order is kept: the line restarts from its head."""
    return await caller.run(service.retry_message, message_id=message_id)


@router.get("/forwards/stats", response_model=ForwardStats, dependencies=[Depends(READERS)])
async def forward_stats(
    request: Request,
    since: Annotated[date | None, Query(description="起始日期（含）", ge=FIRST, le=LAST)] = None,
    until: Annotated[date | None, Query(description="截止日期（含）", ge=FIRST, le=LAST)] = None,
) -> ForwardStats:
    """Per source over a period (China dates, by the day the order arrived): orders,
    updates, 退回, 办结, feedback delivery, and the 回访 satisfaction with its rate."""
    async with transaction(sessions(request)) as session:
        return await service.forward_stats(session=session, since=since, until=until)
