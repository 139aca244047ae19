"""Tasks: "this department (or this person) must do this on this case by then".

Other features make them through `create_task` in their own transaction (a conference's
decisions, a supervisor's required actions); the task's people are told, it appears in the
department's console, and the sweep escalates it like a referral: the owner is warned, the
department's and the center's supervisors are told at the due moment (督办) and again at twice
the time (挂牌督办). Every change is on the case's timeline.
"""

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, and_, exists, false, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from db import clock
from db.casework import Task
from db.models import AppUser, Case, CaseEvent
from db.timeline import case_event
from dispatch.cases.access import load_case
from dispatch.common.lookup import scalar_or_404
from dispatch.common.sweeps import due_with_case
from dispatch.referrals.routing import plan_routes_for
from dispatch.staff.audit import audit
from dispatch.staff.auth import CENTER_DEPARTMENT, Principal
from dispatch.staff.notifications import notify, office_liaisons, supervisors
from dispatch.staff.scope import case_filter, in_subtree
from workflows.errors import Conflict, Forbidden, Invalid, NotFound, WorkflowRefused
from workflows.reference import allowed, department_labels
from workflows.referrals.deadlines import ESCALATED, FLAGGED, WARNED, DeadlinePoints, stage_at
from workflows.tasks import next_check, task_points

STAGE_EVENTS = {WARNED: "task_warning", ESCALATED: "task_escalated", FLAGGED: "task_flagged"}
STAGE_LABELS = {WARNED: "即将到期", ESCALATED: "已逾期，督办", FLAGGED: "严重逾期，挂牌督办"}
STATUS_LABELS = {"open": "待办", "done": "已完成", "cancelled": "已撤销"}


def points_of(task: Task) -> DeadlinePoints:
    return DeadlinePoints(warn_at=task.warn_at, due_at=task.due_at, flag_at=task.flag_at)


def _event(
    task: Task,
    event: str,
    actor: str,
    now: datetime,
    reason: str | None,
    actor_id: int | None = None,
) -> CaseEvent:
    return case_event(
        case_id=task.case_id,
        event=event,
        actor=actor,
        actor_id=actor_id,
        reason=reason,
        data={"task_id": task.id, "department": task.department_code, "source": task.source},
        created_at=now,
    )


async def _doers(session: AsyncSession, task: Task, case: Case) -> list[int]:
    """Who must act: the named owner, else the department office's liaisons, else (the
    center's own tasks, or an office with nobody) the supervisors over the case."""
    if task.owner_user_id:
        return [task.owner_user_id]
    users = await office_liaisons(session, task.department_code, task.jurisdiction_code or "")
    return users or await supervisors(session, None, case.jurisdiction_code)


async def create_task(
    *,
    session: AsyncSession,
    case_id: int,
    source: str,
    source_id: str | int,
    department_code: str,
    due: datetime | str,
    title: str,
    actor: str,
    now: datetime,
    detail: str | None = None,
    owner_user_id: int | None = None,
) -> Task:
    """Make the task in the caller's transaction and tell who must do it.

    `due` is a window from now ("3wd", "24h") or a moment. The same source item for the same
    department is one task: asking again returns the task already made."""
    if department_code not in department_labels():
        raise Invalid(
            "unknown_department", "未知的部门，可选：" + allowed(department_labels())
        )
    title = (title or "").strip()
    if not title:
        raise Invalid("title_required", "请填写任务内容")
    if len(title) > 200:
        raise Invalid("title_too_long", "任务内容最多200字")
    existing = await session.scalar(
        select(Task).where(
            Task.source == source,
            Task.source_id == str(source_id),
            Task.department_code == department_code,
        )
    )
    if existing is not None:
        return existing
    case = await session.get(Case, case_id)
    if case is None:
        raise NotFound("case_not_found", "未找到该案件")
    if owner_user_id is not None:
        owner = await session.get(AppUser, owner_user_id)
        if owner is None or not owner.active:
            raise Invalid("unknown_owner", "指定的负责人不存在或已停用")
    try:
        points = task_points(now, due)
    except WorkflowRefused as exc:
        raise Invalid(exc.code, exc.message) from exc
    if department_code == CENTER_DEPARTMENT:
        where = case.jurisdiction_code
    else:
        where = (await plan_routes_for(session, case, department_code, None)).jurisdiction_code
    task = Task(
        case_id=case_id,
        source=source,
        source_id=str(source_id),
        title=title,
        detail=detail or None,
        department_code=department_code,
        jurisdiction_code=where or case.jurisdiction_code,
        owner_user_id=owner_user_id,
        status="open",
        warn_at=points.warn_at,
        due_at=points.due_at,
        flag_at=points.flag_at,
        next_check_at=next_check(points, 0, "open"),
        created_by=actor,
        created_at=now,
        updated_at=now,
    )
    session.add(task)
    await session.flush()
    dept = department_labels()[department_code]
    session.add(_event(task, "task_created", actor, now, f"任务（{dept}）：{title}"))
    await notify(
        session,
        await _doers(session, task, case),
        "task_new",
        f"案件#{case_id} 新任务（{dept}），请在期限内完成",
        case_id=case_id,
    )
    return task


