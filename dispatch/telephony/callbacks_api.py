"""The operators' call-back list: voicemails, missed emergency calls and callers who gave up
waiting, most urgent first (due time from the task's risk level), and recording the calls
back.

The list shows numbers masked; opening one task shows the number to dial, and is audited.
"""

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from channels import clock
from channels.errors import ApiError
from channels.web import json_only, sessions
from db.models import CaseEvent
from db.telephony import VoiceCall, VoiceCallback
from dispatch.staff.audit import audit
from dispatch.staff.auth import Principal, require_center
from dispatch.telephony.scope import via_case
from workflows.phones import mask_phone
from workflows.telephony.callback_policy import REASON_LABELS

router = APIRouter(prefix="/api/v1/voice/callbacks", tags=["voice"])
CENTER_STAFF = require_center("operator", "caseworker", "supervisor")
CallbackId = Annotated[int, Path(ge=1, le=2**31 - 1)]
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


def _out(task: VoiceCallback, call_sid: str) -> dict:
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


def _query(principal: Principal):
    return (
        select(VoiceCallback, VoiceCall.call_sid)
        .join(VoiceCall, VoiceCall.id == VoiceCallback.call_id)
        .where(via_case(VoiceCallback.case_id, principal))
    )


@router.get("", response_model=CallbackList)
async def list_callbacks(
    request: Request,
    principal: Annotated[Principal, Depends(CENTER_STAFF)],
    status: Literal["pending", "done"] = "pending",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> CallbackList:
    """Pending: emergency callers first, then by due time. Done: most recent first."""
    stmt = _query(principal).where(VoiceCallback.status == status).limit(limit)
    if status == "pending":
        stmt = stmt.order_by(VoiceCallback.emergency.desc(), VoiceCallback.due_at)
    else:
        stmt = stmt.order_by(VoiceCallback.done_at.desc())
    async with sessions(request)() as session, session.begin():
        rows = (await session.execute(stmt)).all()
        audit(session, principal, "callback.list", "call", None, request, {"count": len(rows)})
    return CallbackList(items=[CallbackOut(**_out(t, sid)) for t, sid in rows])


async def _load(session, principal: Principal, callback_id: int, *, lock: bool = False):
    stmt = _query(principal).where(VoiceCallback.id == callback_id)
    row = (await session.execute(stmt.with_for_update(of=VoiceCallback) if lock else stmt)).first()
    if row is None:
        raise ApiError(404, "callback_not_found", "未找到该回电任务")
    return row


@router.get("/{callback_id}", response_model=CallbackDetail)
async def get_callback(
    request: Request,
    callback_id: CallbackId,
    principal: Annotated[Principal, Depends(CENTER_STAFF)],
) -> CallbackDetail:
    """One task, with the number to dial."""
    async with sessions(request)() as session, session.begin():
        task, call_sid = await _load(session, principal, callback_id)
        audit(session, principal, "callback.read", "call", task.call_id, request)
    return CallbackDetail(**_out(task, call_sid), phone_to_call=task.phone)


@router.post(
    "/{callback_id}/attempts", response_model=CallbackOut, dependencies=[Depends(json_only)]
)
async def record_attempt(
    request: Request,
    callback_id: CallbackId,
    body: AttemptIn,
    principal: Annotated[Principal, Depends(CENTER_STAFF)],
) -> CallbackOut:
    """An operator called back. 409 once the task is done."""
    now = clock.now()
    async with sessions(request)() as session, session.begin():
        task, call_sid = await _load(session, principal, callback_id, lock=True)
        if task.status != "pending":
            raise ApiError(409, "callback_done", "该回电任务已完成")
        task.attempts += 1
        task.outcome, task.note, task.updated_at = body.outcome, body.note, now
        if body.outcome != "no_answer":
            task.status, task.done_at, task.done_by = "done", now, principal.id
        if task.case_id is not None:
            session.add(
                CaseEvent(
                    case_id=task.case_id,
                    event="callback_attempt",
                    actor=principal.label,
                    actor_id=principal.id,
                    reason=OUTCOME_LABELS[body.outcome],
                    data={"callback_id": task.id, "outcome": body.outcome},
                    created_at=now,
                )
            )
        audit(
            session,
            principal,
            "callback.attempt",
            "call",
            task.call_id,
            request,
            {"outcome": body.outcome},
        )
    return CallbackOut(**_out(task, call_sid))
