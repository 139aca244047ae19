"""Telling the reporter "in an appropriate way" (以适当方式告知).

The reporter who left a number on the form or by SMS, and the caller who agreed on the call
(the operator ticks it), gets a short SMS when the case is handled and when it is closed:
the receipt code and the state, nothing more, through the outbox like every SMS. Never when
they are marked not to be contacted (they asked, they may be the child at risk, or the phone
may be shared with the person causing the harm), never to a number that opted out, once per
state. The receipt page works either way.
"""

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from channels.sms.optouts import is_opted_out
from channels.sms.outbound import queue_sms
from db.casework import ReportNoContact
from db.models import Case, CaseEvent, Report
from dispatch.staff.audit import add_timeline_event
from workflows import config
from workflows.cases import receipts
from workflows.errors import Conflict, Invalid

NO_CONTACT_REASONS = {
    "asked": "报告人要求不再联系",
    "may_be_child": "报告人可能是儿童本人",
    "shared_phone": "号码可能与侵害人共用",
}


async def mark_no_contact(
    *, session: AsyncSession, report: Report, reason: str, actor: str, now: datetime
) -> None:
    if reason not in NO_CONTACT_REASONS:
        raise Invalid("unknown_reason", f"原因应为：{'、'.join(NO_CONTACT_REASONS.values())}")
    if await session.get(ReportNoContact, report.id) is not None:
        raise Conflict("already_marked", "该报告人已标记为不联系")
    session.add(
        ReportNoContact(report_id=report.id, reason=reason, marked_by=actor, created_at=now)
    )
    add_timeline_event(
        session, actor, report.case_id, "reporter_no_contact",
        reason=NO_CONTACT_REASONS[reason], data={"report_id": report.id}, created_at=now,
    )


def _may_contact(report: Report, marked: set[int]) -> bool:
    reporter = report.reporter or {}
    return (
        bool(report.reporter_phone)
        and report.id not in marked
        and not reporter.get("no_contact")
        # A caller's number is the line they called from: only with their consent.
        and (report.channel != "voice" or bool(reporter.get("sms_consent")))
    )


async def tell_reporters(session: AsyncSession, case: Case, state: str, now: datetime) -> int:
    """Queue the state's short SMS to each reporter of the case who may be contacted and has
    not been told this state yet; returns how many were queued."""
    texts = config.casework().reporter_notice
    template = texts.text(state)
    if template is None:
        return 0
    reports = list(
        (
            await session.execute(
                select(Report)
                .where(Report.case_id == case.id, Report.channel.in_(texts.channels))
                .order_by(Report.id)
            )
        ).scalars()
    )
    if not reports:
        return 0
    marked = set(
        (
            await session.execute(
                select(ReportNoContact.report_id).where(
                    ReportNoContact.report_id.in_([r.id for r in reports])
                )
            )
        ).scalars()
    )
    told = {
        (e.get("report_id"), e.get("state"))
        for (e,) in (
            await session.execute(
                select(CaseEvent.data).where(
                    CaseEvent.case_id == case.id, CaseEvent.event == "reporter_told"
                )
            )
        ).all()
        if e
    }
    queued, phones = 0, set()
    for report in reports:
        if not _may_contact(report, marked) or (report.id, state) in told:
            continue
        if report.reporter_phone in phones or await is_opted_out(session, report.reporter_phone):
            continue
        phones.add(report.reporter_phone)
        body = template.format(code=receipts.display(report.receipt_code))
        message = await queue_sms(
            session, phone=report.reporter_phone, body=body, kind="notice", now=now
        )
        add_timeline_event(
            session, "system:notice", case.id, "reporter_told",
            reason="已短信告知报告人办理进展",
            data={"report_id": report.id, "state": state, "message_id": message.id},
            created_at=now,
        )
        queued += 1
    return queued
