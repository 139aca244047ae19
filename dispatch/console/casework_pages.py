"""Console pages of casework: "my cases", concerns from the area staff, tasks, the case
page's panel (owner and pairing, the help plan, tasks) and the operators' call wrap-up.

Every write runs the same service operation as the API (`dispatch.casework.service`,
`dispatch.tasks.service`), so a page is refused exactly what the API would refuse this person,
and audited the same way.
"""

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData

from channels.web import sessions
from db import clock
from db.casework import CallWrapup, ReportNoContact
from db.models import AppUser, Case, Report
from db.telephony import VoiceCall
from dispatch.casework import (
    assessments,
    guardianship,
    meetings,
    owners,
    plans,
    reporter_notice,
    service,
    wrapups,
)
from dispatch.console import web
from dispatch.console.timefmt import parse_local
from dispatch.staff import permissions
from dispatch.staff.audit import audit
from dispatch.staff.auth import CENTER_DEPARTMENT, Principal
from dispatch.tasks import service as task_service
from workflows.cases.intake import ChildIn
from workflows.casework.assessment import questions, sections
from workflows.casework.closing import closing_types
from workflows.casework.guardianship import placement_kinds, steps
from workflows.casework.plan import needs_table
from workflows.errors import Invalid

router = APIRouter(prefix="/console", route_class=web.ConsoleRoute, include_in_schema=False)

HOLDERS = web.staff(permissions.CASE_HOLD)
AREA = web.staff(permissions.AREA_WORK)
CASEWORK = web.staff(permissions.CASEWORK)
TASK_READERS = web.staff(permissions.TASK_READ)
DESK = web.staff(permissions.CASE_DESK)
CALL_DESK = web.staff(permissions.CASE_DESK)


@router.get("/casework/mine", response_class=HTMLResponse)
async def my_cases(request: Request, user: Annotated[web.ConsoleUser, Depends(HOLDERS)]):
    """The cases the person holds, the next visit first; area staff can raise a concern."""
    principal = user.principal
    async with sessions(request)() as session, session.begin():
        rows = await owners.my_cases(session=session, principal=principal, limit=200)
        web.audit_list(session, principal, request, "case", [r.case.id for r in rows])
    return web.render(
        request,
        user,
        "mine.html",
        {
            "rows": rows,
            "now": clock.now(),
            "can_raise": principal.role in owners.AREA_ROLES,
        },
    )


def _concern(form: FormData) -> dict:
    child = ChildIn.model_validate(web.child_fields(form, "name", "age", "address"))
    body = service.ConcernIn(
        **web.texts(form, description=5000),
        child=child,
        in_danger_now=web.yes(form, "in_danger_now"),
    )
    return {"body": body}


@router.post("/casework/concerns")
async def raise_concern(
    request: Request, user: Annotated[web.ConsoleUser, Depends(AREA)]
) -> RedirectResponse:
    done = "已报告，中心将尽快研判处理"
    return await web.submit(
        request, user, "/console/casework/mine", service.raise_concern, done, _concern
    )


@router.get("/tasks", response_class=HTMLResponse)
async def tasks_page(request: Request, user: Annotated[web.ConsoleUser, Depends(TASK_READERS)]):
    """Open tasks the person may see, most urgent first, and the latest closed ones."""
    principal = user.principal
    async with sessions(request)() as session, session.begin():
        open_ = await task_service.list_tasks(
            session=session, principal=principal, status="open", limit=200
        )
        closed = [
            t
            for t in await task_service.list_tasks(session=session, principal=principal, limit=250)
            if t.status != "open"
        ][:50]
        invites = await meetings.meetings(session, principal, upcoming=True)
        web.audit_list(session, principal, request, "task", [t.case_id for t in open_ + closed])
    return web.render(
        request,
        user,
        "tasks.html",
        {
            "open": open_,
            "closed": closed,
            "now": clock.now(),
            "labels": task_service.STATUS_LABELS,
            "invites": invites,
        },
    )


def _outcome(form: FormData) -> dict:
    return web.texts(form, outcome=2000)


@router.post("/tasks/{task_id}/complete")
async def complete_task(
    request: Request, task_id: int, user: Annotated[web.ConsoleUser, Depends(TASK_READERS)]
) -> RedirectResponse:
    back, done = "/console/tasks", "任务已完成"
    return await web.submit(
        request, user, back, task_service.complete, done, _outcome, task_id=task_id
    )


def _assignment(form: FormData) -> service.AssignIn:
    return service.AssignIn(**web.texts(form, username=60), **web.optional_texts(form, reason=2000))


def _plan(form: FormData) -> service.PlanIn:
    return service.PlanIn(
        needs=web.choices(form, "needs", 30), **web.optional_texts(form, reason=2000)
    )


def _task(form: FormData) -> task_service.TaskIn:
    return task_service.TaskIn(**web.texts(form, department=40, title=200, due=10))


for kind in ("owner", "pairing"):
    router.post(f"/cases/{{case_id}}/{kind}")(
        web.case_form(
            CASEWORK,
            service.assign_holder,
            f"已指派{owners.KIND_LABELS[kind]}",
            _assignment,
            kind=kind,
        )
    )
