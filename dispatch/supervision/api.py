"""Supervision's JSON endpoints: the scorecard (contract: api.md "Casework and
supervision"), 督查 orders, 重点个案 and minutes, 督导 notes, periodic reports."""

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from channels.web import client_ip, json_only, sessions
from db import clock
from db.columns import CASE_ID_MAX
from db.engine import transaction
from dispatch.common.endpoints import Caller, acting
from dispatch.common.views import from_row
from dispatch.staff.audit import audit
from dispatch.staff.auth import current_principal
from dispatch.staff.permissions import (
    INSPECT,
    ORDER_READ,
    PERIODIC_REPORT,
    SCORECARD_READ,
    requires,
)
from dispatch.supervision import reports, service
from dispatch.supervision.scorecard import scorecard_period, today
from workflows.errors import Invalid, NotFound

router = APIRouter(prefix="/api/v1/supervision", tags=["supervision"])
ScorecardReaders = acting(requires(SCORECARD_READ))
Supervisors = acting(requires(INSPECT))
OrderReaders = acting(requires(ORDER_READ))
ReportStaff = acting(requires(PERIODIC_REPORT))
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


@router.get("/scorecard", response_model=ScorecardOut)
async def get_scorecard(
    caller: ScorecardReaders,
    since: date | None = None,
    until: date | None = None,
    by: Literal["office", "department"] = "office",
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> ScorecardOut:
    """Per office (or per department) over [since, until], ranked for the 通报, with the
    trend against the period of the same length before. The center's supervisors see the
    offices in their jurisdiction; a department's supervisor only their department's."""
    period = scorecard_period(since, until)
    card = await caller.run(
        service.read_scorecard, period=period, by=by, what="supervision.scorecard"
    )
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
    return from_row(OrderOut, o, department=o.department_code, opened_by=o.opened_by_label)


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise Invalid("bad_deadline", "整改期限需带时区，例如 2026-12-31T18:00:00+08:00")
    return moment


@router.post("/orders", response_model=OrderOut, status_code=201, dependencies=JSON)
async def post_order(body: OrderIn, caller: Supervisors) -> OrderOut:
    """挂牌督办 by hand: a referral, or a case and the department that must rectify."""
    order = await caller.run(
        service.open_order,
        target=service.OrderTarget(body.case_id, body.referral_id, body.department),
        reason=body.reason,
        due_at=_aware(body.due_at),
    )
    return _order_out(order)


@router.get("/orders", response_model=OrderList)
async def get_orders(
    caller: OrderReaders,
    status: Literal["open", "answered", "lifted"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> OrderList:
    principal, request = caller.principal, caller.request
    async with transaction(sessions(request)) as session:
        rows = await service.list_orders(session, principal, status, limit)
        audit(session, principal, "supervision.orders", "case", None, request, {"count": len(rows)})
    return OrderList(items=[_order_out(o) for o in rows])


async def _order_event(caller: Caller, order_id: int, event: str, text: str) -> OrderOut:
    order = await caller.run(service.order_event, order_id=order_id, event=event, text=text)
    return _order_out(order)


@router.post("/orders/{order_id}/answer", response_model=OrderOut, dependencies=JSON)
async def answer_order(order_id: int, body: TextIn, caller: OrderReaders) -> OrderOut:
    """The department says what it did (its liaison or its supervisor)."""
    return await _order_event(caller, order_id, "answer", body.text)


@router.post("/orders/{order_id}/send-back", response_model=OrderOut, dependencies=JSON)
async def send_back_order(order_id: int, body: TextIn, caller: Supervisors) -> OrderOut:
    """The answer does not suffice: the rectification goes on, the deadline still runs."""
    return await _order_event(caller, order_id, "send_back", body.text)


@router.post("/orders/{order_id}/lift", response_model=OrderOut, dependencies=JSON)
async def lift_order(order_id: int, body: TextIn, caller: Supervisors) -> OrderOut:
    return await _order_event(caller, order_id, "lift", body.text)


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
    return from_row(MinuteOut, m, recorded_by=m.recorded_by_label)


def _key_case_out(flag, case, minutes=()) -> KeyCaseOut:
    """The flag (its reason, who and when) with the case's state and place."""
    of_case = {"case_id": case.id, "state": case.state, "risk_level": case.risk_level}
    return from_row(
        KeyCaseOut,
        flag,
        **of_case,
        jurisdiction=case.jurisdiction_code,
        flagged_by=flag.flagged_by_label,
        minutes=[_minute_out(m) for m in minutes],
    )


async def _flag_and_read(*, session, ip, principal, case_id: int, reason: str):
    """Flag the case, and read it back for the answer in the same transaction."""
    flag = await service.flag_key_case(
        session=session, ip=ip, principal=principal, case_id=case_id, reason=reason
    )
    case = await service.case_supervision(session, principal, case_id)
    return flag, case["case"]


@router.post("/key-cases", status_code=201, response_model=KeyCaseOut, dependencies=JSON)
async def post_key_case(body: KeyCaseIn, caller: Supervisors) -> KeyCaseOut:
    flag, case = await caller.run(_flag_and_read, case_id=body.case_id, reason=body.reason)
    return _key_case_out(flag, case)


@router.post("/key-cases/{case_id}/clear", status_code=204, dependencies=JSON)
async def clear_key_case(case_id: int, body: ReasonIn, caller: Supervisors) -> None:
    await caller.run(service.clear_key_case, case_id=case_id, reason=body.reason)


@router.get("/key-cases", response_model=KeyCaseList)
async def get_key_cases(
    caller: Supervisors,
    limit: Annotated[int, Query(ge=1, le=500)] = 200,
) -> KeyCaseList:
    """The list for the leadership meeting, each case with its minutes so far."""
    principal, request = caller.principal, caller.request
    async with transaction(sessions(request)) as session:
        rows = await service.key_cases(session, principal, limit)
        detail = {"count": len(rows)}
        audit(session, principal, "supervision.key_cases", "case", None, request, detail)
    return KeyCaseList(items=[_key_case_out(r["flag"], r["case"], r["minutes"]) for r in rows])


@router.post(
    "/key-cases/{case_id}/minutes", status_code=201, response_model=MinuteOut, dependencies=JSON
)
async def post_minutes(case_id: int, body: MinutesIn, caller: Supervisors) -> MinuteOut:
    row = await caller.run(service.record_minutes, case_id=case_id, **body.model_dump())
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
async def post_note(case_id: int, body: NoteIn, caller: Supervisors) -> NoteOut:
    """A 督导 review of a case; each required action becomes a rectification order on its
    department, with its deadline."""
    actions = [service.RequiredAction(a.text, a.department, _aware(a.due_at)) for a in body.actions]
    note = await caller.run(
        service.add_note, case_id=case_id, findings=body.findings, actions=actions
    )
    return from_row(NoteOut, note, author=note.author_label)


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
    return from_row(ReportOut, report, district=report.district_code, due=period.due)


@router.get("/reports", response_model=ReportLines)
async def get_reports(
    caller: ReportStaff,
    period: Annotated[str, Query(min_length=4, max_length=10)],
) -> ReportLines:
    """Every district's report for the period (a district sees its own line): the city
    sees which have not been sent by the due date."""
    p = reports.parse(period)
    async with transaction(sessions(caller.request)) as session:
        lines = await reports.overview(session, caller.principal, p, today())
    return ReportLines(
        period=p.code, label=p.label, due=p.due, items=[ReportLine(**line) for line in lines]
    )


@router.get("/reports/{district}/{period}", response_model=ReportOut)
async def get_report(district: str, period: str, caller: ReportStaff) -> ReportOut:
    p = reports.parse(period)
    principal, request = caller.principal, caller.request
    async with transaction(sessions(request)) as session:
        report = await reports.load(session, principal, district, p)
        if report is None:
            raise NotFound("report_not_found", "该区县尚未编写本期报告")
        audit(session, principal, "supervision.report", "report", report.id, request)
    return _report_out(report, p)


@router.put("/reports/{district}/{period}", response_model=ReportOut, dependencies=JSON)
async def put_report(district: str, period: str, body: ReportIn, caller: ReportStaff) -> ReportOut:
    """The district's narrative and anonymised typical cases (`{"title", "text"}`)."""
    p = reports.parse(period)
    principal, request = caller.principal, caller.request
    async with transaction(sessions(request)) as session:
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
    district: str,
    period: str,
    event: Literal["review", "submit", "acknowledge", "return"],
    body: EventIn,
    caller: ReportStaff,
) -> ReportOut:
    """审核 and 报送 (the district's supervisor); acknowledge or return with comments (the
    city's)."""
    p = reports.parse(period)
    principal, request = caller.principal, caller.request
    async with transaction(sessions(request)) as session:
        report = await reports.report_event(
            session, principal, district, p, event, body.comment, clock.now(), ip=client_ip(request)
        )
    return _report_out(report, p)
