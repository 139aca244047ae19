"""SMS conversations with texters, for the center's desk: the list (numbers masked), one
conversation, and a reply, all through the SMS staff API (scope, opt-outs, audit)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from dispatch.console.web import (
    ConsoleRoute,
    ConsoleUser,
    act,
    read_form,
    render,
    staff,
    text_field,
)
from dispatch.telephony import sms_api

router = APIRouter(prefix="/console/sms", route_class=ConsoleRoute, include_in_schema=False)

DESK = staff("operator", "caseworker", "supervisor", center=True)
ThreadId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.get("", response_class=HTMLResponse)
async def threads(
    request: Request,
    user: Annotated[ConsoleUser, Depends(DESK)],
    before: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
):
    page = await sms_api.list_threads(request, user.principal, None, 50, before)
    return render(request, user, "sms_list.html", {"page": page})


@router.get("/{thread_id}", response_class=HTMLResponse)
async def thread(
    request: Request, thread_id: ThreadId, user: Annotated[ConsoleUser, Depends(DESK)]
):
    detail = await sms_api.get_thread(request, thread_id, user.principal)
    return render(request, user, "sms_thread.html", {"t": detail})


@router.post("/{thread_id}/reply")
async def reply(
    request: Request, thread_id: ThreadId, user: Annotated[ConsoleUser, Depends(DESK)]
) -> RedirectResponse:
    form = await read_form(request, user)

    async def run() -> None:
        body = sms_api.ReplyIn(text=text_field(form, "text", 1600))
        await sms_api.reply(request, thread_id, body, user.principal)

    return await act(request, user, f"/console/sms/{thread_id}", run, "回复已提交发送")
