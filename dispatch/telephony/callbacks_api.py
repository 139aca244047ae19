"""The operators' call-back list: voicemails, missed emergency calls and callers who gave up
waiting, most urgent first (due time from the task's risk level), and recording the calls
back.

The list shows numbers masked; opening one task shows the number to dial, and is audited.
"""

from typing import Literal

from fastapi import APIRouter, Depends

from channels.web import json_only, sessions
from db import clock
from db.telephony import VoiceCallback
from dispatch.common.endpoints import Limit, RowId, acting
from dispatch.common.lookup import row_or_404
from dispatch.staff.audit import add_case_event, audit
from dispatch.staff.auth import Principal
from dispatch.staff.permissions import CASE_DESK, requires
from dispatch.telephony import callbacks_service
from dispatch.telephony.callbacks_service import (
    OUTCOME_LABELS,
    AttemptIn,
    CallbackDetail,
    CallbackList,
    CallbackOut,
    callback_fields,
    scoped_callbacks,
)
from workflows.errors import Conflict

router = APIRouter(prefix="/api/v1/voice/callbacks", tags=["voice"])
CenterStaff = acting(requires(CASE_DESK))


@router.get("", response_model=CallbackList)
async def list_callbacks(
    caller: CenterStaff, status: Literal["pending", "done"] = "pending", limit: Limit = 50
) -> CallbackList:
    """Pending: emergency callers first, then by due time. Done: most recent first."""
    return await caller.run(callbacks_service.list_callbacks, status=status, limit=limit)


async def _load(session, principal: Principal, callback_id: int, *, lock: bool = False):
    stmt = scoped_callbacks(principal).where(VoiceCallback.id == callback_id)
    stmt = stmt.with_for_update(of=VoiceCallback) if lock else stmt
    return await row_or_404(session, stmt, "callback_not_found", "未找到该回电任务")


@router.get("/{callback_id}", response_model=CallbackDetail)
async def get_callback(callback_id: RowId, caller: CenterStaff) -> CallbackDetail:
    """One task, with the number to dial."""
    request, principal = caller.request, caller.principal
    async with sessions(request)() as session, session.begin():
        task, call_sid = await _load(session, principal, callback_id)
        audit(session, principal, "callback.read", "call", task.call_id, request)
    return CallbackDetail(**callback_fields(task, call_sid), phone_to_call=task.phone)


@router.post(
    "/{callback_id}/attempts", response_model=CallbackOut, dependencies=[Depends(json_only)]
)
async def record_attempt(callback_id: RowId, body: AttemptIn, caller: CenterStaff) -> CallbackOut:
    """An operator called back. 409 once the task is done."""
    request, principal = caller.request, caller.principal
    now = clock.now()
    async with sessions(request)() as session, session.begin():
        task, call_sid = await _load(session, principal, callback_id, lock=True)
        if task.status != "pending":
            raise Conflict("callback_done", "该回电任务已完成")
        task.attempts += 1
        task.outcome, task.note, task.updated_at = body.outcome, body.note, now
        if body.outcome != "no_answer":
            task.status, task.done_at, task.done_by = "done", now, principal.id
        if task.case_id is not None:
            add_case_event(
                session,
                principal,
                task.case_id,
                "callback_attempt",
                reason=OUTCOME_LABELS[body.outcome],
                data={"callback_id": task.id, "outcome": body.outcome},
                created_at=now,
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
    return CallbackOut(**callback_fields(task, call_sid))
