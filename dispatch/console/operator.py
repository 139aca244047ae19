"""The operators' console: reports as they arrive (the list refreshes itself), callers
waiting and calls to return, registering a report while on a call, and case search.

The live parts are small polls of server-rendered fragments; a poll is not a person acting,
so it does not keep an idle session alive, and an empty poll reads no case and is not
audited (one that shows new reports is).
"""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from channels.web import client_ip, sessions
from channels.webform import _as_report, _form_values
from db.columns import CASE_ID_MAX
from db.engine import transaction
from dispatch.common.paging import CasePage
from dispatch.console import web
from dispatch.console.incoming import incoming_reports, list_version
from dispatch.console.search import SearchQuery, search_cases, search_children
from dispatch.console.timefmt import parse_day
from dispatch.staff.audit import audit
from dispatch.staff.auth import Principal
from dispatch.staff.permissions import CASE_DESK
from dispatch.telephony import callbacks_service, calls_service
from dispatch.telephony.params import CallSid
from dispatch.triage import service as triage
from workflows.cases.intake import ReportIn, field_errors
from workflows.cases.workflow import STATE_LABELS
from workflows.errors import DomainError
from workflows.reference import (
    category_labels,
    gender_labels,
    reporter_role_labels,
    situation_labels,
)
from workflows.triage.policy import evidence_lines, not_a_case_label

router = APIRouter(prefix="/console", route_class=web.ConsoleRoute, include_in_schema=False)

DESK = web.staff(CASE_DESK)
DESK_POLL = web.staff(CASE_DESK, touch=False)


@router.get("/operator", response_class=HTMLResponse)
async def operator_home(request: Request, user: Annotated[web.ConsoleUser, Depends(DESK)]):
    principal = user.principal
    async with sessions(request)() as session, session.begin():
        incoming = await incoming_reports(session, principal)
        web.audit_list(session, principal, request, "case", [r.case_id for r in incoming])
    return web.render(
        request,
        user,
        "operator.html",
        {
            "incoming": incoming,
            "after": max((r.report_id for r in incoming), default=0),
            "version": list_version(incoming),
            **await _desk(request, principal),
        },
    )


@router.get("/operator/incoming", response_class=HTMLResponse)
async def incoming_fragment(
    request: Request,
    user: Annotated[web.ConsoleUser, Depends(DESK_POLL)],
    after: Annotated[int, Query(ge=0, le=CASE_ID_MAX)] = 0,  # a report id
    v: Annotated[str, Query(max_length=32)] = "",
):
    """The live list again, most urgent first, when it changed since version `v` (204 when
    not: nothing shown, nothing audited); reports newer than `after` are marked new."""
    principal = user.principal
    async with sessions(request)() as session, session.begin():
        rows = await incoming_reports(session, principal)
        version = list_version(rows)
        if v and v == version:
            return Response(status_code=204, headers={"X-List-Version": version})
        if rows:
            web.audit_list(session, principal, request, "case", [r.case_id for r in rows])
    response = web.render(
        request, user, "_incoming_rows.html", {"incoming": rows, "new_after": after}
    )
    response.headers["X-After-Id"] = str(max((r.report_id for r in rows), default=after))
    response.headers["X-List-Version"] = version
    return response


@router.get("/operator/queue", response_class=HTMLResponse)
async def queue_fragment(request: Request, user: Annotated[web.ConsoleUser, Depends(DESK_POLL)]):
    """Callers waiting now (numbers masked), for the refreshing panel."""
    async with transaction(sessions(request)) as session:
        queue = await calls_service.queue_view(session=session, principal=user.principal)
    return web.render(request, user, "_queue.html", {"queue": queue})


async def _desk(request: Request, principal: Principal) -> dict:
    """The desk's side panels: callers waiting, the latest calls, call-backs due."""
    ip = client_ip(request)
    async with transaction(sessions(request)) as session:
        queue = await calls_service.queue_view(session=session, principal=principal)
        calls = await calls_service.list_calls(
            session=session, principal=principal, ip=ip, page=CasePage(limit=10)
        )
        callbacks = await callbacks_service.list_callbacks(
            session=session, principal=principal, ip=ip, status="pending", limit=20
        )
    return {"queue": queue, "calls": calls.items, "callbacks": callbacks.items}


async def _profile(
    request: Request, user: web.ConsoleUser, call_sid: str
) -> calls_service.CallerProfile:
    return await web.as_user(request, user, calls_service.caller_profile, call_sid=call_sid)


