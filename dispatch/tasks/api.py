"""Tasks through the API: the caller's tasks, completing one, the center adding or
withdrawing one on a case. Thin: each endpoint names who may call it and runs one operation
of `dispatch.tasks.service` (the console's pages run the same ones)."""

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from channels.web import in_transaction, json_only
from dispatch.staff.auth import Principal, require, require_center
from dispatch.tasks import service
from dispatch.tasks.service import TaskIn, TaskList, TaskOut

router = APIRouter(tags=["tasks"])
VIEWERS = require("operator", "caseworker", "supervisor", "liaison")
CASEWORK = require_center("caseworker", "supervisor")
# After the caller's check: a stranger learns 401, not what the endpoint expects.
JsonBody = Annotated[None, Depends(json_only)]


class OutcomeIn(BaseModel):
    outcome: str = Field(max_length=2000)


class ReasonIn(BaseModel):
    reason: str = Field(max_length=2000)


@router.get("/api/v1/tasks", response_model=TaskList)
async def list_tasks(
    request: Request,
    principal: Annotated[Principal, Depends(VIEWERS)],
    status: Literal["open", "done", "cancelled"] | None = None,
    case_id: Annotated[int | None, Query(ge=1)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> TaskList:
    """The tasks the caller may see: open ones most urgent first."""
    return await in_transaction(
        request, service.task_list, principal=principal, status=status, case_id=case_id,
        limit=limit,
    )


@router.post(
    "/api/v1/cases/{case_id}/tasks",
    response_model=TaskOut,
    status_code=201,
)
async def add_task(
    request: Request,
    case_id: int,
    body: TaskIn,
    principal: Annotated[Principal, Depends(CASEWORK)],
    _json: JsonBody,
) -> TaskOut:
    """A task the center sets by hand on a case it may see."""
    return await in_transaction(
        request, service.add_task, principal=principal, case_id=case_id, body=body
    )


@router.post("/api/v1/tasks/{task_id}/complete", response_model=TaskOut)
async def complete(
    request: Request,
    task_id: int,
    body: OutcomeIn,
    principal: Annotated[Principal, Depends(VIEWERS)],
    _json: JsonBody,
) -> TaskOut:
    return await in_transaction(
        request, service.complete, principal=principal, task_id=task_id, outcome=body.outcome
    )


@router.post("/api/v1/tasks/{task_id}/cancel", response_model=TaskOut)
async def cancel(
    request: Request,
    task_id: int,
    body: ReasonIn,
    principal: Annotated[Principal, Depends(CASEWORK)],
    _json: JsonBody,
) -> TaskOut:
    return await in_transaction(
        request, service.cancel, principal=principal, task_id=task_id, reason=body.reason
    )
