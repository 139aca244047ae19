"""Possible duplicates of a case: other recent cases about the same child, from the same
phone, or at the same address, so an operator or caseworker can link or merge them.

Plain SQL that works on every PostgreSQL (pg_trgm is not available everywhere, e.g. the
embedded server): names and addresses are compared after removing spaces and punctuation,
addresses also by one containing the other ("幸福里小区3栋" within "幸福里小区3栋2单元").
Only cases the viewer may see are suggested.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Case, Report
from dispatch.staff.auth import Principal
from dispatch.staff.scope import case_filter

WINDOW = timedelta(days=90)
# Shorter addresses ("3栋") say too little to match on containment.
MIN_ADDRESS_CHARS = 6
_NOISE = " \u3000\t\r\n-_,.;:，。；：、#＃()（）【】[]/\\'\"“”"


def normalize(text: str | None) -> str:
    """What the SQL below does to names and addresses, for the values we compare with."""
    if not text:
        return ""
    return "".join(ch for ch in text.lower() if ch not in _NOISE)


def _norm_sql(column) -> ColumnElement[str]:
    return func.translate(func.lower(func.coalesce(column, "")), _NOISE, "")


@dataclass(frozen=True)
class Suggestion:
    case_id: int
    state: str
    created_at: datetime
    jurisdiction: str | None
    categories: list[str]
    reasons: list[str]  # 同一电话, 同一儿童, 地址相近


async def similar_cases(
    session: AsyncSession, principal: Principal, case: Case, *, limit: int = 10
) -> list[Suggestion]:
    mine = (
        await session.execute(
            select(Report.reporter_phone, Report.child, Report.address).where(
                Report.case_id == case.id
            )
        )
    ).all()
    phones = sorted({r.reporter_phone for r in mine if r.reporter_phone})
    names = sorted({normalize((r.child or {}).get("name")) for r in mine} - {""})
    addresses = sorted(
        {normalize(r.address or (r.child or {}).get("address")) for r in mine} - {""}
    )
    report_address = _norm_sql(func.coalesce(Report.address, Report.child["address"].astext))
    same_phone = Report.reporter_phone.in_(phones) if phones else literal(False)
    same_child = _norm_sql(Report.child["name"].astext).in_(names) if names else literal(False)
    near_address = or_(
        literal(False),
        *(
            or_(
                report_address == a,
                and_(
                    func.length(report_address) >= MIN_ADDRESS_CHARS,
                    len(a) >= MIN_ADDRESS_CHARS,
                    or_(
                        func.strpos(report_address, a) > 0,
                        func.strpos(literal(a), report_address) > 0,
                    ),
                ),
            )
            for a in addresses
        ),
    )
    if not (phones or names or addresses):
        return []
    since = (case.created_at or datetime.now().astimezone()) - WINDOW
    rows = (
        await session.execute(
            select(
                Case.id,
                Case.state,
                Case.created_at,
                Case.jurisdiction_code,
                Case.categories,
                func.bool_or(same_phone).label("phone"),
                func.bool_or(same_child).label("child"),
                func.bool_or(near_address).label("address"),
            )
            .join(Report, Report.case_id == Case.id)
            .where(
                Report.created_at >= since,
                Case.id != case.id,
                Case.state.not_in(("merged", "invalid")),
                or_(same_phone, same_child, near_address),
                case_filter(principal),
            )
            .group_by(Case.id)
            .order_by(Case.id.desc())
            .limit(limit)
        )
    ).all()
    return [
        Suggestion(
            case_id=r.id,
            state=r.state,
            created_at=r.created_at,
            jurisdiction=r.jurisdiction_code,
            categories=r.categories,
            reasons=[
                label
                for hit, label in (
                    (r.phone, "同一电话"),
                    (r.child, "同一儿童"),
                    (r.address, "地址相近"),
                )
                if hit
            ],
        )
        for r in rows
    ]
