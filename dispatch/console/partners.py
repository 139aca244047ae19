"""The partner loop for the center's supervisors and administrators: each partner's
feedback line (what waits, why the head waits), recent status messages with every delivery
attempt, a retry by hand once the partner is back, and the callers' 回访 satisfaction."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from channels.web import client_ip, sessions
from db.engine import transaction
from dispatch.console.web import ConsoleRoute, ConsoleUser, RowId, as_user, render, staff, submit
from dispatch.partners import service as partners
from dispatch.staff.permissions import PARTNER_MANAGE

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)

OVERSIGHT = staff(PARTNER_MANAGE)


@router.get("/partners", response_class=HTMLResponse)
async def partners_home(
    request: Request,
    user: Annotated[ConsoleUser, Depends(OVERSIGHT)],
    state: str = "undelivered",
):
    state = state if state in ("undelivered", "delivered", "all") else "undelivered"
    async with transaction(sessions(request)) as session:
        lines = await partners.partner_lines(session=session)
        messages = await partners.partner_messages(
            session=session, principal=user.principal, ip=client_ip(request), state=state
        )
        stats = await partners.forward_stats(session=session)
    return render(
        request,
        user,
        "partners.html",
        {"lines": lines.items, "messages": messages.items, "stats": stats, "state": state},
    )


@router.get("/partners/messages/{message_id}", response_class=HTMLResponse)
async def partner_message(
    request: Request, message_id: RowId, user: Annotated[ConsoleUser, Depends(OVERSIGHT)]
):
    message = await as_user(request, user, partners.partner_message, message_id=message_id)
    return render(request, user, "partner_message.html", {"m": message})


@router.post("/partners/messages/{message_id}/retry")
async def retry(
    request: Request, message_id: RowId, user: Annotated[ConsoleUser, Depends(OVERSIGHT)]
) -> RedirectResponse:
    back = f"/console/partners/messages/{message_id}"
    done = "已安排立即重新发送（按顺序从最早未送达的消息开始）"
    return await submit(request, user, back, partners.retry_message, done, message_id=message_id)
