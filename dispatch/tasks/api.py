"""Tasks through the API: the caller's tasks, completing one, the center adding or
withdrawing one on a case. Every read and write is audited."""

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from channels.web import json_only, sessions
from db.casework import Task
from dispatch.cases.access import locked_case
from dispatch.staff.audit import audit
from dispatch.staff.auth import Principal, require, require_center
from dispatch.tasks import service

router = APIRouter(tags=["tasks"])
VIEWERS = require("operator", "caseworker", "supervisor", "liaison")
CASEWORK = require_center("caseworker", "supervisor")
# After the caller's check: a stranger learns 401, not what the endpoint expects.
JsonBody = Annotated[None, Depends(json_only)]


class TaskOut(BaseModel):
    id: int
    case_id: int
    source: str
    source_id: str
    title: str
    detail: str | None
    department: str
    jurisdiction: str | None
    owner_user_id: int | None
    status: str
    warn_at: datetime
    due_at: datetime
    flag_at: datetime
    escalation: int
    outcome: str | None
    cancel_reason: str | None
    created_at: datetime


class TaskList(BaseModel):
    items: list[TaskOut]


def task_out(t: Task) -> TaskOut:
    return TaskOut(
        id=t.id,
        case_id=t.case_id,
        source=t.source,
        source_id=t.source_id,
        title=t.title,
        detail=t.detail,
        department=t.department_code,
        jurisdiction=t.jurisdiction_code,
        owner_user_id=t.owner_user_id,
        status=t.status,
        warn_at=t.warn_at,
        due_at=t.due_at,
        flag_at=t.flag_at,
        escalation=t.escalation,
        outcome=t.outcome,
        cancel_reason=t.cancel_reason,
        created_at=t.created_at,
    )


class TaskIn(BaseModel):
    department: str = Field(max_length=40, json_schema_extra={"x-choices": "department"})
    title: str = Field(max_length=200)
    detail: str | None = Field(default=None, max_length=2000)
    # A window from now ("3wd" working days, "24h", "7d") or a moment (ISO 8601 with zone).
    due: datetime | Annotated[str, Field(max_length=10)]
    owner_user_id: int | None = None


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
    async with sessions(request)() as session, session.begin():
        rows = await service.list_tasks(
            session=session, principal=principal, status=status, case_id=case_id, limit=limit
        )
        audit(session, principal, "task.list", "task", None, request, {"count": len(rows)})
    return TaskList(items=[task_out(t) for t in rows])


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
    now = datetime.now(UTC)
    async with locked_case(request, principal, case_id) as (session, case):
        task = await service.create_task(
            session=session,
            case_id=case.id,
            source="manual",
            source_id=f"{principal.id}-{now.timestamp():.6f}",
            department_code=body.department,
            due=body.due,
            title=body.title,
            detail=body.detail,
            owner_user_id=body.owner_user_id,
            actor=principal.label,
            now=now,
        )
        audit(session, principal, "task.create", "task", task.id, request)
    return task_out(task)


@router.post("/api/v1/tasks/{task_id}/complete", response_model=TaskOut)
async def complete(
    request: Request,
    task_id: int,
    body: OutcomeIn,
    principal: Annotated[Principal, Depends(VIEWERS)],
    _json: JsonBody,
) -> TaskOut:
    now = datetime.now(UTC)
    async with sessions(request)() as session, session.begin():
        task = await service.load_task(
            session=session, principal=principal, task_id=task_id, lock=True
        )
        await service.complete_task(
            session=session, task=task, principal=principal, outcome=body.outcome, now=now
        )
        audit(session, principal, "task.complete", "task", task.id, request)
    return task_out(task)


@router.post("/api/v1/tasks/{task_id}/cancel", response_model=TaskOut)
async def cancel(
    request: Request,
    task_id: int,
    body: ReasonIn,
    principal: Annotated[Principal, Depends(CASEWORK)],
    _json: JsonBody,
) -> TaskOut:
    now = datetime.now(UTC)
    async with sessions(request)() as session, session.begin():
        task = await service.load_task(
            session=session, principal=principal, task_id=task_id, lock=True
        )
        await service.cancel_task(
            session=session,
            task=task,
            actor=principal.label,
            reason=body.reason,
            now=now,
            actor_id=principal.id,
        )
        audit(session, principal, "task.cancel", "task", task.id, request)
    return task_out(task)
