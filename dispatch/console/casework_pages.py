"""Console pages of casework: "my cases", concerns from the area staff, tasks, the case
page's panel (owner and pairing, the help plan, tasks) and the operators' call wrap-up.

Every write runs the same service operation as the API (`dispatch.casework.service`,
`dispatch.tasks.service`), so a page is refused exactly what the API would refuse this person,
and audited the same way.
"""

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData

from channels.web import in_transaction, sessions
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
from dispatch.console.timefmt import parse_local
from dispatch.console.web import (
    ConsoleRoute,
    ConsoleUser,
    read_form,
    render,
    shown,
    staff,
    submit,
    text_field,
)
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

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)

HOLDERS = staff(permissions.CASE_HOLD)
AREA = staff(permissions.AREA_WORK)
CASEWORK = staff(permissions.CASEWORK)
TASK_READERS = staff(permissions.TASK_READ)
DESK = staff(permissions.CASE_DESK)
CALL_DESK = staff(permissions.CASE_DESK)


@router.get("/casework/mine", response_class=HTMLResponse)
async def my_cases(request: Request, user: Annotated[ConsoleUser, Depends(HOLDERS)]):
    """The cases the person holds, the next visit first; area staff can raise a concern."""
    principal = user.principal
    async with sessions(request)() as session, session.begin():
        rows = await owners.my_cases(session=session, principal=principal, limit=200)
        audit(
            session, principal, "case.list", "case", None, request, shown([r.case.id for r in rows])
        )
    return render(
        request,
        user,
        "mine.html",
        {
            "rows": rows,
            "now": clock.now(),
            "can_raise": principal.role in owners.AREA_ROLES,
        },
    )


@router.post("/casework/concerns")
async def raise_concern(
    request: Request, user: Annotated[ConsoleUser, Depends(AREA)]
) -> RedirectResponse:
    def fields(form: FormData) -> dict:
        child = {k: text_field(form, f"child_{k}", 200) for k in ("name", "age", "address")}
        return {"body": service.ConcernIn(
            description=text_field(form, "description"),
            child=ChildIn.model_validate({k: v for k, v in child.items() if v}),
            in_danger_now=form.get("in_danger_now") == "yes",
        )}

    return await submit(
        request, user, "/console/casework/mine", service.raise_concern,
        "已报告，中心将尽快研判处理", fields,
    )


