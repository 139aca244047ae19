"""The operators' call-back list: voicemails, missed emergency calls and callers who gave up
waiting, most urgent first (due time from the task's risk level), and recording the calls
back.

The list shows numbers masked; opening one task shows the number to dial, and is audited.
"""

from typing import Literal

from fastapi import APIRouter, Depends

from channels.web import json_only
from dispatch.common.endpoints import CenterStaff, Limit, RowId
from dispatch.telephony import callbacks_service
from dispatch.telephony.callbacks_service import (
    AttemptIn,
    CallbackDetail,
    CallbackList,
    CallbackOut,
)

router = APIRouter(prefix="/api/v1/voice/callbacks", tags=["voice"])


@router.get("", response_model=CallbackList)
async def list_callbacks(
    caller: CenterStaff, status: Literal["pending", "done"] = "pending", limit: Limit = 50
) -> CallbackList:
    """Pending: emergency callers first, then by due time. Done: most recent first."""
    return await caller.run(callbacks_service.list_callbacks, status=status, limit=limit)


@router.get("/{callback_id}", response_model=CallbackDetail)
async def get_callback(callback_id: RowId, caller: CenterStaff) -> CallbackDetail:
    """One task, with the number to dial."""
    return await caller.run(callbacks_service.read_callback, callback_id=callback_id)


@router.post(
    "/{callback_id}/attempts", response_model=CallbackOut, dependencies=[Depends(json_only)]
)
async def record_attempt(callback_id: RowId, body: AttemptIn, caller: CenterStaff) -> CallbackOut:
    """An operator called back. 409 once the task is done."""
    return await caller.run(callbacks_service.record_attempt, callback_id=callback_id, body=body)