router.post("/cases/{case_id}/plan")(
    web.case_form(
        CASEWORK,
        service.propose_plan,
        "帮扶计划已保存：一般案件的转介已发出，红、橙色案件待督导审批后发出",
        _plan,
    )
)
router.post("/cases/{case_id}/plan/approve")(
    web.case_form(CASEWORK, service.approve_plan, "帮扶计划已审批，转介已发出")
)
router.post("/cases/{case_id}/tasks")(
    web.case_form(CASEWORK, task_service.add_task, "任务已添加", _task)
)


async def _candidates(session: AsyncSession, principal: Principal) -> dict[str, list[AppUser]]:
    """People who may hold cases in the caller's area (the API still checks the case's)."""
    rows = list(
        (
            await session.execute(
                select(AppUser)
                .where(
                    AppUser.active,
                    AppUser.role.in_(owners.PAIRING_ROLES),
                    or_(
                        AppUser.department_code.is_(None),
                        AppUser.department_code == CENTER_DEPARTMENT,
                    ),
                )
                .order_by(AppUser.role, AppUser.username)
                .limit(300)
            )
        ).scalars()
    )
    return {
        "owner": [u for u in rows if u.role in owners.OWNER_ROLES],
        "pairing": rows,
    }


async def casework_panel(session: AsyncSession, principal: Principal, case: Case) -> dict[str, Any]:
    """What the case page's casework panel shows this person (the case is in their scope)."""
    case_id = case.id
    holders = (await owners.holders_of(session, [case_id])).get(case_id) or owners.Holders(
        None, None
    )
    center_work = principal.is_center and principal.role in ("caseworker", "supervisor")
    view = await plans.current_plan(session, case_id) if center_work else None
    tasks = await task_service.list_tasks(
        session=session, principal=principal, case_id=case_id, limit=100
    )
    return {
        "holders": holders,
        "can_assign": center_work,
        "candidates": await _candidates(session, principal) if center_work else {},
        "plan": service.plan_out(view) if view else None,
        "plan_label": plans.STATUS_LABELS.get(view.plan.status, "") if view else "",
        "can_plan": center_work,
        "can_approve": center_work and principal.role == "supervisor",
        "needs": needs_table(),
        "tasks": tasks,
        "task_labels": task_service.STATUS_LABELS,
        "assessments": await assessments.history(session, case_id) if center_work else [],
        "sections": sections(),
        "questions": questions(),
        **dict(
            zip(
                ("placements", "interventions"),
                await guardianship.records(session, case_id),
                strict=True,
            )
        ),
        "placement_kinds": placement_kinds(),
        "steps": steps(),
        "meetings": await meetings.meetings(session, principal, case_id=case_id)
        if center_work
        else [],
        "proposed": await meetings.proposed_because(session, case) if center_work else [],
        "closing_types": closing_types(),
        "can_mark": principal.is_center,
        "no_contact": set(
            (
                await session.execute(
                    select(ReportNoContact.report_id)
                    .join(Report, Report.id == ReportNoContact.report_id)
                    .where(Report.case_id == case_id)
                )
            ).scalars()
        ),
        "no_contact_reasons": reporter_notice.NO_CONTACT_REASONS,
    }


def _close(form: FormData) -> service.CloseIn:
    return service.CloseIn(
        **web.texts(form, type=30),
        **web.optional_texts(form, reason=2000),
        override=web.yes(form, "override"),
    )


router.post("/cases/{case_id}/close")(
    web.case_form(CASEWORK, service.close_case, "已结案，相关部门与报告人将收到通知", _close)
)


async def _back_to_case(
    request: Request,
    user: web.ConsoleUser,
    case_of: Callable[[AsyncSession], Awaitable[int | None]],
) -> str:
    """The page of the case a record in the path belongs to, looked up only once the form's
    CSRF token is checked (a forged form learns nothing)."""
    await web.read_form(request, user)
    async with sessions(request)() as session:
        return web.case_url(await case_of(session) or 0)


def _no_contact(form: FormData) -> dict:
    return {"body": service.NoContactIn.model_validate(web.texts(form, reason=20))}


@router.post("/reports/{report_id}/no-contact")
async def post_no_contact(
    request: Request, report_id: int, user: Annotated[web.ConsoleUser, Depends(DESK)]
) -> RedirectResponse:
    def case_of(session: AsyncSession) -> Awaitable[int | None]:
        return session.scalar(select(Report.case_id).where(Report.id == report_id))

    back = await _back_to_case(request, user, case_of)
    done = "已标记：不再联系该报告人"
    return await web.submit(
        request, user, back, service.mark_no_contact, done, _no_contact, report_id=report_id
    )


def _meeting(form: FormData) -> service.MeetingIn:
    when = parse_local(web.text_field(form, "scheduled_at", 40))
    if when is None:
        raise Invalid("time_required", "请填写会商时间")
    return service.MeetingIn(
        scheduled_at=when,
        departments=web.choices(form, "departments", 20),
        **web.texts(form, agenda=2000),
        **web.optional_texts(form, place=200),
    )


