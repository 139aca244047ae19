"""Result feedback owed to partners (办理结果反馈): which status messages a case's history
calls for, written once each.

Run by the `case.status` job after every transition. It reads the case's whole timeline
rather than the one event that woke it, under the case's row lock: jobs that run late, twice
or out of order still produce each status once, in the order the events happened, and a
partner configured after the fact is caught up. A case merged into another keeps its
partner informed through the case it joined.
"""

from typing import Any

from sqlalchemy import func, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from channels.partners.callbacks import pending_wake_sql, wake_row
from db.partners import PartnerMessage
from workflows.cases import receipts
from workflows.partners.forwards import feedback_statuses, feedback_text, status_for_event
from workflows.reference import department_labels

# The first work order of each source on the case (or on a case merged into it): updates
# of an order share its case and are answered through the original. With each, its
# partner's pending wake-up, locked (`wake_id`): a new message rides on it.
_ORDERS = text(
    f"""
    SELECT DISTINCT ON (r.case_id, r.channel)
           r.id, r.case_id, r.channel, r.external_id, r.receipt_code, p.id AS partner_id,
           ({pending_wake_sql("p.id")}) AS wake_id
    FROM report r
    JOIN partner p ON p.source = r.channel AND p.active AND p.callback_url IS NOT NULL
    WHERE r.case_id = :case_id
       OR r.case_id IN (SELECT id FROM hcase WHERE merged_into_id = :case_id)
    ORDER BY r.case_id, r.channel, r.id
    """
)

# The case's events that may owe a status (in their order) and the departments its shares
# went to, in one round trip. Cancelled shares count: closing the case cancels what was
# still open; withdrawn ones do not: a correction took them back.
_HISTORY = text(
    """
    SELECT e.events, e.reasons, e.times,
           (SELECT array_agg(DISTINCT f.department_code) FROM referral f
            WHERE f.case_id = :case_id
              AND f.status NOT IN ('returned', 'unrouted', 'withdrawn')) AS departments
    FROM (SELECT array_agg(event ORDER BY id) AS events, array_agg(reason ORDER BY id) AS reasons,
                 array_agg(created_at ORDER BY id) AS times
          FROM case_event WHERE case_id = :case_id AND event = ANY(:events)) e
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
    await session.flush()  # the timeline and referrals as this transaction left them
    events = [spec.event for spec in feedback_statuses().values()]
    found = (await session.execute(_HISTORY, {"case_id": case_id, "events": events})).one()
    names = department_labels()
    departments = "、".join(sorted(names.get(code, code) for code in found.departments or ()))
    labels = {status: spec.label for status, spec in feedback_statuses().items()}
    values = []
    for event in zip(found.events or (), found.reasons or (), found.times or (), strict=True):
        status = status_for_event(event[0])
        if status is None:
            continue
        for order in orders:
            body = _body(order, status, labels[status], event, departments)
            values.append(
                {
                    "partner_id": order.partner_id,
                    "report_id": order.id,
                    "case_id": order.case_id,
                    "status": status,
                    "body": body,
                    "next_attempt_at": func.now(),
                }
            )
    if not values:
        return 0
    # All of them in one statement; RETURNING names only the rows that were new.
    stmt = (
        insert(PartnerMessage)
        .values(values)
        .on_conflict_do_nothing(index_elements=["report_id", "status"])
        .returning(PartnerMessage.partner_id)
    )
    woken = list((await session.execute(stmt)).scalars())
    waking = {order.partner_id: order.wake_id for order in orders}
    for partner_id in sorted(set(woken)):
        if waking[partner_id] is None:
            session.add(wake_row(partner_id))
    return len(woken)


def _body(
    order: Any, status: str, label: str, event: tuple[str, str | None, Any], departments: str
) -> dict[str, Any]:
    """The message; `event` is the timeline entry's (event, reason, time)."""
    _, reason, at = event
    receipt = receipts.display(order.receipt_code)
    return {
        "source": order.channel,
        "external_id": order.external_id,
        "receipt_code": receipt,
        "case_id": order.case_id,
        "status": status,
        "status_label": label,
        "message": feedback_text(status, receipt=receipt, departments=departments, reason=reason),
        "occurred_at": at.isoformat(),
    }
