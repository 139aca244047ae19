"""The operators' call-back list, for the JSON API and the console alike: voicemails, missed
emergency calls and callers who gave up waiting, most urgent first (due time from the task's
risk level). Numbers masked; audited."""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db import clock
from db.telephony import VoiceCall, VoiceCallback
from dispatch.staff.audit import audit
from dispatch.staff.auth import Principal
from dispatch.telephony.scope import via_case
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


def callback_fields(task: VoiceCallback, call_sid: str) -> dict:
    return {
        "id": task.id,
        "call_id": task.call_id,
        "call_sid": call_sid,
        "phone": mask_phone(task.phone),
        "case_id": task.case_id,
        "reason": task.reason,
        "reason_label": REASON_LABELS.get(task.reason, task.reason),
        "emergency": task.emergency,
        "priority": task.priority,
        "due_at": task.due_at,
        "overdue": task.status == "pending" and task.due_at < clock.now(),
        "status": task.status,
        "attempts": task.attempts,
        "outcome": task.outcome,
        "note": task.note,
        "created_at": task.created_at,
        "done_at": task.done_at,
    }


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
    return CallbackList(items=[CallbackOut(**callback_fields(t, sid)) for t, sid in rows])
