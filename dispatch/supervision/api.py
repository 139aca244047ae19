"""Supervision's JSON endpoints: the scorecard (contract: api.md "Casework and
supervision"), 督查 orders, 重点个案 and minutes, 督导 notes, periodic reports."""

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from channels.web import json_only, sessions
from db import clock
from db.columns import CASE_ID_MAX
from dispatch.console import periods
from dispatch.staff.audit import audit
from dispatch.staff.auth import Principal, current_principal
from dispatch.staff.permissions import (
    INSPECT,
    ORDER_READ,
    PERIODIC_REPORT,
    SCORECARD_READ,
    requires,
)
from dispatch.supervision import reports, service
from dispatch.supervision.scorecard import scorecard, scorecard_period, today
from workflows.errors import Invalid, NotFound
from workflows.supervision import REPORT_EVENT_LABELS

router = APIRouter(prefix="/api/v1/supervision", tags=["supervision"])
SCORECARD_READERS = requires(SCORECARD_READ)
SUPERVISORS = requires(INSPECT)
ORDER_READERS = requires(ORDER_READ)
REPORT_STAFF = requires(PERIODIC_REPORT)
# Signed in first (401), then a JSON body (415), then the role (403).
JSON = [Depends(current_principal), Depends(json_only)]


class ScorecardItem(BaseModel):
    department: str
    department_name: str
    office: str | None
    office_id: int | None
    jurisdiction: str | None
    received: int
    claimed: int
    claimed_on_time: int
    acted_on_time: int
    claimed_on_time_rate: float | None
    acted_on_time_rate: float | None
    median_minutes_to_claim: float | None
    p90_minutes_to_claim: float | None
    median_minutes_to_action: float | None
    p90_minutes_to_action: float | None
    escalated: int
    flagged: int
    flagged_by_hand: int
    returned: int
    return_reasons: list[dict[str, Any]]
    outcomes: dict[str, int]
    overdue: int
    score: float | None = None
    rank: int | None = None
    previous: dict[str, Any] | None = None
    trend: dict[str, Any] = {}


class ScorecardOut(BaseModel):
    since: date
    until: date
    by: str
    items: list[ScorecardItem]
    total: dict[str, Any]
    previous_total: dict[str, Any] | None


async def read_scorecard(
    request: Request, principal: Principal, period: periods.Period, by: str, what: str
):
    async with sessions(request)() as session, session.begin():
        card = await scorecard(
            session, principal, period.start, period.end, by=by, now=clock.now()
        )
        audit(
            session,
            principal,
            what,
            "referral",
            None,
            request,
            {"from": period.start.isoformat(), "to": period.end.isoformat(), "by": by},
        )
    return card


