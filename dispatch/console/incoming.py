"""Reports for the operators' live list, the most urgent first: emergencies, then the risk
the text's judgement predicts, then the oldest within a level, so the next report an
operator opens is the one most likely to be a child in danger. In the viewer's scope,
numbers masked (the list is on screens that others can see).

The list holds the newest reports (whatever became of them: the operator sees each one
arrive) and the most urgent of those still waiting in 发现 for an operator, however old;
all of them in that order. Each row carries the judgement's evidence and, for a report that
is not a case, the reason (疑似咨询 / 非未成年人 / 无效信息), and for a repeat held on the
case of the report it repeats (`workflows.cases.intake.record_report`), that it was not
routed again: the operator decides what it is.
"""

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select, union
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Case, Report
from dispatch.console.masking import mask_numbers
from dispatch.staff.auth import Principal
from dispatch.staff.scope import case_filter
from workflows.phones import mask_phone
from workflows.reference import category_labels
from workflows.referrals.deadlines import levels
from workflows.triage.policy import evidence_lines, not_a_case_label

SNIPPET_CHARS = 80
EVIDENCE_LINES = 4


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
    predicted_risk: str | None = None
    not_a_case: str = ""  # the reason's label, "" for a case
    evidence: tuple[str, ...] = ()  # numbers masked
    # The case this one very likely repeats (matching after intake), if the viewer sees it.
    likely_duplicate_of: int | None = None
    # Why the report joined its case without being routed ("burst"), None if it was routed.
    held: str | None = None


def _risk_rank():
    """red 0, orange 1, … in the deployment's order; unknown last."""
    whens = [(Case.predicted_risk == level, i) for i, level in enumerate(levels())]
    return case(*whens, else_=len(whens))


def _severity() -> tuple:
    return (Case.emergency.desc(), _risk_rank(), Report.id)


async def incoming_reports(
    session: AsyncSession,
    principal: Principal,
    *,
    after_id: int | None = None,
    limit: int = 30,
) -> list[IncomingReport]:
    """The `limit` newest reports and the `limit` most urgent still waiting, most urgent
    first; with `after_id`, only reports newer than it."""
    newest = (
        select(Report.id)
        .join(Case, Case.id == Report.case_id)
        .where(case_filter(principal))
        .order_by(Report.id.desc())
        .limit(limit)
    )
    # The waiting cases are ordered on their own (a case's id is its age), then their
    # reports joined: the sort reads only the cases in 发现, never the report table.
    waiting_cases = (
        select(Case.id)
        .where(Case.state == "discovered", case_filter(principal))
        .order_by(Case.emergency.desc(), _risk_rank(), Case.id)
        .limit(limit)
    )
    waiting = select(Report.id).where(Report.case_id.in_(waiting_cases))
    shown = union(newest, waiting).subquery()
    stmt = (
        select(  # labelled as IncomingReport's fields
            Report.id.label("report_id"),
            Report.case_id,
            Report.created_at.label("received_at"),
            Report.channel,
            Report.reporter_phone.label("phone"),
            func.left(Report.description, SNIPPET_CHARS + 1).label("snippet"),
            Report.judgement["evidence"].label("evidence"),
            Report.held,
            Case.state,
            Case.emergency,
            Case.mandatory,
            Case.categories,
            Case.jurisdiction_code.label("jurisdiction"),
            Case.predicted_risk,
            Case.not_a_case,
            Case.likely_duplicate_of,
        )
        .join(Case, Case.id == Report.case_id)
        .where(Report.id.in_(select(shown.c.id)))
        .order_by(*_severity())
    )
    if after_id:
        stmt = stmt.where(Report.id > after_id)
    rows = (await session.execute(stmt)).all()
    labels = category_labels()
    targets = {r.likely_duplicate_of for r in rows if r.likely_duplicate_of}
    visible = (
        set(
            (
                await session.execute(
                    select(Case.id).where(Case.id.in_(targets), case_filter(principal))
                )
            ).scalars()
        )
        if targets
        else set()
    )
    return [
        IncomingReport(
            **{
                **r._mapping,
                "phone": mask_phone(r.phone),
                "snippet": _snippet(r.snippet),
                "not_a_case": not_a_case_label(r.not_a_case),
                "likely_duplicate_of": r.likely_duplicate_of
                if r.likely_duplicate_of in visible
                else None,
                "evidence": tuple(
                    mask_numbers(line)
                    for line in evidence_lines(r.evidence or {}, labels)[:EVIDENCE_LINES]
                ),
            }
        )
        for r in rows
    ]


def list_version(rows: list[IncomingReport]) -> str:
    """Changes whenever what the list shows changes (a new report, a state, the order)."""
    parts = (
        f"{r.report_id}:{r.state}:{r.emergency}:{r.predicted_risk}:{r.not_a_case}:"
        f"{','.join(r.categories)}:{r.jurisdiction}:{r.likely_duplicate_of}"
        for r in rows
    )
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def _snippet(text: str) -> str:
    cut = text[:SNIPPET_CHARS] + ("…" if len(text) > SNIPPET_CHARS else "")
    return mask_numbers(cut)