def task_filter(principal: Principal) -> ColumnElement[bool]:
    """Default deny. Center staff: tasks of the cases they may see. Department staff: their
    department's tasks whose office lies in their subtree. Anyone: tasks named to them."""
    mine = Task.owner_user_id == principal.id
    if not principal.scope_path:
        return mine
    if principal.is_center:
        return or_(
            mine, exists(select(Case.id).where(Case.id == Task.case_id, case_filter(principal)))
        )
    if principal.role in ("liaison", "supervisor") and principal.department:
        return or_(
            mine,
            and_(
                Task.department_code == principal.department,
                in_subtree(Task.jurisdiction_code, principal.scope_path),
            ),
        )
    return mine if principal.role != "admin" else false()


async def list_tasks(
    *,
    session: AsyncSession,
    principal: Principal,
    status: str | None = None,
    case_id: int | None = None,
    limit: int = 50,
) -> list[Task]:
    """Open ones most urgent first, then the rest newest first."""
    stmt = select(Task).where(task_filter(principal))
    if status:
        stmt = stmt.where(Task.status == status)
    if case_id is not None:
        stmt = stmt.where(Task.case_id == case_id)
    stmt = stmt.order_by((Task.status != "open"), Task.due_at, Task.id.desc()).limit(limit)
    return list((await session.execute(stmt)).scalars())


async def load_task(
    *, session: AsyncSession, principal: Principal, task_id: int, lock: bool = False
) -> Task:
    """The task if the principal may see it; 404 otherwise (no hint that it exists)."""
    stmt = select(Task).where(Task.id == task_id, task_filter(principal))
    stmt = stmt.with_for_update() if lock else stmt
    return await scalar_or_404(session, stmt, "task_not_found", "未找到该任务")


def _open(task: Task) -> None:
    if task.status != "open":
        label = STATUS_LABELS.get(task.status, task.status)
        raise Conflict("task_closed", f"任务已{label}，不能再操作")


def may_complete(principal: Principal, task: Task) -> bool:
    """The owner, the department's own staff, or the center's caseworkers and supervisors."""
    return (
        task.owner_user_id == principal.id
        or (principal.department == task.department_code and not principal.is_center)
        or (principal.is_center and principal.role in ("caseworker", "supervisor"))
    )


async def complete_task(
    *, session: AsyncSession, task: Task, principal: Principal, outcome: str, now: datetime
) -> Task:
    """Done, with what was done. Refused when already closed or without an outcome."""
    _open(task)
    if not may_complete(principal, task):
        raise Forbidden("forbidden", "只有任务负责人、承办部门或中心社工可以完成任务")
    outcome = (outcome or "").strip()
    if not outcome:
        raise Invalid("outcome_required", "请填写完成情况")
    task.status, task.outcome = "done", outcome
    task.done_by, task.done_at, task.updated_at = principal.id, now, now
    task.next_check_at = None
    session.add(
        _event(task, "task_done", principal.label, now, f"任务完成：{task.title}", principal.id)
    )
    return task


async def cancel_task(
    *,
    session: AsyncSession,
    task: Task,
    actor: str,
    reason: str,
    now: datetime,
    actor_id: int | None = None,
) -> Task:
    """Withdrawn by the center (or by the feature that made it), always with a reason; the
    people who had to do it are told."""
    _open(task)
    reason = (reason or "").strip()
    if not reason:
        raise Invalid("reason_required", "撤销任务需要填写原因")
    task.status, task.cancel_reason, task.updated_at = "cancelled", reason, now
    task.next_check_at = None
    session.add(_event(task, "task_cancelled", actor, now, f"任务撤销：{reason}", actor_id))
    case = await session.get(Case, task.case_id)
    await notify(
        session,
        await _doers(session, task, case),
        "task_cancelled",
        f"案件#{task.case_id} 的任务已撤销",
        case_id=task.case_id,
    )
    return task