@router.get("/scorecard", response_model=ScorecardOut)
async def get_scorecard(
    request: Request,
    principal: Annotated[Principal, Depends(SCORECARD_READERS)],
    since: date | None = None,
    until: date | None = None,
    by: Literal["office", "department"] = "office",
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> ScorecardOut:
    """Per office (or per department) over [since, until], ranked for the 通报, with the
    trend against the period of the same length before. The center's supervisors see the
    offices in their jurisdiction; a department's supervisor only their department's."""
    period = scorecard_period(since, until)
    card = await read_scorecard(request, principal, period, by, "supervision.scorecard")
    return ScorecardOut(
        since=period.start.date(),
        until=period.last_day,
        by=by,
        items=[ScorecardItem(**item) for item in card.items[:limit]],
        total=card.total,
        previous_total=card.previous_total,
    )


# --- 督查 orders ------------------------------------------------------------------------


class OrderIn(BaseModel):
    referral_id: Annotated[int | None, Field(default=None, ge=1, le=2**31 - 1)] = None
    case_id: Annotated[int | None, Field(default=None, ge=1, le=CASE_ID_MAX)] = None
    department: Annotated[
        str | None,
        Field(default=None, max_length=40, json_schema_extra={"x-choices": "department"}),
    ] = None
    reason: Annotated[str, Field(min_length=1, max_length=2000)]
    due_at: datetime


class OrderOut(BaseModel):
    id: int
    case_id: int
    referral_id: int | None
    department: str
    office_id: int | None
    status: str
    reason: str
    due_at: datetime
    opened_by: str
    opened_at: datetime
    answer: str | None
    answered_at: datetime | None
    comment: str | None
    lifted_at: datetime | None
    escalation: int


class OrderList(BaseModel):
    items: list[OrderOut]


class TextIn(BaseModel):
    text: Annotated[str, Field(min_length=1, max_length=5000)]


def _order_out(o) -> OrderOut:
    return OrderOut(
        id=o.id,
        case_id=o.case_id,
        referral_id=o.referral_id,
        department=o.department_code,
        office_id=o.office_id,
        status=o.status,
        reason=o.reason,
        due_at=o.due_at,
        opened_by=o.opened_by_label,
        opened_at=o.opened_at,
        answer=o.answer,
        answered_at=o.answered_at,
        comment=o.comment,
        lifted_at=o.lifted_at,
        escalation=o.escalation,
    )


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise Invalid("bad_deadline", "整改期限需带时区，例如 2026-12-31T18:00:00+08:00")
    return moment


@router.post("/orders", response_model=OrderOut, status_code=201, dependencies=JSON)
async def post_order(
    request: Request, body: OrderIn, principal: Annotated[Principal, Depends(SUPERVISORS)]
) -> OrderOut:
    """挂牌督办 by hand: a referral, or a case and the department that must rectify."""
    now = clock.now()
    async with sessions(request)() as session, session.begin():
        order = await service.open_order(
            session,
            principal,
            service.OrderTarget(body.case_id, body.referral_id, body.department),
            body.reason,
            _aware(body.due_at),
            now,
        )
        audit(
            session,
            principal,
            "supervision.order",
            "case",
            order.case_id,
            request,
            {"order_id": order.id},
        )
    return _order_out(order)


@router.get("/orders", response_model=OrderList)
async def get_orders(
    request: Request,
    principal: Annotated[Principal, Depends(ORDER_READERS)],
    status: Literal["open", "answered", "lifted"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> OrderList:
    async with sessions(request)() as session, session.begin():
        rows = await service.list_orders(session, principal, status, limit)
        audit(session, principal, "supervision.orders", "case", None, request, {"count": len(rows)})
    return OrderList(items=[_order_out(o) for o in rows])


async def _order_event(
    request: Request, principal: Principal, order_id: int, event: str, text: str
) -> OrderOut:
    async with sessions(request)() as session, session.begin():
        order = await service.order_event(
            session, principal, order_id, event, text, clock.now()
        )
        audit(
            session,
            principal,
            f"supervision.{event}",
            "case",
            order.case_id,
            request,
            {"order_id": order.id},
        )
    return _order_out(order)


@router.post("/orders/{order_id}/answer", response_model=OrderOut, dependencies=JSON)
async def answer_order(
    request: Request,
    order_id: int,
    body: TextIn,
    principal: Annotated[Principal, Depends(ORDER_READERS)],
) -> OrderOut:
    """The department says what it did (its liaison or its supervisor)."""
    return await _order_event(request, principal, order_id, "answer", body.text)


@router.post("/orders/{order_id}/send-back", response_model=OrderOut, dependencies=JSON)
async def send_back_order(
    request: Request,
    order_id: int,
    body: TextIn,
    principal: Annotated[Principal, Depends(SUPERVISORS)],
) -> OrderOut:
    """The answer does not suffice: the rectification goes on, the deadline still runs."""
    return await _order_event(request, principal, order_id, "send_back", body.text)


@router.post("/orders/{order_id}/lift", response_model=OrderOut, dependencies=JSON)
async def lift_order(
    request: Request,
    order_id: int,
    body: TextIn,
    principal: Annotated[Principal, Depends(SUPERVISORS)],
) -> OrderOut:
    return await _order_event(request, principal, order_id, "lift", body.text)


# --- 重点个案 ----------------------------------------------------------------------------


class KeyCaseIn(BaseModel):
    case_id: Annotated[int, Field(ge=1, le=CASE_ID_MAX)]
    reason: Annotated[str, Field(min_length=1, max_length=2000)]


class ReasonIn(BaseModel):
    reason: Annotated[str, Field(min_length=1, max_length=2000)]


class MinutesIn(BaseModel):
    meeting_on: date
    meeting: Annotated[str, Field(min_length=1, max_length=120)]
    minutes: Annotated[str, Field(min_length=1, max_length=20000)]
    decisions: Annotated[str, Field(min_length=1, max_length=10000)]


class MinuteOut(BaseModel):
    id: int
    meeting_on: date
    meeting: str
    minutes: str
    decisions: str
    recorded_by: str


class KeyCaseOut(BaseModel):
    case_id: int
    reason: str
    flagged_by: str
    flagged_at: datetime
    state: str
    risk_level: str | None
    jurisdiction: str | None
    minutes: list[MinuteOut] = []


class KeyCaseList(BaseModel):
    items: list[KeyCaseOut]


def _minute_out(m) -> MinuteOut:
    return MinuteOut(
        id=m.id,
        meeting_on=m.meeting_on,
        meeting=m.meeting,
        minutes=m.minutes,
        decisions=m.decisions,
        recorded_by=m.recorded_by_label,
    )


@router.post("/key-cases", status_code=201, response_model=KeyCaseOut, dependencies=JSON)
async def post_key_case(
    request: Request, body: KeyCaseIn, principal: Annotated[Principal, Depends(SUPERVISORS)]
) -> KeyCaseOut:
    async with sessions(request)() as session, session.begin():
        flag = await service.flag_key_case(
            session, principal, body.case_id, body.reason, clock.now()
        )
        case = await service.case_supervision(session, principal, body.case_id)
        audit(session, principal, "supervision.key_case", "case", body.case_id, request)
    c = case["case"]
    return KeyCaseOut(
        case_id=c.id,
        reason=flag.reason,
        flagged_by=flag.flagged_by_label,
        flagged_at=flag.flagged_at,
        state=c.state,
        risk_level=c.risk_level,
        jurisdiction=c.jurisdiction_code,
    )


@router.post("/key-cases/{case_id}/clear", status_code=204, dependencies=JSON)
async def clear_key_case(
    request: Request,
    case_id: int,
    body: ReasonIn,
    principal: Annotated[Principal, Depends(SUPERVISORS)],
) -> None:
    async with sessions(request)() as session, session.begin():
        await service.clear_key_case(session, principal, case_id, body.reason, clock.now())
        audit(session, principal, "supervision.key_case_clear", "case", case_id, request)


@router.get("/key-cases", response_model=KeyCaseList)
async def get_key_cases(
    request: Request,
    principal: Annotated[Principal, Depends(SUPERVISORS)],
    limit: Annotated[int, Query(ge=1, le=500)] = 200,
) -> KeyCaseList:
    """The list for the leadership meeting, each case with its minutes so far."""
    async with sessions(request)() as session, session.begin():
        rows = await service.key_cases(session, principal, limit)
        audit(
            session, principal, "supervision.key_cases", "case", None, request, {"count": len(rows)}
        )
    return KeyCaseList(
        items=[
            KeyCaseOut(
                case_id=r["case"].id,
                reason=r["flag"].reason,
                flagged_by=r["flag"].flagged_by_label,
                flagged_at=r["flag"].flagged_at,
                state=r["case"].state,
                risk_level=r["case"].risk_level,
                jurisdiction=r["case"].jurisdiction_code,
                minutes=[_minute_out(m) for m in r["minutes"]],
            )
            for r in rows
        ]
    )


@router.post(
    "/key-cases/{case_id}/minutes", status_code=201, response_model=MinuteOut, dependencies=JSON
)
async def post_minutes(
    request: Request,
    case_id: int,
    body: MinutesIn,
    principal: Annotated[Principal, Depends(SUPERVISORS)],
) -> MinuteOut:
    async with sessions(request)() as session, session.begin():
        row = await service.record_minutes(
            session,
            principal,
            case_id,
            body.meeting_on,
            body.meeting,
            body.minutes,
            body.decisions,
            clock.now(),
        )
        audit(session, principal, "supervision.minutes", "case", case_id, request)
    return _minute_out(row)


# --- 个案督导 ----------------------------------------------------------------------------


class ActionIn(BaseModel):
    text: Annotated[str, Field(min_length=1, max_length=2000)]
    department: Annotated[
        str, Field(min_length=1, max_length=40, json_schema_extra={"x-choices": "department"})
    ]
    due_at: datetime


class NoteIn(BaseModel):
    findings: Annotated[str, Field(min_length=1, max_length=20000)]
    actions: Annotated[list[ActionIn], Field(max_length=20)] = []


class NoteOut(BaseModel):
    id: int
    case_id: int
    findings: str
    actions: list[dict[str, Any]]
    author: str
    created_at: datetime


@router.post("/cases/{case_id}/notes", status_code=201, response_model=NoteOut, dependencies=JSON)
async def post_note(
    request: Request,
    case_id: int,
    body: NoteIn,
    principal: Annotated[Principal, Depends(SUPERVISORS)],
) -> NoteOut:
    """A 督导 review of a case; each required action becomes a rectification order on its
    department, with its deadline."""
    actions = [service.RequiredAction(a.text, a.department, _aware(a.due_at)) for a in body.actions]
    async with sessions(request)() as session, session.begin():
        note = await service.add_note(
            session, principal, case_id, body.findings, actions, clock.now()
        )
        audit(session, principal, "supervision.note", "case", case_id, request)
    return NoteOut(
        id=note.id,
        case_id=note.case_id,
        findings=note.findings,
        actions=note.actions,
        author=note.author_label,
        created_at=note.created_at,
    )


# --- periodic reports --------------------------------------------------------------------


class ReportIn(BaseModel):
    narrative: Annotated[str, Field(max_length=20000)] = ""
    typical_cases: Annotated[list[dict[str, str]], Field(max_length=10)] = []


class ReportOut(BaseModel):
    district: str
    period: str
    status: str
    narrative: str
    typical_cases: list[dict[str, str]]
    figures: dict[str, Any] | None
    comment: str | None
    history: list[dict[str, Any]]
    submitted_at: datetime | None
    due: date


class ReportLine(BaseModel):
    district: str
    district_name: str
    status: str | None
    status_label: str
    submitted_at: datetime | None
    due: date
    missing: bool


class ReportLines(BaseModel):
    period: str
    label: str
    due: date
    items: list[ReportLine]


class EventIn(BaseModel):
    comment: Annotated[str | None, Field(default=None, max_length=5000)] = None


def _report_out(report, period) -> ReportOut:
    return ReportOut(
        district=report.district_code,
        period=report.period,
        status=report.status,
        narrative=report.narrative,
        typical_cases=report.typical_cases,
        figures=report.figures,
        comment=report.comment,
        history=report.history,
        submitted_at=report.submitted_at,
        due=period.due,
    )


@router.get("/reports", response_model=ReportLines)
async def get_reports(
    request: Request,
    principal: Annotated[Principal, Depends(REPORT_STAFF)],
    period: Annotated[str, Query(min_length=4, max_length=10)],
) -> ReportLines:
    """Every district's report for the period (a district sees its own line): the city
    sees which have not been sent by the due date."""
    p = reports.parse(period)
    async with sessions(request)() as session, session.begin():
        lines = await reports.overview(session, principal, p, today())
    return ReportLines(
        period=p.code, label=p.label, due=p.due, items=[ReportLine(**line) for line in lines]
    )


@router.get("/reports/{district}/{period}", response_model=ReportOut)
async def get_report(
    request: Request,
    district: str,
    period: str,
    principal: Annotated[Principal, Depends(REPORT_STAFF)],
) -> ReportOut:
    p = reports.parse(period)
    async with sessions(request)() as session, session.begin():
        report = await reports.load(session, principal, district, p)
        if report is None:
            raise NotFound("report_not_found", "该区县尚未编写本期报告")
        audit(session, principal, "supervision.report", "report", report.id, request)
    return _report_out(report, p)


@router.put("/reports/{district}/{period}", response_model=ReportOut, dependencies=JSON)
async def put_report(
    request: Request,
    district: str,
    period: str,
    body: ReportIn,
    principal: Annotated[Principal, Depends(REPORT_STAFF)],
) -> ReportOut:
    """The district's narrative and anonymised typical cases (`{"title", "text"}`)."""
    p = reports.parse(period)
    async with sessions(request)() as session, session.begin():
        report = await reports.save_draft(
            session,
            principal,
            district,
            p,
            body.narrative,
            body.typical_cases,
            clock.now(),
        )
        audit(session, principal, "supervision.report_edit", "report", report.id, request)
    return _report_out(report, p)


@router.post("/reports/{district}/{period}/{event}", response_model=ReportOut, dependencies=JSON)
async def report_event(
    request: Request,
    district: str,
    period: str,
    event: Literal["review", "submit", "acknowledge", "return"],
    body: EventIn,
    principal: Annotated[Principal, Depends(REPORT_STAFF)],
) -> ReportOut:
    """审核 and 报送 (the district's supervisor); acknowledge or return with comments (the
    city's)."""
    p = reports.parse(period)
    async with sessions(request)() as session, session.begin():
        report = await reports.report_event(
            session, principal, district, p, event, body.comment, clock.now()
        )
        audit(
            session,
            principal,
            f"supervision.report_{event}",
            "report",
            report.id,
            request,
            {"event": REPORT_EVENT_LABELS[event]},
        )
    return _report_out(report, p)
