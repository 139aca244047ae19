"""Counts over a period for supervisors: cases by channel, category, risk level and place,
referrals by department; shown as bars (server-drawn SVG, no script, no CDN) and used as
the summary sheet of the quarterly report. Always within the viewer's scope."""

from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from channels.web import sessions
from db.models import Case, Jurisdiction, Referral, Report
from dispatch import partners_api
from dispatch.audit import audit
from dispatch.auth import Principal
from dispatch.console import periods
from dispatch.console.periods import Period, local_zone
from dispatch.console.timefmt import parse_day
from dispatch.console.web import CHANNEL_LABELS, ConsoleRoute, ConsoleUser, render, staff
from dispatch.scope import case_filter, referral_filter
from workflows.deadlines import LEVEL_LABELS
from workflows.reference import category_labels, department_labels, jurisdiction_labels
from workflows.referral_workflow import STATUS_LABELS

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)

SUPERVISOR = staff("supervisor")


@dataclass(frozen=True)
class Row:
    label: str
    count: int


@dataclass(frozen=True)
class Breakdown:
    title: str
    rows: list[Row]

    @property
    def total(self) -> int:
        return sum(r.count for r in self.rows)

    @property
    def peak(self) -> int:
        return max((r.count for r in self.rows), default=0)


@dataclass(frozen=True)
class DepartmentRow:
    department: str
    total: int
    by_status: dict[str, int]


@dataclass(frozen=True)
class Figures:
    period: Period
    cases: int
    breakdowns: list[Breakdown]
    departments: list[DepartmentRow]


def _rows(pairs, labels, missing: str = "未填写") -> list[Row]:
    rows = [Row(labels.get(k, k) if k else missing, n) for k, n in pairs]
    return sorted(rows, key=lambda r: -r.count)


def _in_period(column, period: Period):
    return (column >= period.start) & (column < period.end)


async def _place_rows(session: AsyncSession, principal: Principal, period: Period) -> list[Row]:
    """Cases by the place one level below the viewer's own (districts for the city)."""
    depth = (principal.scope_path or "").count("/")
    place = aliased(Jurisdiction)  # not `Jurisdiction`: the scope filter's subquery uses it
    below = func.split_part(place.path, "/", depth + 1)
    rows = await session.execute(
        select(below, func.count())
        .select_from(Case)
        .outerjoin(place, place.code == Case.jurisdiction_code)
        .where(_in_period(Case.created_at, period), case_filter(principal))
        .group_by(below)
    )
    names = jurisdiction_labels()
    out = []
    for code, count in rows.all():
        label = "本级" if code == "" else names.get(code, code) if code else "未定辖区"
        out.append(Row(label, count))
    return sorted(out, key=lambda r: -r.count)


async def figures(session: AsyncSession, principal: Principal, period: Period) -> Figures:
    in_scope = (_in_period(Case.created_at, period), case_filter(principal))
    cases = await session.scalar(select(func.count()).select_from(Case).where(*in_scope))
    channels = await session.execute(
        select(Report.channel, func.count(func.distinct(Report.case_id)))
        .join(Case, Case.id == Report.case_id)
        .where(*in_scope)
        .group_by(Report.channel)
    )
    category = func.unnest(Case.categories).label("category")
    categories = await session.execute(
        select(literal_column("category"), func.count())
        .select_from(select(category).where(*in_scope).subquery())
        .group_by(literal_column("category"))
    )
    risks = await session.execute(
        select(Case.risk_level, func.count()).where(*in_scope).group_by(Case.risk_level)
    )
    departments = await session.execute(
        select(Referral.department_code, Referral.status, func.count())
        .where(_in_period(Referral.created_at, period), referral_filter(principal))
        .group_by(Referral.department_code, Referral.status)
    )
    by_department: dict[str, dict[str, int]] = {}
    for dept, status, count in departments.all():
        by_department.setdefault(dept, {})[status] = count
    dept_labels = department_labels()
    return Figures(
        period=period,
        cases=cases or 0,
        breakdowns=[
            Breakdown("来源渠道", _rows(channels.all(), CHANNEL_LABELS)),
            Breakdown("困境类型", _rows(categories.all(), category_labels())),
            Breakdown("风险等级", _rows(risks.all(), dict(LEVEL_LABELS), "未评估")),
            Breakdown("辖区", await _place_rows(session, principal, period)),
        ],
        departments=sorted(
            (
                DepartmentRow(dept_labels.get(d, d), sum(s.values()), s)
                for d, s in by_department.items()
            ),
            key=lambda r: -r.total,
        ),
    )


@router.get("/stats", response_class=HTMLResponse)
async def stats_page(
    request: Request,
    user: Annotated[ConsoleUser, Depends(SUPERVISOR)],
    quarter: Annotated[str, Query(max_length=6)] = "",
    date_from: Annotated[str, Query(max_length=10)] = "",
    date_to: Annotated[str, Query(max_length=10)] = "",
):
    first, last = parse_day(date_from), parse_day(date_to)
    period = periods.chosen(quarter, first, last)
    async with sessions(request)() as session, session.begin():
        data = await figures(session, user.principal, period)
        audit(
            session,
            user.principal,
            "stats.read",
            "case",
            None,
            request,
            {"from": period.start.isoformat(), "to": period.end.isoformat()},
        )
    forwards = None
    if user.principal.is_center:  # the partners' figures are the center's, city-wide
        last_day = period.end.astimezone(local_zone()) - timedelta(days=1)
        forwards = await partners_api.forward_stats(
            request, period.start.astimezone(local_zone()).date(), last_day.date()
        )
    return render(
        request,
        user,
        "stats.html",
        {
            "f": data,
            "forwards": forwards,
            "quarters": periods.recent_quarters(),
            "statuses": STATUS_LABELS,
            "date_from": first,
            "date_to": last,
        },
    )
