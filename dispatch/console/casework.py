"""The case page and the caseworkers' list: timeline, reports, assessment, risk level,
referrals and routing, visits, conferences, workflow actions, possible duplicates.

Reads and writes go through the services the staff API calls too (`dispatch.cases.service`,
`dispatch.referrals.service`), so a page sees exactly what the API would
show this person, and every read and write is audited the same way. Phone numbers are
masked on the page until the person asks to see them, which is audited on its own.
"""

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import select
from starlette.datastructures import FormData

from channels.web import client_ip, sessions
from db import clock
from db.engine import transaction
from db.models import Office, Referral
from dispatch.cases import corrections
from dispatch.cases import service as cases
from dispatch.cases.access import load_case
from dispatch.children.matching_service import similar_cases
from dispatch.children.records import candidates_for_case, linked_children
from dispatch.common.paging import CasePage
from dispatch.console import web
from dispatch.console.casework_pages import casework_panel
from dispatch.console.conferences import ConferenceIn, conferences_for, record_conference
from dispatch.console.timefmt import parse_local
from dispatch.console.worklist import cases_in_states, overdue_visits, referrals_to_route
from dispatch.referrals import service as referrals
from dispatch.staff import permissions
from dispatch.staff.audit import audit
from dispatch.staff.permissions import CASE_DESK, CASE_READ, EVENT_ROLES
from dispatch.staff.scope import referral_filter
from dispatch.telephony import calls_service, sms_service
from workflows.cases.intake import ChildIn
from workflows.cases.workflow import FINISHED, CaseFacts, allowed_events, may_offer
from workflows.reference import category_labels, department_labels, gender_labels
from workflows.referrals.deadlines import levels
from workflows.triage.policy import evidence_lines, not_a_case_label

router = APIRouter(prefix="/console/cases", route_class=web.ConsoleRoute, include_in_schema=False)

CASE_READERS = web.staff(CASE_READ)
CENTER_DESK = web.staff(CASE_DESK)
CASEWORK = web.staff(permissions.CASEWORK)
VISITORS = web.staff(permissions.VISIT)
# Events whose form asks for a reason (the workflow refuses them without one).
REASON_EVENTS = ("reopen", "merge", "invalidate")
# Closed on the case page only by its own form, to the closing criteria with a type
# (dispatch.casework.closing), so the page never offers a close that skips them.
OWN_FORM_EVENTS = ("close",)


@router.get("", response_class=HTMLResponse)
async def worklist(request: Request, user: Annotated[web.ConsoleUser, Depends(CASEWORK)]):
    """The caseworker's main page: cases to assess, shares to route, visits past due."""
    principal = user.principal
    async with sessions(request)() as session, session.begin():
        to_assess = await cases_in_states(session, principal, ("reported", "assessing"))
        to_route = await referrals_to_route(session, principal)
        late_visits = await overdue_visits(session, principal, clock.now())
        ids = [c.id for c in to_assess] + [c.id for _, c in to_route + late_visits]
        web.audit_list(session, principal, request, "case", ids)
    return web.render(
        request,
        user,
        "cases.html",
        {"to_assess": to_assess, "to_route": to_route, "late_visits": late_visits},
    )


def _actions(detail: cases.CaseDetail, user: web.ConsoleUser) -> list[str]:
    principal = user.principal
    if not principal.is_center:
        return []
    known = detail.model_dump(include={"id", "state", "risk_level", "mandatory", "emergency"})
    facts = CaseFacts(**known)
    return [
        e
        for e in allowed_events(facts)
        if e not in OWN_FORM_EVENTS
        and principal.role in EVENT_ROLES.get(e, ())
        and may_offer(facts, e, principal.role)
    ]


async def _case_page(
    request: Request, user: web.ConsoleUser, case_id: int, *, reveal: bool = False
) -> HTMLResponse:
    principal = user.principal
    detail = await web.as_user(request, user, cases.get_case, case_id=case_id)
    async with sessions(request)() as session, session.begin():
        case = await load_case(session, principal, case_id)
        referrals = list(
            (
                await session.execute(
                    select(Referral)
                    .where(Referral.case_id == case_id, referral_filter(principal))
                    .order_by(Referral.id)
                )
            ).scalars()
        )
        conferences = await conferences_for(session, principal, case_id)
        panel = await casework_panel(session, principal, case)
        suggestions = await similar_cases(session, principal, case) if principal.is_center else []
        children = await linked_children(session, principal, case_id)
        child_candidates = (
            await candidates_for_case(session, principal, case) if principal.is_center else []
        )
        offices = (
            list((await session.execute(select(Office).order_by(Office.id))).scalars())
            if principal.is_center
            else []
        )
        if reveal:
            audit(
                session,
                principal,
                "case.reveal",
                "case",
                case_id,
                request,
                {"fields": ["reporter.phone"]},
            )
    threads = calls = None
    if principal.is_center:
        ip = client_ip(request)
        page = CasePage(case_id, limit=20)
        async with transaction(sessions(request)) as session:
            threads = await sms_service.list_threads(
                session=session, principal=principal, ip=ip, page=page
            )
            calls = await calls_service.list_calls(
                session=session, principal=principal, ip=ip, page=page
            )
    return web.render(
        request,
        user,
        "case.html",
        {
            "c": detail,
            "referrals": referrals,
            "conferences": conferences,
            "cw": panel,
            "suggestions": suggestions,
            "children": children,
            "child_candidates": child_candidates,
            "offices": offices,
            "threads": threads.items if threads else [],
            "calls": calls.items if calls else [],
            "actions": _actions(detail, user),
            "reason_events": REASON_EVENTS,
            "levels": levels(),
            "needs": cases.NEEDS,
            "departments": department_labels(),
            "category_choices": category_labels(),
            "genders": gender_labels(),
            "jurisdictions": web.jurisdiction_choices(),
            "not_a_case": not_a_case_label(detail.not_a_case),
            "evidence": {
                r.id: evidence_lines((r.judgement or {}).get("evidence") or {}, category_labels())
                for r in detail.reports
            },
            "can_correct": principal.is_center and detail.state not in FINISHED,
            "reveal": reveal,
            "can_casework": permissions.CASEWORK.allows(principal),
            "can_visit": permissions.VISIT.allows(principal),
            "now": clock.now(),
        },
    )


