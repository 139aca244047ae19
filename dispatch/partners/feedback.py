"""Result feedback owed to partners (办理结果反馈): which status messages a case's history
calls for, written once each.

Run by the `case.status` job after every transition. It reads the case's whole timeline
rather than the one event that woke it, under the case's row lock: jobs that run late, twice
or out of order still produce each status once, in the order the events happened, and a
partner configured after the fact is caught up. A case merged into another keeps its
partner informed through the case it joined.
"""

from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from channels.partners.callbacks import wake_row
from db.models import CaseEvent, Referral
from db.partners import PartnerMessage
from workflows.cases import receipts
from workflows.partners.forwards import feedback_statuses, feedback_text, status_for_event
from workflows.reference import department_labels

# The first work order of each source on the case (or on a case merged into it): updates
# of an order share its case and are answered through the original.
_ORDERS = text(
    """
    SELECT DISTINCT ON (r.case_id, r.channel)
           r.id, r.case_id, r.channel, r.external_id, r.receipt_code, p.id AS partner_id
    FROM report r
    JOIN partner p ON p.source = r.channel AND p.active AND p.callback_url IS NOT NULL
    WHERE r.case_id = :case_id
       OR r.case_id IN (SELECT id FROM hcase WHERE merged_into_id = :case_id)
    ORDER BY r.case_id, r.channel, r.id
    """
)


async def owe_feedback(session: AsyncSession, case_id: int) -> int:
    """Write the status messages the case's timeline calls for and that are not yet
    written; wake the delivery of each partner concerned. Returns how many were new.

    The caller holds the case's row lock (a transition does already), so two writers of
    the same case's messages take turns."""
    orders = (await session.execute(_ORDERS, {"case_id": case_id})).all()
    if not orders:
        return 0
    events = [spec.event for spec in feedback_statuses().values()]
    timeline = (
        await session.execute(
            select(CaseEvent.event, CaseEvent.reason, CaseEvent.created_at)
            .where(CaseEvent.case_id == case_id, CaseEvent.event.in_(events))
            .order_by(CaseEvent.id)
        )
    ).all()
    departments = await _departments(session, case_id)
    labels = {status: spec.label for status, spec in feedback_statuses().items()}
    woken: set[int] = set()
    written = 0
    for event in timeline:
        status = status_for_event(event.event)
        if status is None:
            continue
        for order in orders:
            body = _body(order, status, labels[status], event, departments)
            stmt = (
                insert(PartnerMessage)
                .values(
                    partner_id=order.partner_id,
                    report_id=order.id,
                    case_id=order.case_id,
                    status=status,
                    body=body,
                    next_attempt_at=func.now(),
                )
                .on_conflict_do_nothing(index_elements=["report_id", "status"])
                .returning(PartnerMessage.id)
            )
            if (await session.execute(stmt)).scalar() is not None:
                written += 1
                woken.add(order.partner_id)
    for partner_id in sorted(woken):
        session.add(wake_row(partner_id))
    return written


def _body(order: Any, status: str, label: str, event: Any, departments: str) -> dict[str, Any]:
    receipt = receipts.display(order.receipt_code)
    return {
        "source": order.channel,
        "external_id": order.external_id,
        "receipt_code": receipt,
        "case_id": order.case_id,
        "status": status,
        "status_label": label,
        "message": feedback_text(
            status, receipt=receipt, departments=departments, reason=event.reason
        ),
        "occurred_at": event.created_at.isoformat(),
    }


async def _departments(session: AsyncSession, case_id: int) -> str:
    codes = (
        await session.execute(
            select(Referral.department_code)
            .where(
                Referral.case_id == case_id,
                # Cancelled shares count: closing the case cancels what was still open.
                # Withdrawn ones do not: a correction took them back.
                Referral.status.not_in(("returned", "unrouted", "withdrawn")),
            )
            .distinct()
        )
    ).scalars()
    names = department_labels()
    return "、".join(sorted(names.get(code, code) for code in codes))
