"""The partner loop for the center's supervisors and administrators: each partner's
feedback line (what waits, why the head waits), recent status messages with every delivery
attempt, a retry by hand once the partner is back, and the callers' 回访 satisfaction."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from dispatch.console.web import ConsoleRoute, ConsoleUser, act, read_form, render, staff
from dispatch.partners import api as partners_api

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)

OVERSIGHT = staff("supervisor", "admin", center=True)
MessageId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.get("/partners", response_class=HTMLResponse)
async def partners_home(
    request: Request,
    user: Annotated[ConsoleUser, Depends(OVERSIGHT)],
    state: str = "undelivered",
):
    state = state if state in ("undelivered", "delivered", "all") else "undelivered"
    lines = await partners_api.partner_lines(request)
    messages = await partners_api.partner_messages(request, user.principal, None, state, None, 100)
    stats = await partners_api.forward_stats(request, None, None)
    return render(
        request,
        user,
        "partners.html",
        {"lines": lines.items, "messages": messages.items, "stats": stats, "state": state},
    )


@router.get("/partners/messages/{message_id}", response_class=HTMLResponse)
async def partner_message(
    request: Request, message_id: MessageId, user: Annotated[ConsoleUser, Depends(OVERSIGHT)]
):
    message = await partners_api.partner_message(request, message_id, user.principal)
    return render(request, user, "partner_message.html", {"m": message})


@router.post("/partners/messages/{message_id}/retry")
async def retry(
    request: Request, message_id: MessageId, user: Annotated[ConsoleUser, Depends(OVERSIGHT)]
) -> RedirectResponse:
    await read_form(request, user)

    async def run() -> None:
        await partners_api.retry_message(request, message_id, user.principal)

    back = f"/console/partners/messages/{message_id}"
    return await act(request, user, back, run, "已安排立即重新发送（按顺序从最早未送达的消息开始）")
