"""SMS threads for the center's desk: list, read and reply, scoped by the thread's case and
audited. The JSON API and the console pages both call these; they know no HTTP.

The texter's number is never shown: replies go to it through the thread, lists show it masked.
"""

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from channels.sms.optouts import is_opted_out
from channels.sms.outbound import queue_reply
from db import clock
from db.models import Case
from db.telephony import SmsMessage, SmsOptOut, SmsThread
from dispatch.common.lookup import row_or_404
from dispatch.common.paging import CasePage
from dispatch.common.views import from_row
from dispatch.staff.audit import audit
from dispatch.staff.auth import Principal
from dispatch.telephony.scope import via_case
from workflows import config
from workflows.phones import mask_phone
from workflows.telephony.sms_threading import ENDED_CASE_STATES, active_since


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
        if not value or len(value) > config.channels().sms.max_reply_chars:
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
    return from_row(MessageOut, m, auto_reply=m.reply)


async def list_threads(
    *, session: AsyncSession, principal: Principal, ip: str | None, page: CasePage = CasePage()
) -> ThreadList:
    """Most recent first; the numbers masked."""
    count = (
        select(func.count())
        .where(SmsMessage.thread_id == SmsThread.id)
        .correlate(SmsThread)
        .scalar_subquery()
    )
    opted = (
        select(SmsOptOut.phone_index).where(SmsOptOut.phone_index == SmsThread.phone_index)
    ).exists()
    stmt = (
        select(SmsThread, Case.state, opted, count)
        .join(Case, Case.id == SmsThread.case_id)
        .where(via_case(SmsThread.case_id, principal))
    )
    rows = (await session.execute(page.of(stmt, SmsThread))).all()
    detail = {"count": len(rows)}
    audit(session, principal, "sms.list", "case", page.case_id, detail=detail, ip=ip)
    items = [ThreadSummary(**_summary(t, state, o, n)) for t, state, o, n in rows]
    return ThreadList(items=items, next_before_id=page.next_before_id(items))


async def _thread(session, principal: Principal, thread_id: int, *, lock: bool = False):
    stmt = (
        select(SmsThread, Case.state)
        .join(Case, Case.id == SmsThread.case_id)
        .where(SmsThread.id == thread_id, via_case(SmsThread.case_id, principal))
    )
    stmt = stmt.with_for_update(of=SmsThread) if lock else stmt
    return await row_or_404(session, stmt, "thread_not_found", "未找到该短信会话")


async def get_thread(
    *, session: AsyncSession, principal: Principal, ip: str | None, thread_id: int
) -> ThreadDetail:
    thread, state = await _thread(session, principal, thread_id)
    messages = (
        (
            await session.execute(
                select(SmsMessage).where(SmsMessage.thread_id == thread.id).order_by(SmsMessage.id)
            )
        )
        .scalars()
        .all()
    )
    opted_out = await is_opted_out(session, thread.phone)
    audit(session, principal, "sms.read", "case", thread.case_id, detail={"thread": thread.id},
          ip=ip)
    return ThreadDetail(
        **_summary(thread, state, opted_out, len(messages)),
        messages=[_message(m) for m in messages],
    )


async def reply(
    *, session: AsyncSession, principal: Principal, ip: str | None, thread_id: int, body: ReplyIn
) -> MessageOut:
    """Queue a reply to the texter (sent by the worker; its status follows Twilio's
    callbacks). 409 when the texter has opted out."""
    now = clock.now()
    thread, _ = await _thread(session, principal, thread_id, lock=True)
    message = await queue_reply(
        session, thread, body.text, author_id=principal.id, actor=principal.label, now=now
    )
    audit(session, principal, "sms.reply", "case", thread.case_id,
          detail={"thread": thread.id, "message": message.id}, ip=ip)
    return _message(message)
