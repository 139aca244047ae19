"""The operators' call-back list, for the JSON API and the console alike: voicemails, missed
emergency calls and callers who gave up waiting, most urgent first (due time from the task's
risk level). Numbers masked; audited."""

from datetime import datetime
from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db import clock
from db.telephony import VoiceCall, VoiceCallback
from dispatch.common.lookup import row_or_404
from dispatch.common.views import from_row
from dispatch.staff.audit import add_case_event, audit
from dispatch.staff.auth import Principal
from dispatch.telephony.scope import via_case
from workflows.errors import Conflict
from workflows.phones import mask_phone
from workflows.telephony.callback_policy import REASON_LABELS

OUTCOME_LABELS = {
    "reached": "已回电联系上",
    "no_answer": "回电无人接听",
    "unreachable": "号码无法接通",
}


class CallbackOut(BaseModel):
    id: int
    call_id: int
    call_sid: str
    phone: str  # masked
    case_id: int | None
    reason: str
    reason_label: str
    emergency: bool
    priority: str
    due_at: datetime
    overdue: bool
    status: str
    attempts: int
    outcome: str | None
    note: str | None
    created_at: datetime
    done_at: datetime | None


class CallbackList(BaseModel):
    items: list[CallbackOut]


class CallbackDetail(CallbackOut):
    phone_to_call: str


class AttemptIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # no_answer keeps the task on the list; reached and unreachable close it.
    outcome: Literal["reached", "no_answer", "unreachable"]
    note: Annotated[str | None, Field(default=None, max_length=2000)] = None


V = TypeVar("V", bound=CallbackOut)


def callback_out(task: VoiceCallback, call_sid: str, view: type[V] = CallbackOut, **values) -> V:
    """The task as `view` shows it: the number masked (`values` may add the number to dial)."""
    return from_row(
        view, task, call_sid=call_sid, phone=mask_phone(task.phone),
        reason_label=REASON_LABELS.get(task.reason, task.reason),
        overdue=task.status == "pending" and task.due_at < clock.now(), **values,
    )


def scoped_callbacks(principal: Principal):
    return (
        select(VoiceCallback, VoiceCall.call_sid)
        .join(VoiceCall, VoiceCall.id == VoiceCallback.call_id)
        .where(via_case(VoiceCallback.case_id, principal))
    )


async def list_callbacks(
    *,
    session: AsyncSession,
    principal: Principal,
    ip: str | None,
    status: Literal["pending", "done"] = "pending",
    limit: int = 50,
) -> CallbackList:
    """Pending: emergency callers first, then by due time. Done: most recent first."""
    stmt = scoped_callbacks(principal).where(VoiceCallback.status == status).limit(limit)
    if status == "pending":
        stmt = stmt.order_by(VoiceCallback.emergency.desc(), VoiceCallback.due_at)
    else:
        stmt = stmt.order_by(VoiceCallback.done_at.desc())
    rows = (await session.execute(stmt)).all()
    audit(session, principal, "callback.list", "call", None, detail={"count": len(rows)}, ip=ip)
    return CallbackList(items=[callback_out(t, sid) for t, sid in rows])


async def _load(
    session: AsyncSession, principal: Principal, callback_id: int, *, lock: bool = False
):
    stmt = scoped_callbacks(principal).where(VoiceCallback.id == callback_id)
    stmt = stmt.with_for_update(of=VoiceCallback) if lock else stmt
    return await row_or_404(session, stmt, "callback_not_found", "未找到该回电任务")


async def read_callback(
    *, session: AsyncSession, principal: Principal, ip: str | None, callback_id: int
) -> CallbackDetail:
    """One task, with the number to dial."""
    task, call_sid = await _load(session, principal, callback_id)
    audit(session, principal, "callback.read", "call", task.call_id, ip=ip)
    return callback_out(task, call_sid, CallbackDetail, phone_to_call=task.phone)


async def record_attempt(
    *, session: AsyncSession, principal: Principal, ip: str | None, callback_id: int,
    body: AttemptIn,
) -> CallbackOut:
    """An operator called back. 409 once the task is done."""
    now = clock.now()
    task, call_sid = await _load(session, principal, callback_id, lock=True)
    if task.status != "pending":
        raise Conflict("callback_done", "该回电任务已完成")
    task.attempts += 1
    task.outcome, task.note, task.updated_at = body.outcome, body.note, now
    if body.outcome != "no_answer":
        task.status, task.done_at, task.done_by = "done", now, principal.id
    if task.case_id is not None:
        add_case_event(
            session, principal, task.case_id, "callback_attempt",
            reason=OUTCOME_LABELS[body.outcome],
            data={"callback_id": task.id, "outcome": body.outcome},
            created_at=now,
        )
    audit(session, principal, "callback.attempt", "call", task.call_id,
          detail={"outcome": body.outcome}, ip=ip)
    return callback_out(task, call_sid)