def _triage_context(text: str) -> dict:
    """What the call page's judgement panel shows for the notes typed so far."""
    if not text.strip():
        return {"j": None, "triage_error": None, "evidence": [], "not_a_case": ""}
    try:
        judged = triage.judgement_out(text)
    except DomainError as exc:
        return {"j": None, "triage_error": exc.message, "evidence": [], "not_a_case": ""}
    return {
        "j": judged,
        "triage_error": None,
        "evidence": evidence_lines(judged.evidence, category_labels()),
        "not_a_case": not_a_case_label(judged.not_a_case),
    }


@router.post("/triage", response_class=HTMLResponse)
async def live_triage(request: Request, user: Annotated[web.ConsoleUser, Depends(DESK)]):
    """The judgement of the notes an operator is typing (the call page asks as they type).
    Reads no case and keeps no text, so it is not audited."""
    form = await web.read_form(request, user)
    text = str(form.get("text", ""))[: triage.MAX_CHARS * 4]
    return web.render(request, user, "_triage.html", _triage_context(text))


def _report_form(
    request: Request,
    user: web.ConsoleUser,
    call_sid: str,
    profile: calls_service.CallerProfile,
    *,
    values: dict,
    errors: dict[str, str],
    status: int = 200,
) -> HTMLResponse:
    return web.render(
        request,
        user,
        "call_report.html",
        {
            "call_sid": call_sid,
            "profile": profile,
            "v": values,
            "errors": errors,
            "roles": reporter_role_labels(),
            "situations": situation_labels(),
            "categories": category_labels(),
            "genders": gender_labels(),
            "jurisdictions": web.jurisdiction_choices(),
            **_triage_context(str(values.get("description", ""))),
        },
        status=status,
    )


@router.get("/operator/calls/{call_sid}/report", response_class=HTMLResponse)
async def call_report_form(
    request: Request, call_sid: CallSid, user: Annotated[web.ConsoleUser, Depends(DESK)]
):
    """The report form beside what the hotline knows of this caller (earlier reports)."""
    profile = await _profile(request, user, call_sid)
    empty = {"situations": [], "categories": [], "in_danger_now": ""}
    return _report_form(request, user, call_sid, profile, values=empty, errors={})


@router.post("/operator/calls/{call_sid}/report")
async def call_report(
    request: Request, call_sid: CallSid, user: Annotated[web.ConsoleUser, Depends(DESK)]
) -> Response:
    form = await web.read_form(request, user)
    values = _form_values(form)
    try:
        body = ReportIn.model_validate(_as_report(values))
    except ValidationError as exc:
        profile = await _profile(request, user, call_sid)
        return _report_form(
            request, user, call_sid, profile, values=values, errors=field_errors(exc), status=422
        )
    result = await web.as_user(
        request,
        user,
        calls_service.report_during_call,
        call_sid=call_sid,
        body=body,
    )
    note = "（本通来电已登记过，显示的是同一份报告）" if result.duplicate else ""
    return await web.flash_and_go(
        request,
        user,
        f"/console/cases/{result.case_id}",
        f"已登记并关联来电，回执码 {result.receipt_code}{note}",
    )


@router.get("/search", response_class=HTMLResponse)
async def search(
    request: Request,
    user: Annotated[web.ConsoleUser, Depends(DESK)],
    q: Annotated[str, Query(max_length=100)] = "",
    state: Annotated[str, Query(max_length=20)] = "",
    category: Annotated[str, Query(max_length=40)] = "",
    jurisdiction: Annotated[str, Query(max_length=32)] = "",
    date_from: web.DayText = "",
    date_to: web.DayText = "",
):
    query = SearchQuery(
        q.strip(), state, category, jurisdiction, parse_day(date_from), parse_day(date_to)
    )
    results, children = [], []
    if not query.empty:
        async with sessions(request)() as session, session.begin():
            results = await search_cases(session, user.principal, query)
            children = await search_children(session, user.principal, query.text)
            # Which filters, never their values: a search text can be a name or a number.
            used = [k for k, v in vars(query).items() if v]
            audit(
                session,
                user.principal,
                "case.search",
                "case",
                None,
                request,
                {
                    "filters": used,
                    **web.shown([r.case_id for r in results]),
                    "children": [c.child_id for c in children],
                },
            )
    return web.render(
        request,
        user,
        "search.html",
        {
            "query": query,
            "results": results,
            "children": children,
            "searched": not query.empty,
            "states": STATE_LABELS,
            "categories": category_labels(),
            "jurisdictions": web.jurisdiction_choices(),
        },
    )
