"""Supervision's console pages: the scorecard (printable, XLSX, PDF), 督查 orders, 重点个案
with the leadership meeting's minutes, a case's supervision (督导 notes), periodic reports.

Every page calls the same service functions as the JSON API; forms go through the
console's CSRF check and come back with the refusal's Chinese message or the result.
"""

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from channels.web import client_ip, sessions
from db import clock
from db.columns import CASE_ID_DIGITS, CASE_ID_MAX
from dispatch.console.periods import Period
from dispatch.console.timefmt import local_zone, parse_day, parse_local
from dispatch.console.web import (
    ConsoleRoute,
    ConsoleUser,
    act,
    as_user,
    read_form,
    render,
    see_other,
    staff,
    submit,
    text_field,
    texts,
)
from dispatch.staff.audit import audit, shown_cases
from dispatch.staff.permissions import INSPECT, ORDER_READ, PERIODIC_REPORT, SCORECARD_READ
from dispatch.supervision import exports, reports, service
from dispatch.supervision.scorecard import scorecard_period
from workflows import supervision as rules
from workflows.errors import Invalid, NotFound
from workflows.reference import department_labels
from workflows.referrals.workflow import STATUS_LABELS

router = APIRouter(prefix="/console/supervision", route_class=ConsoleRoute, include_in_schema=False)

SCORECARD_READERS = staff(SCORECARD_READ)
ORDER_READERS = staff(ORDER_READ)
CENTER_SUPERVISORS = staff(INSPECT)
REPORT_STAFF = staff(PERIODIC_REPORT)
KEY_CASES = "/console/supervision/key-cases"
# The exports' media types, by the file ending the link names.
MEDIA = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
}