@router.get("/{case_id}", response_class=HTMLResponse)
async def case_page(
    request: Request, case_id: int, user: Annotated[web.ConsoleUser, Depends(CASE_READERS)]
):
    return await _case_page(request, user, case_id)


@router.post("/{case_id}/reveal", response_class=HTMLResponse)
async def reveal(
    request: Request, case_id: int, user: Annotated[web.ConsoleUser, Depends(CASE_READERS)]
):
    """The full phone numbers, for a person who needs to call: audited as its own read."""
    await web.read_form(request, user)
    return await _case_page(request, user, case_id, reveal=True)


def _event(form: FormData) -> cases.EventIn:
    into = web.text_field(form, "into_case_id", 12)
    return cases.EventIn(
        **web.texts(form, event=20),
        **web.optional_texts(form, reason=2000),
        into_case_id=int(into) if into.isdigit() else None,
        override=web.yes(form, "override"),
    )


def _assessment(form: FormData) -> cases.AssessmentIn:
    return cases.AssessmentIn(
        **web.texts(form, risk_level=10),
        **web.optional_texts(form, guardianship=2000, notes=5000),
        needs=web.choices(form, "needs", 20),
    )


def _visit(form: FormData) -> cases.VisitIn:
    return cases.VisitIn(
        visited_at=parse_local(web.text_field(form, "visited_at", 40)),
        **web.texts(form, findings=5000),
        **web.optional_texts(form, risk_after=10),
    )


def _route(form: FormData) -> referrals.RouteIn:
    """Route a share by hand: after a return (re-routing) or when no office was found."""
    office = web.text_field(form, "office_id", 12)
    return referrals.RouteIn(
        **web.texts(form, department=40), office_id=int(office) if office.isdigit() else None
    )


router.post("/{case_id}/events")(
    web.case_form(CENTER_DESK, cases.send_event, "已完成流程操作", _event)
)
router.post("/{case_id}/assessment")(
    web.case_form(CASEWORK, cases.assess, "评估已保存", _assessment)
)
router.post("/{case_id}/visits")(web.case_form(VISITORS, cases.record_visit, "回访已登记", _visit))
router.post("/{case_id}/route")(web.case_form(CASEWORK, referrals.route_case, "已转介", _route))


@router.post("/{case_id}/conferences")
async def post_conference(
    request: Request, case_id: int, user: Annotated[web.ConsoleUser, Depends(CASEWORK)]
) -> RedirectResponse:
    form = await web.read_form(request, user)
    now = clock.now()

    async def run() -> None:
        body = ConferenceIn(
            held_at=parse_local(web.text_field(form, "held_at", 40)) or now,
            departments=web.choices(form, "departments", 20),
            **web.texts(form, participants=2000, notes=5000, decisions=5000),
        )
        async with sessions(request)() as session, session.begin():
            await load_case(session, user.principal, case_id, lock=True)
            row = await record_conference(session, case_id, body, user.principal, now)
            audit(
                session,
                user.principal,
                "case.conference",
                "case",
                case_id,
                request,
                {"conference_id": row.id},
            )

    return await web.act(request, user, web.case_url(case_id), run, "会商记录已保存")


def _correction(form: FormData) -> corrections.CaseCorrectionIn:
    """Only what the person set: checked categories, a yes/no for danger, a chosen place,
    the child's fields that were filled in."""
    fields: dict = web.texts(form, reason=2000)
    categories = web.choices(form, "categories", 13)
    if categories:
        fields["categories"] = categories
    danger = web.text_field(form, "emergency", 3)
    if danger in ("yes", "no"):
        fields["emergency"] = danger == "yes"
    place = web.text_field(form, "jurisdiction", 32)
    if place:
        fields["jurisdiction"] = place
    child = web.child_fields(form, "name", "age", "gender", "address")
    if child:
        fields["child"] = ChildIn.model_validate(child)
    return corrections.CaseCorrectionIn.model_validate(fields)


# The same correction as `PATCH /api/v1/cases/{id}`, from the case page.
router.post("/{case_id}/correct")(
    web.case_form(
        CENTER_DESK, corrections.correct, "已更正，转介已按更正后的情况重新安排", _correction
    )
)
