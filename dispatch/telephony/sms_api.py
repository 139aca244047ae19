"""Staff API for SMS threads: read a texter's conversation and reply to it.

Center staff only (operators, caseworkers, supervisors), in the scope of the thread's case,
every read and reply audited (the operations: `dispatch.telephony.sms_service`).
"""

from fastapi import APIRouter, Depends

from channels.web import json_only
from dispatch.common.endpoints import CasePaging, CenterStaff, RowId
from dispatch.telephony import sms_service
from dispatch.telephony.sms_service import MessageOut, ReplyIn, ThreadDetail, ThreadList

router = APIRouter(prefix="/api/v1/sms", tags=["sms"])


@router.get("/threads", response_model=ThreadList)
async def list_threads(caller: CenterStaff, page: CasePaging) -> ThreadList:
    """Most recent first; the numbers masked."""
    return await caller.run(sms_service.list_threads, page=page)


@router.get("/threads/{thread_id}", response_model=ThreadDetail)
async def get_thread(thread_id: RowId, caller: CenterStaff) -> ThreadDetail:
    return await caller.run(sms_service.get_thread, thread_id=thread_id)


@router.post(
    "/threads/{thread_id}/replies",
    status_code=202,
    response_model=MessageOut,
    dependencies=[Depends(json_only)],
)
async def reply(thread_id: RowId, body: ReplyIn, caller: CenterStaff) -> MessageOut:
    """Queue a reply to the texter (sent by the worker; its status follows Twilio's
    callbacks). 409 when the texter has opted out."""
    return await caller.run(sms_service.reply, thread_id=thread_id, body=body)
