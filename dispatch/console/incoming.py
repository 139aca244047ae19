"""Reports as they arrive, for the operators' live list: newest first, in the viewer's scope,
numbers masked (the list is on screens that others can see)."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Case, Report
from dispatch.auth import Principal
from dispatch.console.masking import mask_numbers
from dispatch.scope import case_filter
from workflows.phones import mask_phone

SNIPPET_CHARS = 80


@dataclass(frozen=True)
class IncomingReport:
    report_id: int
    case_id: int
    received_at: datetime
    channel: str
    state: str
    emergency: bool
    mandatory: bool
    categories: list[str]
    jurisdiction: str | None
    phone: str | None  # masked
    snippet: str  # numbers masked


async def incoming_reports(
    session: AsyncSession, principal: Principal, *, after_id: int | None = None, limit: int = 30
) -> list[IncomingReport]:
    stmt = (
        select(
            Report.id,
            Report.case_id,
            Report.created_at,
            Report.channel,
            Report.reporter_phone,
            func.left(Report.description, SNIPPET_CHARS + 1).label("text"),
            Case.state,
            Case.emergency,
            Case.mandatory,
            Case.categories,
            Case.jurisdiction_code,
        )
        .join(Case, Case.id == Report.case_id)
        .where(case_filter(principal))
        .order_by(Report.id.desc())
        .limit(limit)
    )
    if after_id:
        stmt = stmt.where(Report.id > after_id)
    rows = (await session.execute(stmt)).all()
    return [
        IncomingReport(
            report_id=r.id,
            case_id=r.case_id,
            received_at=r.created_at,
            channel=r.channel,
            state=r.state,
            emergency=r.emergency,
            mandatory=r.mandatory,
            categories=r.categories,
            jurisdiction=r.jurisdiction_code,
            phone=mask_phone(r.reporter_phone),
            snippet=_snippet(r.text),
        )
        for r in rows
    ]


def _snippet(text: str) -> str:
    cut = text[:SNIPPET_CHARS] + ("…" if len(text) > SNIPPET_CHARS else "")
    return mask_numbers(cut)
