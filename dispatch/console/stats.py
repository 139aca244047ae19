"""Counts over a period for supervisors: cases by channel, category, risk level and place,
referrals by department; shown as bars (server-drawn SVG, no script, no CDN) and used as
the summary sheet of the quarterly report. Always within the viewer's scope.

Closed days come from the scheduler's tally (`dispatch.console.stats_tally`) while nothing
has touched them since; the rest of the period is counted live, in the same statement."""

from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import (
    ColumnElement,
    Text,
    exists,
    false,
    func,
    literal,
    null,
    or_,
    select,
    text,
    tuple_,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from channels.web import sessions
from db.engine import transaction
from db.models import Case, Jurisdiction, Referral, Report
from db.stats import stats_case_tally, stats_day, stats_referral_tally, stats_touched
from dispatch.console import periods, stats_tally
from dispatch.console.periods import Period, local_zone
from dispatch.console.timefmt import parse_day
from dispatch.console.web import CHANNEL_LABELS, ConsoleRoute, ConsoleUser, DayText, render, staff
from dispatch.partners import service as partners
from dispatch.staff.audit import audit
from dispatch.staff.auth import Principal
from dispatch.staff.permissions import SUPERVISION
from dispatch.staff.scope import (
    case_filter,
    referral_filter,
    tallied_case_filter,
    tallied_referral_filter,
)
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


def _in_spans(column, spans: list[stats_tally.Span]) -> ColumnElement[bool]:
    return or_(false(), *((column >= lo) & (column < hi) for lo, hi in spans))


def _none() -> ColumnElement:
    return null().cast(Text)


def _kind(name: str) -> ColumnElement:
    return literal(name, Text)


def _fact(kind, jurisdiction, risk, key, sub, n) -> tuple[ColumnElement, ...]:
    """A fact row's columns, named: (kind, the case's place, risk level, key, sub-key, n)."""
    names = ("kind", "jurisdiction_code", "risk_level", "key", "sub", "n")
    return tuple(
        c.label(name)
        for c, name in zip((kind, jurisdiction, risk, key, sub, n), names, strict=True)
    )


def _live_facts(principal: Principal, spans: list[stats_tally.Span]) -> list:
    """The facts of the cases and referrals created in `spans`, counted from the tables.

    The cases in scope (a CTE) are grouped once by (jurisdiction, risk level) and by their
    category list (GROUPING SETS); cases per channel join the reports' (case_id, channel)
    index to the same set; referrals by department are their own GROUP BY.
    """
    scoped = (
        select(Case.id, Case.jurisdiction_code, Case.risk_level, Case.categories)
        .where(_in_spans(Case.created_at, spans), case_filter(principal))
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
    none = _none()
    return [
        select(
            *_fact(
                _kind("case"),
                groups.c.jurisdiction_code,
                groups.c.risk_level,
                none,
                none,
                groups.c.n,
            )
        ).where(by_place),
        select(
            *_fact(_kind("category"), none, none, category.c.category, none, func.sum(category.c.n))
        ).group_by(category.c.category),
        select(*_fact(_kind("channel"), none, none, pairs.c.channel, none, func.count())).group_by(
            pairs.c.channel
        ),
        select(
            *_fact(
                _kind("department"),
                none,
                none,
                Referral.department_code,
                Referral.status,
                func.count(),
            )
        )
        .where(_in_spans(Referral.created_at, spans), referral_filter(principal))
        .group_by(Referral.department_code, Referral.status),
    ]


def _tallied_facts(principal: Principal, counted) -> list:
    """The same facts of the counted buckets (`counted`: their starts), in scope, added up
    over the buckets here: the statement then adds up a few hundred rows, not one per day."""
    t, r = stats_case_tally.c, stats_referral_tally.c
    none = _none()
    case_keys = (t.kind, t.jurisdiction_code, t.risk_level, t.key)
    return [
        select(*_fact(*case_keys, none, func.sum(t.n)))
        .where(t.day_start.in_(counted), _tallied_case_scope(principal))
        .group_by(*case_keys),
        select(*_fact(_kind("department"), none, none, r.department_code, r.status, func.sum(r.n)))
        .where(
            r.day_start.in_(counted),
            tallied_referral_filter(
                principal, r.department_code, r.jurisdiction_code, r.case_jurisdiction
            ),
        )
        .group_by(r.department_code, r.status),
    ]


def _tallied_case_scope(principal: Principal) -> ColumnElement[bool] | None:
    t = stats_case_tally.c
    return tallied_case_filter(principal, t.viewer, t.places, t.jurisdiction_code)


def _figures_statement(principal: Principal, period: Period, clean: list[stats_tally.Span]):
    """Every count of the page in one statement: the tally's facts for the `clean` buckets,
    the live facts for the rest of the period, added up. Rows: (kind, key, sub-key,
    count); the row "buckets" counts the `clean` buckets still clean as this statement
    sees them (fewer: one was touched since they were chosen, the figures are read again).
    """
    depth = (principal.scope_path or "").count("/")
    parts = []
    live = stats_tally.spans(period, clean)
    if live:
        parts += _live_facts(principal, live)
    d, touched = stats_day.c, stats_touched.c
    still = (
        select(d.day_start)
        .where(
            d.day_start.in_([lo for lo, _ in clean]),
            ~exists().where(touched.at >= d.day_start, touched.at < d.day_end),
        )
        .cte("still_clean")
    )
    if clean:
        parts += _tallied_facts(principal, [lo for lo, _ in clean])
    facts = union_all(*parts).cte("facts")
    place = aliased(Jurisdiction)  # not `Jurisdiction`: the scope filter's subquery uses it
    below = func.split_part(place.path, "/", depth + 1)
    none = _none()
    total = func.sum(facts.c.n)
    is_case = facts.c.kind == "case"

    def by_key(name: str):
        return (
            select(_kind(name), facts.c.key, none, total)
            .where(facts.c.kind == name)
            .group_by(facts.c.key)
        )

    out = [
        select(_kind("total"), none, none, total).where(is_case),
        select(_kind("risk"), facts.c.risk_level, none, total)
        .where(is_case)
        .group_by(facts.c.risk_level),
        select(_kind("place"), below, none, total)
        .select_from(facts.outerjoin(place, place.code == facts.c.jurisdiction_code))
        .where(is_case)
        .group_by(below),
        by_key("category"),
        by_key("channel"),
        select(_kind("department"), facts.c.key, facts.c.sub, total)
        .where(facts.c.kind == "department")
        .group_by(facts.c.key, facts.c.sub),
    ]
    if clean:
        out.append(select(_kind("buckets"), none, none, func.count()).select_from(still))
    return union_all(*out)


def _place_label(code: str | None, names: dict[str, str]) -> str:
    return "本级" if code == "" else names.get(code, code) if code else "未定辖区"


async def figures(session: AsyncSession, principal: Principal, period: Period) -> Figures:
    """The period's figures in the principal's scope: the tally's counted days, the rest
    live (`dispatch.console.stats_tally`), exact either way."""
    # A few hundred thousand rows are counted: JIT compiling the plan costs more than it saves.
    await session.execute(text("SET LOCAL jit = off"))
    tallied = _tallied_case_scope(principal) is not None
    clean = await stats_tally.clean_buckets(session, period) if tallied else []
    for attempt in range(3):
        counted: dict[str, list[tuple]] = {}
        statement = _figures_statement(principal, period, clean)
        for what, key, sub, count in await session.execute(statement):
            counted.setdefault(what, []).append((key, sub, int(count or 0)))
        read = sum(count for _, _, count in counted.pop("buckets", []))
        if read == len(clean):
            break
        # A bucket was touched between the two reads: its changes are not in the tally yet.
        clean = await stats_tally.clean_buckets(session, period) if attempt < 1 else []
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
