"""Staff API of the partner loop: feedback lines, messages and their delivery attempts, a
retry by hand, and the forwards' figures (the operations: `dispatch.partners.service`)."""

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request

from channels.web import in_transaction, sessions
from db.columns import CASE_ID_MAX
from db.engine import transaction
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
from dispatch.staff.auth import Principal
from dispatch.staff.permissions import PARTNER_MANAGE, PARTNER_READ, requires

router = APIRouter(prefix="/api/v1", tags=["forwards"])
READERS = requires(PARTNER_READ)
MANAGERS = requires(PARTNER_MANAGE)
MessageId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.get("/partners", response_model=PartnerLines, dependencies=[Depends(READERS)])
async def partner_lines(request: Request) -> PartnerLines:
    """Each partner's feedback line: how much waits, and why the first in line waits."""
    async with transaction(sessions(request)) as session:
        return await service.partner_lines(session=session)


@router.get("/partners/messages", response_model=MessageList)
async def partner_messages(
    request: Request,
    principal: Annotated[Principal, Depends(READERS)],
    source: Annotated[Source | None, Query()] = None,
    state: Annotated[DeliveryState, Query()] = "all",
    case_id: Annotated[int | None, Query(ge=1, le=CASE_ID_MAX)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> MessageList:
    """Status messages, newest first, with their delivery state."""
    return await in_transaction(
        request, service.partner_messages, principal=principal, source=source, state=state,
        case_id=case_id, limit=limit
    )


@router.get("/partners/messages/{message_id}", response_model=MessageDetail)
async def partner_message(
    request: Request,
    message_id: MessageId,
    principal: Annotated[Principal, Depends(READERS)],
) -> MessageDetail:
    """One message with every attempt to deliver it."""
    return await in_transaction(
        request, service.partner_message, principal=principal, message_id=message_id
    )


@router.post("/partners/messages/{message_id}/retry", status_code=202)
async def retry_message(
    request: Request,
    message_id: MessageId,
    principal: Annotated[Principal, Depends(MANAGERS)],
) -> dict[str, bool]:
    """Try the partner's line again now, without waiting out the backoff (after the partner
    says it is back, say). Order is kept: the line restarts from its head."""
    return await in_transaction(
        request, service.retry_message, principal=principal, message_id=message_id
    )


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
