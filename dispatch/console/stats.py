"""Counts over a period for supervisors: cases by channel, category, risk level and place,
referrals by department; shown as bars (server-drawn SVG, no script, no CDN) and used as
the summary sheet of the quarterly report. Always within the viewer's scope."""

from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import ColumnElement, Text, func, literal, null, select, text, tuple_, union_all
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from channels.web import sessions
from db.engine import transaction
from db.models import Case, Jurisdiction, Referral, Report
from dispatch.console import periods
from dispatch.console.periods import Period, local_zone
from dispatch.console.timefmt import parse_day
from dispatch.console.web import CHANNEL_LABELS, ConsoleRoute, ConsoleUser, DayText, render, staff
from dispatch.partners import service as partners
from dispatch.staff.audit import audit
from dispatch.staff.auth import Principal
from dispatch.staff.permissions import SUPERVISION
from dispatch.staff.scope import case_filter, referral_filter
from workflows.reference import category_labels, department_labels, jurisdiction_labels
from workflows.referrals.deadlines import LEVEL_LABELS
from workflows.referrals.workflow import STATUS_LABELS

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)

SUPERVISOR = staff(SUPERVISION)


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


def _figures_statement(principal: Principal, period: Period):
    """Every count of the page in one statement, each table read once, by joins.

    The cases in scope (a CTE) are grouped once by (jurisdiction, risk level) and by their
    category list (GROUPING SETS): totals, risk levels, places and categories are then
    sums over those few groups. Cases per channel join the reports' (case_id, channel)
    index to the same set; referrals by department are their own GROUP BY.
    Rows: (kind, key, sub-key, count).
    """
    depth = (principal.scope_path or "").count("/")
    scoped = (
        select(Case.id, Case.jurisdiction_code, Case.risk_level, Case.categories)
        .where(_in_period(Case.created_at, period), case_filter(principal))
        .cte("scoped")
    )
    groups = (
        select(
            scoped.c.jurisdiction_code,
            scoped.c.risk_level,
            scoped.c.categories,
            func.grouping(scoped.c.categories).label("by_place_and_risk"),
            func.count().label("n"),
        )
        .group_by(
            func.grouping_sets(
                tuple_(scoped.c.jurisdiction_code, scoped.c.risk_level),
                tuple_(scoped.c.categories),
            )
        )
        .cte("groups")
    )
    by_place = groups.c.by_place_and_risk == 1
    place = aliased(Jurisdiction)  # not `Jurisdiction`: the scope filter's subquery uses it
    below = func.split_part(place.path, "/", depth + 1)
    category = (
        select(func.unnest(groups.c.categories).label("category"), groups.c.n)
        .where(~by_place)
        .subquery()
    )
    # Cases per channel: a case with two reports on one channel counts once there.
    pairs = (
        select(Report.channel, Report.case_id)
        .join(scoped, scoped.c.id == Report.case_id)
        .group_by(Report.case_id, Report.channel)
        .subquery()
    )
    none = null().cast(Text)
    total = func.sum(groups.c.n)

    def kind(name: str) -> ColumnElement:
        return literal(name, Text)

    parts = [
        select(kind("total"), none, none, total).where(by_place),
        select(kind("risk"), groups.c.risk_level, none, total)
        .where(by_place)
        .group_by(groups.c.risk_level),
        select(kind("place"), below, none, total)
        .select_from(groups.outerjoin(place, place.code == groups.c.jurisdiction_code))
        .where(by_place)
        .group_by(below),
        select(kind("category"), category.c.category, none, func.sum(category.c.n)).group_by(
            category.c.category
        ),
        select(kind("channel"), pairs.c.channel, none, func.count()).group_by(pairs.c.channel),
        select(kind("department"), Referral.department_code, Referral.status, func.count())
        .where(_in_period(Referral.created_at, period), referral_filter(principal))
        .group_by(Referral.department_code, Referral.status),
    ]
    return union_all(*parts)


def _place_label(code: str | None, names: dict[str, str]) -> str:
    return "本级" if code == "" else names.get(code, code) if code else "未定辖区"


async def figures(session: AsyncSession, principal: Principal, period: Period) -> Figures:
    # A few hundred thousand rows are counted: JIT compiling the plan costs more than it saves.
    await session.execute(text("SET LOCAL jit = off"))
    counted: dict[str, list[tuple]] = {}
    for what, key, sub, count in await session.execute(_figures_statement(principal, period)):
        counted.setdefault(what, []).append((key, sub, int(count or 0)))
    pairs = {what: [(key, count) for key, _, count in rows] for what, rows in counted.items()}
    cases = sum(count for _, count in pairs.get("total", []))
    by_department: dict[str, dict[str, int]] = {}
    for dept, status, count in counted.get("department", []):
        by_department.setdefault(dept, {})[status] = count
    names = jurisdiction_labels()
    places = sorted(
        (Row(_place_label(code, names), count) for code, count in pairs.get("place", [])),
        key=lambda r: -r.count,
    )
    dept_labels = department_labels()
    return Figures(
        period=period,
        cases=cases,
        breakdowns=[
            Breakdown("来源渠道", _rows(pairs.get("channel", []), CHANNEL_LABELS)),
            Breakdown("困境类型", _rows(pairs.get("category", []), category_labels())),
            Breakdown("风险等级", _rows(pairs.get("risk", []), dict(LEVEL_LABELS), "未评估")),
            Breakdown("辖区", places),
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
    date_from: DayText = "",
    date_to: DayText = "",
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
        async with transaction(sessions(request)) as session:
            forwards = await partners.forward_stats(
                session=session,
                since=period.start.astimezone(local_zone()).date(),
                until=last_day.date(),
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