@router.get("/tasks", response_class=HTMLResponse)
async def tasks_page(request: Request, user: Annotated[ConsoleUser, Depends(TASK_READERS)]):
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
        audit(
            session,
            principal,
            "task.list",
            "task",
            None,
            request,
            shown([t.case_id for t in open_ + closed]),
        )
    return render(
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


@router.post("/tasks/{task_id}/complete")
async def complete_task(
    request: Request, task_id: int, user: Annotated[ConsoleUser, Depends(TASK_READERS)]
) -> RedirectResponse:
    return await submit(
        request, user, "/console/tasks", task_service.complete, "任务已完成",
        lambda form: {"outcome": text_field(form, "outcome", 2000)}, task_id=task_id,
    )


def _back(case_id: int) -> str:
    return f"/console/cases/{case_id}"


def _assigner(kind: owners.Kind):
    async def post(
        request: Request, case_id: int, user: Annotated[ConsoleUser, Depends(CASEWORK)]
    ) -> RedirectResponse:
        def fields(form: FormData) -> dict:
            return {"body": service.AssignIn(
                username=text_field(form, "username", 60),
                reason=text_field(form, "reason", 2000) or None,
            )}

        return await submit(
            request, user, _back(case_id), service.assign_holder,
            f"已指派{owners.KIND_LABELS[kind]}", fields, case_id=case_id, kind=kind,
        )

    return post


router.post("/cases/{case_id}/owner")(_assigner("owner"))
router.post("/cases/{case_id}/pairing")(_assigner("pairing"))


@router.post("/cases/{case_id}/plan")
async def post_plan(
    request: Request, case_id: int, user: Annotated[ConsoleUser, Depends(CASEWORK)]
) -> RedirectResponse:
    def fields(form: FormData) -> dict:
        return {"body": service.PlanIn(
            needs=[str(n) for n in form.getlist("needs")][:30],
            reason=text_field(form, "reason", 2000) or None,
        )}

    done = "帮扶计划已保存：一般案件的转介已发出，红、橙色案件待督导审批后发出"
    return await submit(
        request, user, _back(case_id), service.propose_plan, done, fields, case_id=case_id
    )


@router.post("/cases/{case_id}/plan/approve")
async def approve_plan(
    request: Request, case_id: int, user: Annotated[ConsoleUser, Depends(CASEWORK)]
) -> RedirectResponse:
    return await submit(
        request, user, _back(case_id), service.approve_plan, "帮扶计划已审批，转介已发出",
        case_id=case_id,
    )


@router.post("/cases/{case_id}/tasks")
async def add_task(
    request: Request, case_id: int, user: Annotated[ConsoleUser, Depends(CASEWORK)]
) -> RedirectResponse:
    def fields(form: FormData) -> dict:
        return {"body": task_service.TaskIn(
            department=text_field(form, "department", 40),
            title=text_field(form, "title", 200),
            due=text_field(form, "due", 10),
        )}

    return await submit(
        request, user, _back(case_id), task_service.add_task, "任务已添加", fields,
        case_id=case_id,
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


@router.post("/cases/{case_id}/close")
async def post_close(
    request: Request, case_id: int, user: Annotated[ConsoleUser, Depends(CASEWORK)]
) -> RedirectResponse:
    def fields(form: FormData) -> dict:
        return {"body": service.CloseIn(
            type=text_field(form, "type", 30), reason=text_field(form, "reason", 2000) or None,
            override=form.get("override") == "yes",
        )}

    return await submit(
        request, user, _back(case_id), service.close_case,
        "已结案，相关部门与报告人将收到通知", fields, case_id=case_id,
    )


@router.post("/reports/{report_id}/no-contact")
async def post_no_contact(
    request: Request, report_id: int, user: Annotated[ConsoleUser, Depends(DESK)]
) -> RedirectResponse:
    await read_form(request, user)  # the CSRF check before anything is looked up
    async with sessions(request)() as session:
        case_id = await session.scalar(select(Report.case_id).where(Report.id == report_id))

    def fields(form: FormData) -> dict:
        return {"body": service.NoContactIn.model_validate(
            {"reason": text_field(form, "reason", 20)}
        )}

    return await submit(
        request, user, _back(case_id or 0), service.mark_no_contact,
        "已标记：不再联系该报告人", fields, report_id=report_id,
    )


@router.post("/cases/{case_id}/meetings")
async def post_meeting(
    request: Request, case_id: int, user: Annotated[ConsoleUser, Depends(CASEWORK)]
) -> RedirectResponse:
    def fields(form: FormData) -> dict:
        when = parse_local(text_field(form, "scheduled_at", 40))
        if when is None:
            raise Invalid("time_required", "请填写会商时间")
        return {"body": service.MeetingIn(
            scheduled_at=when,
            departments=[str(d) for d in form.getlist("departments")][:20],
            agenda=text_field(form, "agenda", 2000),
            place=text_field(form, "place", 200) or None,
        )}

    return await submit(
        request, user, _back(case_id), service.schedule_meeting, "会商邀请已发出", fields,
        case_id=case_id,
    )


@router.post("/meetings/{meeting_id}/record")
async def record_meeting(
    request: Request, meeting_id: int, user: Annotated[ConsoleUser, Depends(CASEWORK)]
) -> RedirectResponse:
    await read_form(request, user)  # the CSRF check before anything is looked up
    async with sessions(request)() as session:
        meeting = await meetings.load_meeting(session, user.principal, meeting_id)
        back = _back(meeting.case_id)

    def fields(form: FormData) -> dict:
        rows = zip(
            form.getlist("decision_title"),
            form.getlist("decision_department"),
            form.getlist("decision_due"),
            strict=False,
        )
        return {"body": service.HeldIn(
            attended=[str(d) for d in form.getlist("attended")][:20],
            participants=text_field(form, "participants", 2000),
            notes=text_field(form, "notes"),
            decisions=[
                service.DecisionIn(
                    title=str(t).strip()[:200],
                    department=str(d)[:40],
                    due=str(due).strip()[:10] or "5wd",
                )
                for t, d, due in list(rows)[:20]
                if str(t).strip()
            ],
        )}

    return await submit(
        request, user, back, service.record_meeting, "会商结果已记录，决定已成为任务", fields,
        meeting_id=meeting_id,
    )


@router.post("/cases/{case_id}/placements")
async def post_placement(
    request: Request, case_id: int, user: Annotated[ConsoleUser, Depends(CASEWORK)]
) -> RedirectResponse:
    def fields(form: FormData) -> dict:
        return {"body": service.PlacementIn.model_validate(
            {
                "kind": text_field(form, "kind", 30),
                "body": text_field(form, "body", 200),
                "start_on": text_field(form, "start_on", 10),
                "end_on": text_field(form, "end_on", 10) or None,
            }
        )}

    return await submit(
        request, user, _back(case_id), service.add_placement, "安置已登记", fields,
        case_id=case_id,
    )


@router.post("/cases/{case_id}/interventions")
async def post_intervention(
    request: Request, case_id: int, user: Annotated[ConsoleUser, Depends(CASEWORK)]
) -> RedirectResponse:
    def fields(form: FormData) -> dict:
        return {"body": service.InterventionIn.model_validate(
            {
                "step": text_field(form, "step", 30),
                "department": text_field(form, "department", 40),
                "acted_on": text_field(form, "acted_on", 10),
                "document": text_field(form, "document", 200) or None,
                "skip_reason": text_field(form, "skip_reason", 2000) or None,
            }
        )}

    return await submit(
        request, user, _back(case_id), service.add_intervention, "监护干预已登记", fields,
        case_id=case_id,
    )


@router.post("/cases/{case_id}/assessments")
async def post_written_assessment(
    request: Request, case_id: int, user: Annotated[ConsoleUser, Depends(CASEWORK)]
) -> RedirectResponse:
    def fields(form: FormData) -> dict:
        return {"body": service.AssessIn(
            answers={q.code: text_field(form, f"q_{q.code}", 40) for q in questions()},
            risk_level=text_field(form, "risk_level", 10) or None,
            override_reason=text_field(form, "override_reason", 2000) or None,
            summary=text_field(form, "summary"),
            needs=[str(n) for n in form.getlist("needs")][:30],
        )}

    return await submit(
        request, user, _back(case_id), service.assess, "评估已保存", fields, case_id=case_id
    )


@router.post("/operator/calls/{call_sid}/wrapup")
async def wrap_up(
    request: Request, call_sid: str, user: Annotated[ConsoleUser, Depends(CALL_DESK)]
) -> RedirectResponse:
    def fields(form: FormData) -> dict:
        return {"body": service.WrapupIn(
            type=text_field(form, "type", 20), note=text_field(form, "note", 2000) or None
        )}

    return await submit(
        request, user, "/console/casework/calls", service.wrap_up_call, "来电已小结", fields,
        call_sid=call_sid,
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
    user: Annotated[ConsoleUser, Depends(CALL_DESK)],
    since: str = "",
    until: str = "",
):
    """Calls to wrap up, and the period's calls by type (default: the last 30 days)."""
    principal = user.principal
    end = parse_local(until) or clock.now()
    start = parse_local(since) or end - timedelta(days=30)
    stats = await in_transaction(
        request, service.wrapup_stats, principal=principal, since=start, until=end
    )
    async with sessions(request)() as session, session.begin():
        waiting = await unwrapped_calls(session, principal)
        audit(session, principal, "call.list", "call", None, request, {"count": len(waiting)})
    peak = max((i.count for i in stats.items), default=0)
    return render(
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