def _attachment(body: bytes, media: str, name: str) -> Response:
    return Response(
        body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


async def _in_session(request: Request, work: Callable[[Any], Awaitable[Any]]) -> Any:
    async with sessions(request)() as session, session.begin():
        return await work(session)


def _today() -> date:
    return clock.now().astimezone(local_zone()).date()


def _default_due() -> str:
    """A new order's deadline as the form first offers it: a week from today, 18:00."""
    return (_today() + timedelta(days=7)).strftime("%Y-%m-%dT18:00")


@router.get("", response_class=HTMLResponse)
async def home(user: Annotated[ConsoleUser, Depends(ORDER_READERS)]) -> RedirectResponse:
    if user.principal.role == "liaison":
        return see_other("/console/supervision/orders")
    return see_other("/console/supervision/scorecard")


# --- scorecard ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CardAsked:
    """The scorecard's period and grouping as the query asks them."""

    period: Period
    by: str


def _card_asked(
    date_from: Annotated[str, Query(max_length=10)] = "",
    date_to: Annotated[str, Query(max_length=10)] = "",
    by: Annotated[str, Query(max_length=12)] = "office",
) -> CardAsked:
    """The page's and its exports' query: the days (by default this quarter), the grouping."""
    period = scorecard_period(parse_day(date_from), parse_day(date_to))
    return CardAsked(period, by if by in ("office", "department") else "office")


async def _card(request: Request, user: ConsoleUser, asked: CardAsked, what: str):
    period, by = asked.period, asked.by
    card = await as_user(request, user, service.read_scorecard, period=period, by=by, what=what)
    return period, card


@router.get("/scorecard", response_class=HTMLResponse)
async def scorecard_page(
    request: Request,
    user: Annotated[ConsoleUser, Depends(SCORECARD_READERS)],
    asked: Annotated[CardAsked, Depends(_card_asked)],
):
    period, card = await _card(request, user, asked, "supervision.scorecard")
    query = f"date_from={period.start.date()}&date_to={period.last_day}&by={card.by}"
    return render(
        request,
        user,
        "supervision_scorecard.html",
        {
            "card": card,
            "period": period,
            "query": query,
            "percent": exports.percent,
            "statuses": STATUS_LABELS,
        },
    )


@router.get("/scorecard.{fmt}")
async def scorecard_file(
    request: Request,
    fmt: str,
    user: Annotated[ConsoleUser, Depends(SCORECARD_READERS)],
    asked: Annotated[CardAsked, Depends(_card_asked)],
) -> Response:
    """The scorecard as XLSX or PDF (the printable page's figures)."""
    if fmt not in MEDIA:
        raise NotFound()
    period, card = await _card(request, user, asked, "supervision.export")
    build = exports.scorecard_xlsx if fmt == "xlsx" else exports.scorecard_pdf
    body = await asyncio.to_thread(build, card)
    name = f"scorecard-{period.start.date()}-{period.last_day}.{fmt}"
    return _attachment(body, MEDIA[fmt], name)


# --- 督查 orders ------------------------------------------------------------------------


@router.get("/orders", response_class=HTMLResponse)
async def orders_page(
    request: Request,
    user: Annotated[ConsoleUser, Depends(ORDER_READERS)],
    status: Annotated[str, Query(max_length=12)] = "",
):
    wanted = status if status in rules.ORDER_STATUS_LABELS else None

    async def work(session):
        rows = await service.list_orders(session, user.principal, wanted, 300)
        audit(
            session,
            user.principal,
            "supervision.orders",
            "case",
            None,
            request,
            shown_cases([o.case_id for o in rows]),
        )
        return rows

    rows = await _in_session(request, work)
    p = user.principal
    return render(
        request,
        user,
        "supervision_orders.html",
        {
            "orders": rows,
            "status": wanted or "",
            "labels": rules.ORDER_STATUS_LABELS,
            "can_open": p.is_center and p.role in ("supervisor", "inspector"),
            "can_answer": p.role in ("liaison", "supervisor") and not p.is_center,
            "departments": department_labels(),
            "now": clock.now(),
            "default_due": _default_due(),
        },
    )


def _deadline(form, name: str = "due_at") -> datetime:
    moment = parse_local(text_field(form, name, 20))
    if moment is None:
        raise Invalid("bad_deadline", "请填写整改期限（日期和时间）")
    return moment


def _number(form, name: str) -> int | None:
    """A row id from the form: a case id is a bigint (db.columns), any other an integer."""
    top = CASE_ID_MAX if name == "case_id" else 2**31 - 1
    value = text_field(form, name, CASE_ID_DIGITS + 1)
    if not value:
        return None
    if not value.isdigit() or int(value) > top:
        raise Invalid("bad_number", "编号应为正整数")
    return int(value)


async def _do(
    request: Request, user: ConsoleUser, back: str, done: str, work: Callable[[Any], Awaitable[Any]]
) -> RedirectResponse:
    return await act(request, user, back, lambda: _in_session(request, work), done)


def _case_id(form) -> int:
    case_id = _number(form, "case_id")
    if case_id is None:
        raise Invalid("case_required", "请填写案件编号")
    return case_id


def _reason(form) -> dict[str, str]:
    return {"reason": text_field(form, "reason", 2000)}


def _minutes(form) -> dict[str, Any]:
    day = parse_day(text_field(form, "meeting_on", 10))
    if day is None:
        raise Invalid("bad_date", "请填写会议日期")
    return {"meeting_on": day, **texts(form, meeting=120, minutes=20000, decisions=10000)}


def _note(form) -> dict[str, Any]:
    """The findings and up to three required actions (an action left blank is none)."""
    actions = [
        service.RequiredAction(
            words, text_field(form, f"department_{i}", 40), _deadline(form, f"due_at_{i}")
        )
        for i in range(1, 4)
        if (words := text_field(form, f"action_{i}", 2000))
    ]
    return {"findings": text_field(form, "findings", 20000), "actions": actions}


@router.post("/orders")
async def open_order(
    request: Request, user: Annotated[ConsoleUser, Depends(CENTER_SUPERVISORS)]
) -> RedirectResponse:
    form = await read_form(request, user)
    back = text_field(form, "back", 200)
    back = back if back.startswith("/console/supervision") else "/console/supervision/orders"

    async def run() -> None:
        target = service.OrderTarget(
            _number(form, "case_id"),
            _number(form, "referral_id"),
            text_field(form, "department", 40) or None,
        )
        due_at = _deadline(form)
        await as_user(
            request, user, service.open_order, target=target, due_at=due_at, **_reason(form)
        )

    return await act(request, user, back, run, "已挂牌督办，已通知责任部门")


@router.post("/orders/{order_id}/{event}")
async def order_event(
    request: Request,
    order_id: int,
    event: str,
    user: Annotated[ConsoleUser, Depends(ORDER_READERS)],
) -> RedirectResponse:
    if event not in rules.ORDER_EVENT_LABELS:
        raise NotFound()
    done = {"answer": "整改情况已反馈", "send_back": "已退回重新整改", "lift": "已解除督办"}
    return await submit(
        request,
        user,
        "/console/supervision/orders",
        service.order_event,
        done[event],
        lambda form: {"text": text_field(form, "text")},
        order_id=order_id,
        event=event,
    )


# --- 重点个案 ----------------------------------------------------------------------------


@router.get("/key-cases", response_class=HTMLResponse)
async def key_cases_page(
    request: Request, user: Annotated[ConsoleUser, Depends(CENTER_SUPERVISORS)]
):
    async def work(session):
        rows = await service.key_cases(session, user.principal)
        audit(
            session,
            user.principal,
            "supervision.key_cases",
            "case",
            None,
            request,
            shown_cases([r["case"].id for r in rows]),
        )
        return rows

    rows = await _in_session(request, work)
    return render(
        request,
        user,
        "supervision_key_cases.html",
        {"rows": rows, "today": _today().isoformat()},
    )


@router.post("/key-cases")
async def flag_key_case(
    request: Request, user: Annotated[ConsoleUser, Depends(CENTER_SUPERVISORS)]
) -> RedirectResponse:
    return await submit(
        request,
        user,
        KEY_CASES,
        service.flag_key_case,
        "已列为重点个案",
        lambda form: {"case_id": _case_id(form), **_reason(form)},
    )


@router.post("/key-cases/{case_id}/minutes")
async def record_minutes(
    request: Request, case_id: int, user: Annotated[ConsoleUser, Depends(CENTER_SUPERVISORS)]
) -> RedirectResponse:
    done = "会议纪要已记录"
    minutes = service.record_minutes
    return await submit(request, user, KEY_CASES, minutes, done, _minutes, case_id=case_id)


@router.post("/key-cases/{case_id}/clear")
async def clear_key_case(
    request: Request, case_id: int, user: Annotated[ConsoleUser, Depends(CENTER_SUPERVISORS)]
) -> RedirectResponse:
    clear, done = service.clear_key_case, "已撤销重点个案"
    return await submit(request, user, KEY_CASES, clear, done, _reason, case_id=case_id)


# --- one case's supervision: 督导 notes -------------------------------------------------


@router.get("/cases/{case_id}", response_class=HTMLResponse)
async def case_page(
    request: Request, case_id: int, user: Annotated[ConsoleUser, Depends(CENTER_SUPERVISORS)]
):
    async def work(session):
        data = await service.case_supervision(session, user.principal, case_id)
        audit(session, user.principal, "supervision.case", "case", case_id, request)
        return data

    data = await _in_session(request, work)
    return render(
        request,
        user,
        "supervision_case.html",
        {
            **data,
            "labels": rules.ORDER_STATUS_LABELS,
            "departments": department_labels(),
            "default_due": _default_due(),
        },
    )


@router.post("/cases/{case_id}/notes")
async def add_note(
    request: Request, case_id: int, user: Annotated[ConsoleUser, Depends(CENTER_SUPERVISORS)]
) -> RedirectResponse:
    back, done = f"/console/supervision/cases/{case_id}", "督导意见已记录，整改要求已下达"
    return await submit(request, user, back, service.add_note, done, _note, case_id=case_id)


# --- periodic reports --------------------------------------------------------------------


def _default_period() -> str:
    today = _today()
    q = (today.month - 1) // 3  # the last finished quarter
    return f"{today.year}Q{q}" if q else f"{today.year - 1}Q4"


@router.get("/reports", response_class=HTMLResponse)
async def reports_page(
    request: Request,
    user: Annotated[ConsoleUser, Depends(REPORT_STAFF)],
    period: Annotated[str, Query(max_length=10)] = "",
):
    chosen = reports.parse(period or _default_period())
    lines = await _in_session(
        request, lambda session: reports.overview(session, user.principal, chosen, _today())
    )
    p = user.principal
    own = next((line for line in lines if line["district"] == p.jurisdiction), None)
    return render(
        request,
        user,
        "supervision_reports.html",
        {
            "period": chosen,
            "lines": lines,
            "own": own,
            "kinds": rules.KINDS,
            "is_city": len(lines) > 1 or (p.scope_path or "").count("/") == 1,
        },
    )


async def _report_view(request: Request, user: ConsoleUser, district: str, code: str):
    period = reports.parse(code)

    async def work(session):
        report = await reports.load(session, user.principal, district, period)
        place = await reports.district_of(session, district)
        figures = (
            report.figures
            if report and report.figures
            else await reports.report_figures(session, place, period)
        )
        audit(
            session,
            user.principal,
            "supervision.report",
            "report",
            report.id if report else None,
            request,
            {"district": district, "period": period.code},
        )
        return report, place, figures

    return (period, *await _in_session(request, work))


@router.get("/reports/{district}/{code}", response_class=HTMLResponse)
async def report_page(
    request: Request,
    district: str,
    code: str,
    user: Annotated[ConsoleUser, Depends(REPORT_STAFF)],
):
    period, report, place, figures = await _report_view(request, user, district, code)
    p = user.principal
    own = p.jurisdiction == district
    status = report.status if report else "draft"
    return render(
        request,
        user,
        "supervision_report.html",
        {
            "period": period,
            "report": report,
            "place": place,
            "f": figures,
            "percent": exports.percent,
            "status_labels": rules.REPORT_STATUS_LABELS,
            "can_edit": own
            and p.role in ("caseworker", "supervisor")
            and status in rules.REPORT_EDITABLE,
            "can_review": own
            and p.role == "supervisor"
            and report is not None
            and status in ("draft", "returned"),
            "can_submit": own and p.role == "supervisor" and status == "reviewed",
            "can_judge": not own
            and status == "submitted"
            and p.role in ("supervisor", "inspector"),
            "typical": (report.typical_cases if report else []) + [{"title": "", "text": ""}] * 3,
        },
    )


@router.get("/reports/{district}/{code}/report.{fmt}")
async def report_file(
    request: Request,
    district: str,
    code: str,
    fmt: str,
    user: Annotated[ConsoleUser, Depends(REPORT_STAFF)],
) -> Response:
    if fmt not in MEDIA:
        raise NotFound()
    period, report, place, figures = await _report_view(request, user, district, code)
    build = exports.report_xlsx if fmt == "xlsx" else exports.report_pdf
    body = await asyncio.to_thread(build, report, figures, place.name, period.label)
    return _attachment(body, MEDIA[fmt], f"report-{district}-{period.code}.{fmt}")


@router.post("/reports/{district}/{code}")
async def save_report(
    request: Request,
    district: str,
    code: str,
    user: Annotated[ConsoleUser, Depends(REPORT_STAFF)],
) -> RedirectResponse:
    form = await read_form(request, user)
    period = reports.parse(code)
    typical = [
        {"title": text_field(form, f"title_{i}", 100), "text": text_field(form, f"text_{i}")}
        for i in range(1, 11)
    ]

    async def work(session):
        await reports.save_draft(
            session,
            user.principal,
            district,
            period,
            text_field(form, "narrative", 20000),
            [t for t in typical if t["title"] or t["text"]],
            clock.now(),
        )

    return await _do(
        request, user, f"/console/supervision/reports/{district}/{period.code}", "报告已保存", work
    )


@router.post("/reports/{district}/{code}/{event}")
async def report_event(
    request: Request,
    district: str,
    code: str,
    event: str,
    user: Annotated[ConsoleUser, Depends(REPORT_STAFF)],
) -> RedirectResponse:
    if event not in rules.REPORT_EVENT_LABELS:
        raise NotFound()
    form = await read_form(request, user)
    period = reports.parse(code)

    async def work(session):
        await reports.report_event(
            session,
            user.principal,
            district,
            period,
            event,
            text_field(form, "comment", 5000),
            clock.now(),
            ip=client_ip(request),
        )

    done = {
        "review": "已审核",
        "submit": "已报送市级",
        "acknowledge": "已确认收到",
        "return": "已退回区县",
    }
    return await _do(
        request, user, f"/console/supervision/reports/{district}/{period.code}", done[event], work
    )
