"""SMS conversations with texters, for the center's desk: the list (numbers masked), one
conversation, and a reply, all through the SMS service the staff API uses too (scope,
opt-outs, audit)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.datastructures import FormData

from dispatch.common.paging import CasePage
from dispatch.console import web
from dispatch.staff.permissions import CASE_DESK
from dispatch.telephony import sms_service

router = APIRouter(prefix="/console/sms", route_class=web.ConsoleRoute, include_in_schema=False)

DESK = web.staff(CASE_DESK)


@router.get("", response_class=HTMLResponse)
async def threads(
    request: Request,
    user: Annotated[web.ConsoleUser, Depends(DESK)],
    before: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
):
    page = await web.as_user(
        request, user, sms_service.list_threads, page=CasePage(before_id=before)
    )
    return web.render(request, user, "sms_list.html", {"page": page})


@router.get("/{thread_id}", response_class=HTMLResponse)
async def thread(
    request: Request, thread_id: web.RowId, user: Annotated[web.ConsoleUser, Depends(DESK)]
):
    detail = await web.as_user(request, user, sms_service.get_thread, thread_id=thread_id)
    return web.render(request, user, "sms_thread.html", {"t": detail})


def _reply(form: FormData) -> dict:
    return {"body": sms_service.ReplyIn(**web.texts(form, text=1600))}


@router.post("/{thread_id}/reply")
async def reply(
    request: Request, thread_id: web.RowId, user: Annotated[web.ConsoleUser, Depends(DESK)]
) -> RedirectResponse:
    back, done = f"/console/sms/{thread_id}", "回复已提交发送"
    return await web.submit(
        request, user, back, sms_service.reply, done, _reply, thread_id=thread_id
    )
