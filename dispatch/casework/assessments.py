"""Written assessments to the deployment's form, versioned per reassessment.

The answers propose a level (workflows.casework.assessment); the caseworker accepts it or
sets another with a reason, which is kept beside the proposal. Saving one sets the case's
risk level exactly as the quick assessment does (deadlines and visits follow).
"""

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.casework import CaseAssessment
from db.models import Case
from dispatch.cases.service import apply_assessment
from dispatch.staff.auth import Principal
from workflows.casework.assessment import propose
from workflows.casework.plan import need_names
from workflows.errors import Invalid, WorkflowRefused
from workflows.referrals.deadlines import LEVEL_LABELS, levels


async def assess(
    *,
    session: AsyncSession,
    case: Case,
    answers: dict[str, str],
    risk_level: str | None,
    override_reason: str | None,
    summary: str,
    needs: list[str],
    principal: Principal,
    now: datetime,
) -> CaseAssessment:
    """A new version of the locked case's written assessment."""
    try:
        proposal = propose(answers)
    except WorkflowRefused as exc:
        raise Invalid(exc.code, exc.message) from exc
    level = risk_level or proposal.level
    if level not in levels():
        raise Invalid("unknown_level", f"风险等级应为：{'、'.join(LEVEL_LABELS.values())}")
    reason = (override_reason or "").strip() or None
    if level != proposal.level and not reason:
        raise Invalid(
            "override_reason_required",
            f"评估建议为{LEVEL_LABELS[proposal.level]}色，改为{LEVEL_LABELS[level]}色需要填写理由",
        )
    unknown = [n for n in needs if n not in need_names()]
    if unknown:
        raise Invalid("unknown_need", f"未知的需求：{'、'.join(unknown)}")
    summary = (summary or "").strip()
    if not summary:
        raise Invalid("summary_required", "请填写评估结论")
    version = (
        await session.scalar(
            select(func.coalesce(func.max(CaseAssessment.version), 0)).where(
                CaseAssessment.case_id == case.id
            )
        )
    ) + 1
    row = CaseAssessment(
        case_id=case.id,
        version=version,
        answers=answers,
        score=proposal.score,
        proposed_level=proposal.level,
        risk_level=level,
        override_reason=reason if level != proposal.level else None,
        summary=summary,
        needs=list(dict.fromkeys(needs)),
        created_by=principal.id,
        created_at=now,
    )
    session.add(row)
    await apply_assessment(
        session,
        case,
        {
            "risk_level": level,
            "needs": row.needs,
            "notes": summary,
            "guardianship": None,
            "version": version,
            "proposed_level": proposal.level,
            "proposal_reasons": list(proposal.reasons),
            "override_reason": row.override_reason,
        },
        principal,
        now,
    )
    await session.flush()
    return row


async def history(session: AsyncSession, case_id: int) -> list[CaseAssessment]:
    """Every version, newest first."""
    return list(
        (
            await session.execute(
                select(CaseAssessment)
                .where(CaseAssessment.case_id == case_id)
                .order_by(CaseAssessment.version.desc())
            )
        ).scalars()
    )
