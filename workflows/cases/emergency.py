"""A case becomes an emergency after intake: a later SMS speaks of danger, a partner's
updated work order raises its urgency. Either way the same three things happen together."""

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Case, Outbox
from db.timeline import case_event
from workflows.referrals.deadlines import levels
from workflows.telephony.sms_threading import ENDED_CASE_STATES


async def raise_emergency(
    session: AsyncSession,
    case_id: int,
    report_id: int,
    *,
    actor: str,
    reason: str,
    data: dict[str, Any],
    now: datetime,
) -> bool:
    """Mark the case an emergency, put it on the timeline, and run the intake job again so
    police get their copy at once. False if it already was one, or is over."""
    case = (
        await session.execute(select(Case).where(Case.id == case_id).with_for_update())
    ).scalar_one()
    if case.emergency or case.state in ENDED_CASE_STATES:
        return False
    case.emergency = True
    case.not_a_case = None  # an emergency is never a non-case
    case.predicted_risk = levels()[0]
    case.updated_at = now
    session.add(
        case_event(
            case_id=case.id,
            event="emergency_raised",
            actor=actor,
            reason=reason,
            data=data,
            created_at=now,
        )
    )
    session.add(Outbox(topic="case.intake", payload={"case_id": case.id, "report_id": report_id}))
    return True