router.post("/cases/{case_id}/meetings")(
    web.case_form(CASEWORK, service.schedule_meeting, "会商邀请已发出", _meeting)
)


def _held(form: FormData) -> dict:
    rows = zip(
        form.getlist("decision_title"),
        form.getlist("decision_department"),
        form.getlist("decision_due"),
        strict=False,
    )
    decisions = [
        service.DecisionIn(
            title=str(t).strip()[:200], department=str(d)[:40], due=str(due).strip()[:10] or "5wd"
        )
        for t, d, due in list(rows)[:20]
        if str(t).strip()
    ]
    return {
        "body": service.HeldIn(
            attended=web.choices(form, "attended", 20),
            **web.texts(form, participants=2000, notes=5000),
            decisions=decisions,
        )
    }


@router.post("/meetings/{meeting_id}/record")
async def record_meeting(
    request: Request, meeting_id: int, user: Annotated[web.ConsoleUser, Depends(CASEWORK)]
) -> RedirectResponse:
    async def case_of(session: AsyncSession) -> int:
        return (await meetings.load_meeting(session, user.principal, meeting_id)).case_id

    back = await _back_to_case(request, user, case_of)
    done = "会商结果已记录，决定已成为任务"
    return await web.submit(
        request, user, back, service.record_meeting, done, _held, meeting_id=meeting_id
    )


def _placement(form: FormData) -> service.PlacementIn:
    values = {
        **web.texts(form, kind=30, body=200, start_on=10),
        **web.optional_texts(form, end_on=10),
    }
    return service.PlacementIn.model_validate(values)


def _intervention(form: FormData) -> service.InterventionIn:
    values = {
        **web.texts(form, step=30, department=40, acted_on=10),
        **web.optional_texts(form, document=200, skip_reason=2000),
    }
    return service.InterventionIn.model_validate(values)


def _written_assessment(form: FormData) -> service.AssessIn:
    return service.AssessIn(
        answers={q.code: web.text_field(form, f"q_{q.code}", 40) for q in questions()},
        **web.optional_texts(form, risk_level=10, override_reason=2000),
        **web.texts(form, summary=5000),
        needs=web.choices(form, "needs", 30),
    )


router.post("/cases/{case_id}/placements")(
    web.case_form(CASEWORK, service.add_placement, "安置已登记", _placement)
)
router.post("/cases/{case_id}/interventions")(
    web.case_form(CASEWORK, service.add_intervention, "监护干预已登记", _intervention)
)
router.post("/cases/{case_id}/assessments")(
    web.case_form(CASEWORK, service.assess, "评估已保存", _written_assessment)
)


def _wrapup(form: FormData) -> dict:
    return {
        "body": service.WrapupIn(**web.texts(form, type=20), **web.optional_texts(form, note=2000))
    }


@router.post("/operator/calls/{call_sid}/wrapup")
async def wrap_up(
    request: Request, call_sid: str, user: Annotated[web.ConsoleUser, Depends(CALL_DESK)]
) -> RedirectResponse:
    back, done = "/console/casework/calls", "来电已小结"
    return await web.submit(
        request, user, back, service.wrap_up_call, done, _wrapup, call_sid=call_sid
    )


async def unwrapped_calls(session: AsyncSession, principal: Principal, limit: int = 50):
    """Answered calls of the last week still waiting for their wrap-up, oldest first."""
    from dispatch.telephony.scope import via_case

    since = clock.now() - timedelta(days=7)
    return list(
        (
            await session.execute(
                select(VoiceCall)
                .outerjoin(CallWrapup, CallWrapup.call_id == VoiceCall.id)
                .where(
                    VoiceCall.answered_at >= since,
                    CallWrapup.call_id.is_(None),
                    via_case(VoiceCall.case_id, principal),
                )
                .order_by(VoiceCall.answered_at)
                .limit(limit)
            )
        ).scalars()
    )


@router.get("/casework/calls", response_class=HTMLResponse)
async def calls_page(
    request: Request,
    user: Annotated[web.ConsoleUser, Depends(CALL_DESK)],
    since: str = "",
    until: str = "",
):
    """Calls to wrap up, and the period's calls by type (default: the last 30 days)."""
    principal = user.principal
    end = parse_local(until) or clock.now()
    start = parse_local(since) or end - timedelta(days=30)
    stats = await web.as_user(request, user, service.wrapup_stats, since=start, until=end)
    async with sessions(request)() as session, session.begin():
        waiting = await unwrapped_calls(session, principal)
        audit(session, principal, "call.list", "call", None, request, {"count": len(waiting)})
    peak = max((i.count for i in stats.items), default=0)
    return web.render(
        request,
        user,
        "calls_wrapup.html",
        {
            "waiting": waiting,
            "stats": stats,
            "peak": peak,
            "types": wrapups.wrapup_types(),
            "rows": [{"label": i.label, "count": i.count} for i in stats.items],
        },
    )
