"""Hotline calls for the center's staff: who waits now, call records, registering a report
during a call, and the caller's profile (earlier reports from the same number).

Scoped through the call's case (see `dispatch.telephony.scope`) and audited; numbers shown
masked. The JSON API and the console pages both call these; they know no HTTP.
"""

from datetime import datetime
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from channels.callers import active_block
from channels.sms.optouts import is_opted_out
from channels.voice.calls import link_report, register_report, serve_first, waiting_calls
from db import clock
from db.columns import CASE_ID_MAX
from db.models import Case, Report
from db.telephony import SmsThread, VoiceCall
from dispatch.cases.access import load_case
from dispatch.common.lookup import scalar_or_404
from dispatch.common.paging import CasePage
from dispatch.common.views import from_row
from dispatch.staff.audit import audit
from dispatch.staff.auth import Principal
from dispatch.telephony.scope import via_case
from workflows.cases import receipts
from workflows.cases.intake import ReportIn, from_report_in
from workflows.errors import NotFound
from workflows.phones import mask_phone


class CallSummary(BaseModel):
    id: int
    call_sid: str
    phone: str | None  # masked; None when the number was withheld
    status: str
    route: str
    menu_choice: str | None
    queue: str | None
    enqueued_at: datetime | None
    answered_at: datetime | None
    queue_result: str | None
    queue_seconds: int | None
    duration_seconds: int | None
    created_at: datetime
    ended_at: datetime | None
    case_id: int | None
    report_id: int | None
    has_recording: bool


class CallDetail(CallSummary):
    recording_sid: str | None
    recording_url: str | None
    recording_seconds: int | None


class CallList(BaseModel):
    items: list[CallSummary]
    next_before_id: int | None


class WaitingCall(CallSummary):
    waited_seconds: int


class QueueView(BaseModel):
    # The queue the console takes next: emergency whenever anyone waits there.
    serve_first: str
    waiting_by_queue: dict[str, int]
    items: list[WaitingCall]


class CallReport(BaseModel):
    receipt_code: str
    report_id: int
    case_id: int
    duplicate: bool


class LinkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    case_id: Annotated[int, Field(ge=1, le=CASE_ID_MAX)]


class EarlierReport(BaseModel):
    report_id: int
    case_id: int
    channel: str
    received_at: datetime
    case_state: str
    emergency: bool
    categories: list[str]


class CallerProfile(BaseModel):
    phone: str | None  # masked
    calls: int
    first_call_at: datetime | None
    sms_threads: int
    opted_out_of_sms: bool
    blocked_until: datetime | None
    # Earlier reports from the same number (any channel) that the viewer may see.
    reports: list[EarlierReport]


Shown = TypeVar("Shown", bound=CallSummary)


def _shown(view: type[Shown], call: VoiceCall, **values: Any) -> Shown:
    """The call as `view` (a CallSummary) shows it: the number masked, the rest as stored."""
    return from_row(
        view,
        call,
        phone=mask_phone(call.phone),
        has_recording=call.recording_sid is not None,
        **values,
    )


def _detail(call: VoiceCall) -> CallDetail:
    return _shown(CallDetail, call)


async def load_call(session, principal: Principal, call_sid: str, *, lock: bool = False):
    """The call if the principal may see it; 404 otherwise."""
    stmt = select(VoiceCall).where(
        VoiceCall.call_sid == call_sid, via_case(VoiceCall.case_id, principal)
    )
    stmt = stmt.with_for_update() if lock else stmt
    return await scalar_or_404(session, stmt, "call_not_found", "未找到该来电")


async def queue_view(*, session: AsyncSession, principal: Principal) -> QueueView:
    """Callers waiting now, the emergency queue first: what the console shows and serves.
    Not audited: the console polls it, and it holds no case data (numbers masked)."""
    now = clock.now()
    shown = await waiting_calls(session, via_case(VoiceCall.case_id, principal))
    first = await serve_first(session)
    counts: dict[str, int] = {}
    for call in shown:
        counts[call.queue] = counts.get(call.queue, 0) + 1
    return QueueView(
        serve_first=first,
        waiting_by_queue=counts,
        items=[
            _shown(
                WaitingCall, c, waited_seconds=max(0, int((now - c.enqueued_at).total_seconds()))
            )
            for c in shown
        ],
    )


