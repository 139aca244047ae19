"""Staff API for SMS threads: read a texter's conversation and reply to it.

Center staff only (operators, caseworkers, supervisors), in the scope of the thread's case,
every read and reply audited (the operations: `dispatch.telephony.sms_service`).
"""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request

from channels.web import in_transaction, json_only
from db.columns import CASE_ID_MAX
from dispatch.staff.auth import Principal
from dispatch.staff.permissions import CASE_DESK, requires
from dispatch.telephony import sms_service
from dispatch.telephony.sms_service import MessageOut, ReplyIn, ThreadDetail, ThreadList

router = APIRouter(prefix="/api/v1/sms", tags=["sms"])
CENTER_STAFF = requires(CASE_DESK)


@router.get("/threads", response_model=ThreadList)
async def list_threads(
    request: Request,
    principal: Annotated[Principal, Depends(CENTER_STAFF)],
    case_id: Annotated[int | None, Query(ge=1, le=CASE_ID_MAX)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> ThreadList:
    """Most recent first; the numbers masked."""
    return await in_transaction(
        request, sms_service.list_threads, principal=principal, case_id=case_id, limit=limit,
        before_id=before_id
    )


@router.get("/threads/{thread_id}", response_model=ThreadDetail)
async def get_thread(
    request: Request,
    thread_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    principal: Annotated[Principal, Depends(CENTER_STAFF)],
) -> ThreadDetail:
    return await in_transaction(
        request, sms_service.get_thread, principal=principal, thread_id=thread_id
    )


@router.post(
    "/threads/{thread_id}/replies",
    status_code=202,
    response_model=MessageOut,
    dependencies=[Depends(json_only)],
)
async def reply(
    request: Request,
    thread_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    body: ReplyIn,
    principal: Annotated[Principal, Depends(CENTER_STAFF)],
) -> MessageOut:
    """Queue a reply to the texter (sent by the worker; its status follows Twilio's
    callbacks). 409 when the texter has opted out."""
    return await in_transaction(
        request, sms_service.reply, principal=principal, thread_id=thread_id, body=body
    )
