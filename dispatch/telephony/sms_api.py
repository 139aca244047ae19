"""Staff API for SMS threads: read a texter's conversation and reply to it.

Center staff only (operators, caseworkers, supervisors), in the scope of the thread's case,
every read and reply audited. The texter's number is never shown: replies go to it through
the thread, and lists show it masked.
"""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import func, select

from channels import clock
from channels.errors import ApiError
from channels.sms.optouts import is_opted_out
from channels.sms.outbound import queue_reply
from channels.web import json_only, sessions
from db.models import Case
from db.telephony import SmsMessage, SmsOptOut, SmsThread
from dispatch.staff.audit import audit
from dispatch.staff.auth import Principal, require_center
from dispatch.telephony.scope import via_case
from workflows.config import load
from workflows.phones import mask_phone
from workflows.telephony.sms_threading import ENDED_CASE_STATES, active_since

router = APIRouter(prefix="/api/v1/sms", tags=["sms"])
CENTER_STAFF = require_center("operator", "caseworker", "supervisor")


class ThreadSummary(BaseModel):
    id: int
    case_id: int
    report_id: int
    phone: str  # masked
    opened_at: datetime
    last_message_at: datetime
    # Whether a new message from the texter would still join this thread.
    active: bool
    opted_out: bool
    message_count: int


class ThreadList(BaseModel):
    items: list[ThreadSummary]
    next_before_id: int | None


class MessageOut(BaseModel):
    id: int
    direction: str
    kind: str
    body: str
    media: list[str] | None
    status: str
    error: str | None
    # What the hotline answered automatically (receipt, keyword confirmations).
    auto_reply: str | None
    author_id: int | None
    created_at: datetime
    updated_at: datetime


class ThreadDetail(ThreadSummary):
    messages: list[MessageOut]


class ReplyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: Annotated[str, Field(min_length=1, max_length=1600)]

    @field_validator("text")
    @classmethod
    def _text(cls, value: str) -> str:
        value = value.strip()
        if not value or len(value) > int(load("channels")["sms"]["max_reply_chars"]):
            raise ValueError("reply empty or too long")
        return value


def _summary(thread: SmsThread, state: str, opted_out: bool, count: int) -> dict:
    return {
        "id": thread.id,
        "case_id": thread.case_id,
        "report_id": thread.report_id,
        "phone": mask_phone(thread.phone),
        "opened_at": thread.opened_at,
        "last_message_at": thread.last_message_at,
        "active": thread.last_message_at > active_since(clock.now())
        and state not in ENDED_CASE_STATES,
        "opted_out": opted_out,
        "message_count": count,
    }


def _message(m: SmsMessage) -> MessageOut:
    return MessageOut(
        id=m.id,
        direction=m.direction,
        kind=m.kind,
        body=m.body,
        media=m.media,
        status=m.status,
        error=m.error,
        auto_reply=m.reply,
        author_id=m.author_id,
        created_at=m.created_at,
        updated_at=m.updated_at,
    )


@router.get("/threads", response_model=ThreadList)
async def list_threads(
    request: Request,
    principal: Annotated[Principal, Depends(CENTER_STAFF)],
    case_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> ThreadList:
    """Most recent first; the numbers masked."""
    count = (
        select(func.count())
        .where(SmsMessage.thread_id == SmsThread.id)
        .correlate(SmsThread)
        .scalar_subquery()
    )
    opted = select(SmsOptOut.phone).where(SmsOptOut.phone == SmsThread.phone).exists()
    stmt = (
        select(SmsThread, Case.state, opted, count)
        .join(Case, Case.id == SmsThread.case_id)
        .where(via_case(SmsThread.case_id, principal))
        .order_by(SmsThread.id.desc())
        .limit(limit)
    )
    if case_id:
        stmt = stmt.where(SmsThread.case_id == case_id)
    if before_id:
        stmt = stmt.where(SmsThread.id < before_id)
    async with sessions(request)() as session, session.begin():
        rows = (await session.execute(stmt)).all()
        audit(session, principal, "sms.list", "case", case_id, request, {"count": len(rows)})
    items = [ThreadSummary(**_summary(t, state, o, n)) for t, state, o, n in rows]
    more = len(items) == limit
    return ThreadList(items=items, next_before_id=items[-1].id if more and items else None)


async def _thread(session, principal: Principal, thread_id: int, *, lock: bool = False):
    stmt = (
        select(SmsThread, Case.state)
        .join(Case, Case.id == SmsThread.case_id)
        .where(SmsThread.id == thread_id, via_case(SmsThread.case_id, principal))
    )
    row = (await session.execute(stmt.with_for_update(of=SmsThread) if lock else stmt)).first()
    if row is None:
        raise ApiError(404, "thread_not_found", "未找到该短信会话")
    return row


@router.get("/threads/{thread_id}", response_model=ThreadDetail)
async def get_thread(
    request: Request,
    thread_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    principal: Annotated[Principal, Depends(CENTER_STAFF)],
) -> ThreadDetail:
    async with sessions(request)() as session, session.begin():
        thread, state = await _thread(session, principal, thread_id)
        messages = (
            (
                await session.execute(
                    select(SmsMessage)
                    .where(SmsMessage.thread_id == thread.id)
                    .order_by(SmsMessage.id)
                )
            )
            .scalars()
            .all()
        )
        opted_out = await is_opted_out(session, thread.phone)
        audit(
            session, principal, "sms.read", "case", thread.case_id, request, {"thread": thread.id}
        )
    return ThreadDetail(
        **_summary(thread, state, opted_out, len(messages)),
        messages=[_message(m) for m in messages],
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
    now = clock.now()
    async with sessions(request)() as session, session.begin():
        thread, _ = await _thread(session, principal, thread_id, lock=True)
        message = await queue_reply(
            session, thread, body.text, author_id=principal.id, actor=principal.label, now=now
        )
        audit(
            session,
            principal,
            "sms.reply",
            "case",
            thread.case_id,
            request,
            {"thread": thread.id, "message": message.id},
        )
    return _message(message)
