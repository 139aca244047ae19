"""Closing a case to criteria.

Closing names a type and passes the deployment's criteria (red and orange: a recent visit
and a closing assessment), or a supervisor overrides them with a reason (the workflow's
forced close, which checks the role and the reason); the case's open referrals are
cancelled and their liaisons told (dispatch.referrals.service.cancel_open), and the reporter
is told (dispatch.casework.reporter_notice).
"""

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.casework import CaseAssessment
from db.models import Case, Visit
from dispatch.cases.service import Actor, transition
from workflows.casework.closing import check_closing, closing_types
from workflows.errors import Conflict, WorkflowRefused


def _days(now: datetime, then: datetime | None) -> float | None:
    return None if then is None else (now - then).total_seconds() / 86400


async def close_case(
    *,
    session: AsyncSession,
    case: Case,
    kind: str,
    reason: str | None,
    actor: Actor,
    now: datetime,
    override: bool = False,
) -> str:
    """Close the locked case with a type, after its criteria unless a supervisor overrides
    them; returns the new state."""
    last_visit = await session.scalar(
        select(func.max(Visit.visited_at)).where(Visit.case_id == case.id)
    )
    last_assessment = await session.scalar(
        select(func.max(CaseAssessment.created_at)).where(CaseAssessment.case_id == case.id)
    )
    try:
        check_closing(
            kind, case.risk_level, _days(now, last_visit), _days(now, last_assessment),
            override=override,
        )
    except WorkflowRefused as exc:
        raise Conflict(exc.code, exc.message) from exc
    label = closing_types()[kind]
    why = f"{label}：{reason.strip()}" if reason and reason.strip() else label
    if override and not (reason and reason.strip()):
        why = None  # the workflow refuses a forced close without the supervisor's reason
    state = await transition(
        session, case, "close", actor, now, reason=why, override=override
    )
    case.assessment = {**(case.assessment or {}), "closing_type": kind}
    return state
