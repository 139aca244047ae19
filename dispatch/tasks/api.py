"""Tasks through the API: the caller's tasks, completing one, the center adding or
withdrawing one on a case. Thin: each endpoint names who may call it and runs one operation
of `dispatch.tasks.service` (the console's pages run the same ones)."""

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from dispatch.common.endpoints import Casework, JsonBody, Limit, acting
from dispatch.staff.auth import require
from dispatch.tasks import service
from dispatch.tasks.service import TaskIn, TaskList, TaskOut

router = APIRouter(tags=["tasks"])
Viewers = acting(require("operator", "caseworker", "supervisor", "liaison"))


class OutcomeIn(BaseModel):
    outcome: str = Field(max_length=2000)


class ReasonIn(BaseModel):
    reason: str = Field(max_length=2000)


@router.get("/api/v1/tasks", response_model=TaskList)
async def list_tasks(
    caller: Viewers,
    status: Literal["open", "done", "cancelled"] | None = None,
    case_id: Annotated[int | None, Query(ge=1)] = None,
    limit: Limit = 50,
) -> TaskList:
    """The tasks the caller may see: open ones most urgent first."""
    return await caller.run(service.task_list, status=status, case_id=case_id, limit=limit)


@router.post("/api/v1/cases/{case_id}/tasks", response_model=TaskOut, status_code=201)
async def add_task(case_id: int, body: TaskIn, caller: Casework, _json: JsonBody) -> TaskOut:
    """A task the center sets by hand on a case it may see."""
    return await caller.run(service.add_task, case_id=case_id, body=body)


@router.post("/api/v1/tasks/{task_id}/complete", response_model=TaskOut)
async def complete(task_id: int, body: OutcomeIn, caller: Viewers, _json: JsonBody) -> TaskOut:
    return await caller.run(service.complete, task_id=task_id, outcome=body.outcome)


@router.post("/api/v1/tasks/{task_id}/cancel", response_model=TaskOut)
async def cancel(task_id: int, body: ReasonIn, caller: Casework, _json: JsonBody) -> TaskOut:
    return await caller.run(service.cancel, task_id=task_id, reason=body.reason)