async def _escalate(
    session: AsyncSession, task: Task, case: Case, stage: int, now: datetime
) -> None:
    dept = department_labels().get(task.department_code, task.department_code)
    text = f"案件#{case.id} 任务（{dept}）{STAGE_LABELS[stage]}"
    session.add(_event(task, STAGE_EVENTS[stage], "system:deadlines", now, text))
    if stage == WARNED:
        users = await _doers(session, task, case)
    else:
        users = await supervisors(session, task.department_code, case.jurisdiction_code)
    await notify(session, users, STAGE_EVENTS[stage], text, case_id=case.id)


async def sweep_tasks(session: AsyncSession, now: datetime, limit: int = 500) -> int:
    """Act on every open task whose next check has come; returns how many were looked at."""
    rows = await due_with_case(session, Task, now, limit)
    for task, case in rows:
        points = points_of(task)
        stage = stage_at(points, now)
        if stage > task.escalation:
            await _escalate(session, task, case, stage, now)
            task.escalation = stage
        task.next_check_at = next_check(points, task.escalation, task.status)
    return len(rows)


# The staff's operations on tasks, for the JSON API and the console alike.


class TaskOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # read straight off its row

    id: int
    case_id: int
    source: str
    source_id: str
    title: str
    detail: str | None
    department: str = Field(validation_alias=AliasChoices("department_code", "department"))
    jurisdiction: str | None = Field(
        validation_alias=AliasChoices("jurisdiction_code", "jurisdiction")
    )
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
    return TaskOut.model_validate(t)


class TaskIn(BaseModel):
    department: str = Field(max_length=40, json_schema_extra={"x-choices": "department"})
    title: str = Field(max_length=200)
    detail: str | None = Field(default=None, max_length=2000)
    # A window from now ("3wd" working days, "24h", "7d") or a moment (ISO 8601 with zone).
    due: datetime | Annotated[str, Field(max_length=10)]
    owner_user_id: int | None = None


async def task_list(
    *,
    session: AsyncSession,
    principal: Principal,
    ip: str | None,
    status: Literal["open", "done", "cancelled"] | None = None,
    case_id: int | None = None,
    limit: int = 50,
) -> TaskList:
    """The tasks the caller may see: open ones most urgent first."""
    rows = await list_tasks(
        session=session, principal=principal, status=status, case_id=case_id, limit=limit
    )
    audit(session, principal, "task.list", "task", None, detail={"count": len(rows)}, ip=ip)
    return TaskList(items=[task_out(t) for t in rows])


async def add_task(
    *, session: AsyncSession, principal: Principal, ip: str | None, case_id: int, body: TaskIn
) -> TaskOut:
    """A task the center sets by hand on a case it may see."""
    now = clock.now()
    case = await load_case(session, principal, case_id, lock=True)
    task = await create_task(
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
    audit(session, principal, "task.create", "task", task.id, ip=ip)
    return task_out(task)


async def _task_step(
    session: AsyncSession,
    principal: Principal,
    ip: str | None,
    task_id: int,
    action: str,
    step: Callable[[Task], Awaitable[Task]],
) -> TaskOut:
    """A change to one task: locked while `step` changes it, then audited as `action`."""
    task = await load_task(session=session, principal=principal, task_id=task_id, lock=True)
    await step(task)
    audit(session, principal, action, "task", task.id, ip=ip)
    return task_out(task)


async def complete(
    *, session: AsyncSession, principal: Principal, ip: str | None, task_id: int, outcome: str
) -> TaskOut:
    """The task is done, with what was done (its owner, its department or the center)."""
    return await _task_step(
        session, principal, ip, task_id, "task.complete",
        lambda task: complete_task(
            session=session, task=task, principal=principal, outcome=outcome, now=clock.now()
        ),
    )


async def cancel(
    *, session: AsyncSession, principal: Principal, ip: str | None, task_id: int, reason: str
) -> TaskOut:
    """The center withdraws a task, with a reason."""
    return await _task_step(
        session, principal, ip, task_id, "task.cancel",
        lambda task: cancel_task(
            session=session, task=task, actor=principal.label, reason=reason, now=clock.now(),
            actor_id=principal.id,
        ),
    )