async def list_calls(
    *, session: AsyncSession, principal: Principal, ip: str | None, page: CasePage = CasePage()
) -> CallList:
    """Most recent first, numbers masked; `case_id` gives a case's calls."""
    stmt = page.of(select(VoiceCall).where(via_case(VoiceCall.case_id, principal)), VoiceCall)
    calls = (await session.execute(stmt)).scalars().all()
    audit(session, principal, "call.list", "call", None, detail={"count": len(calls)}, ip=ip)
    items = [_shown(CallSummary, c) for c in calls]
    return CallList(items=items, next_before_id=page.next_before_id(items))


async def get_call(
    *, session: AsyncSession, principal: Principal, ip: str | None, call_sid: str
) -> CallDetail:
    call = await load_call(session, principal, call_sid)
    audit(session, principal, "call.read", "call", call.id, ip=ip)
    return _detail(call)


async def recording_url(
    *, session: AsyncSession, principal: Principal, ip: str | None, call_sid: str
) -> str:
    """Where Twilio keeps the call's voicemail (the audio is fetched, not stored here)."""
    call = await load_call(session, principal, call_sid)
    if not call.recording_url:
        raise NotFound("recording_not_found", "该来电没有录音")
    audit(session, principal, "call.recording", "call", call.id, ip=ip)
    return call.recording_url


async def report_during_call(
    *, session: AsyncSession, principal: Principal, ip: str | None, call_sid: str, body: ReportIn
) -> CallReport:
    """The report an operator registers while on the call (the web form's fields), linked
    to the CallSid. One per call: posting again returns the same report (`duplicate`)."""
    now = clock.now()
    new = from_report_in(body, channel="voice")
    new.actor, new.ip = principal.label, ip
    call = await load_call(session, principal, call_sid, lock=True)
    result = await register_report(session, call, new, actor_id=principal.id, now=now)
    audit(
        session,
        principal,
        "call.report",
        "case",
        result.case_id,
        detail={"call": call.id, "report": result.report_id, "duplicate": result.duplicate},
        ip=ip,
    )
    return CallReport(
        receipt_code=receipts.display(result.receipt_code),
        report_id=result.report_id,
        case_id=result.case_id,
        duplicate=result.duplicate,
    )


async def link_call(
    *, session: AsyncSession, principal: Principal, ip: str | None, call_sid: str, body: LinkIn
) -> CallDetail:
    """The call is about a case that already exists (a repeat caller): link it there."""
    now = clock.now()
    call = await load_call(session, principal, call_sid, lock=True)
    case = await load_case(session, principal, body.case_id)
    await link_report(
        session,
        call,
        report_id=None,
        case_id=case.id,
        actor=principal.label,
        actor_id=principal.id,
        now=now,
    )
    audit(session, principal, "call.link", "case", case.id, detail={"call": call.id}, ip=ip)
    return _detail(call)


async def caller_profile(
    *, session: AsyncSession, principal: Principal, ip: str | None, call_sid: str
) -> CallerProfile:
    """What the hotline knows of this call's number: earlier calls, texts and reports.

    Every count is scoped like the records themselves (`via_case`): how often a number
    called or texted about cases outside the caller's scope is not theirs to know."""
    now = clock.now()
    call = await load_call(session, principal, call_sid)
    audit(session, principal, "call.caller", "call", call.id, ip=ip)
    if call.phone is None:
        return CallerProfile(
            phone=None,
            calls=1,
            first_call_at=call.created_at,
            sms_threads=0,
            opted_out_of_sms=False,
            blocked_until=None,
            reports=[],
        )
    calls, first = (
        await session.execute(
            select(func.count(), func.min(VoiceCall.created_at)).where(
                VoiceCall.phone_index == call.phone_index, via_case(VoiceCall.case_id, principal)
            )
        )
    ).one()
    threads = await session.scalar(
        select(func.count()).where(
            SmsThread.phone_index == call.phone_index, via_case(SmsThread.case_id, principal)
        )
    )
    block = await active_block(session, call.phone, now)
    rows = (
        await session.execute(
            select(Report, Case)
            .join(Case, Case.id == Report.case_id)
            .where(Report.phone_index == call.phone_index, via_case(Case.id, principal))
            .order_by(Report.id.desc())
            .limit(50)
        )
    ).all()
    opted_out = await is_opted_out(session, call.phone)
    return CallerProfile(
        phone=mask_phone(call.phone),
        calls=calls,
        first_call_at=first,
        sms_threads=threads or 0,
        opted_out_of_sms=opted_out,
        blocked_until=block.expires_at if block else None,
        reports=[
            # The case's own fields (emergency, categories) copied by name.
            from_row(
                EarlierReport, c, report_id=r.id, case_id=c.id, channel=r.channel,
                received_at=r.created_at, case_state=c.state,
            )
            for r, c in rows
        ],
    )
