"""Periodic reports (月报/季报/半年报/年报): a district's figures, narrative and typical
cases, 审核 and 报送 to the city, and the city's acknowledgement or return.

The figures build on the statistics page's (`dispatch.console.stats.figures`: channel,
category, risk level, place, referrals by department) counted for the district's subtree,
and add what the plans ask of a report: age band and sex of the children, needs, services
delivered, outcomes and the plans' rates as `supervision.toml` defines them. They are
frozen into the report at 审核, so the city receives what the district reviewed.
"""

from datetime import date, datetime, time
from typing import Any

from sqlalchemy import (
    Boolean,
    Text,
    and_,
    case,
    cast,
    false,
    func,
    literal,
    not_,
    select,
    text,
    true,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from db import clock
from db.models import Case, Jurisdiction, PeriodicReport, Referral, Report
from dispatch.console.periods import Period
from dispatch.console.stats import figures as stats_figures
from dispatch.console.timefmt import local_zone
from dispatch.staff.audit import audit
from dispatch.staff.auth import Principal
from dispatch.staff.scope import case_filter
from workflows import supervision as rules
from workflows.cases.workflow import STATE_LABELS
from workflows.errors import Conflict, Forbidden, Invalid, NotFound, WorkflowRefused
from workflows.referrals.workflow import STATUS_LABELS
from workflows.supervision import ReportPeriod

GENDERS = {"male": "男", "female": "女", "unknown": "不详"}
MAX_TYPICAL = 10


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=local_zone())


def stats_period(period: ReportPeriod) -> Period:
    return Period(_midnight(period.first), _midnight(period.after), period.label)


def parse(code: str) -> ReportPeriod:
    try:
        return rules.parse_period(code)
    except WorkflowRefused as exc:
        raise Invalid(exc.code, exc.message) from exc


async def districts(session: AsyncSession) -> list[Jurisdiction]:
    """The districts (level 2) that report to the city."""
    stmt = select(Jurisdiction).where(Jurisdiction.level == 2).order_by(Jurisdiction.code)
    return list((await session.execute(stmt)).scalars())


async def district_of(session: AsyncSession, code: str) -> Jurisdiction:
    place = await session.get(Jurisdiction, code)
    if place is None or place.level != 2:
        raise NotFound("district_not_found", "未找到该区县")
    return place


def _as_district(place: Jurisdiction) -> Principal:
    """The district's center, as a scope: figures count exactly what its staff may see."""
    return Principal(0, "report", "supervisor", None, place.code, place.path)


def _rows(counts: dict[str, int], labels: dict[str, str] | None = None) -> list[dict[str, Any]]:
    labels = labels or {}
    rows = [{"label": labels.get(k, k), "count": n} for k, n in counts.items()]
    return sorted(rows, key=lambda r: -r["count"])


def _flags():
    """Whether any of the case's referrals was delivered or completed: one read of the case's
    referrals by index (not a hashed scan of the whole referral table per flag)."""
    return (
        select(
            func.bool_or(Referral.delivered_at.is_not(None)).label("delivered"),
            func.bool_or(Referral.status == "completed").label("completed"),
        )
        .where(Referral.case_id == Case.id)
        .lateral("flags")
    )


def _case_columns(flags) -> list:
    """State, needs and the rates' sets of each case, in the order both statements give them."""
    needs = func.coalesce(Case.assessment["needs"], cast(literal("[]"), Case.assessment.type))
    classified = and_(
        Case.risk_level.is_not(None),
        not_(Case.categories.contained_by(cast(["other"], ARRAY(Case.categories.type.item_type)))),
    )
    return [
        Case.state.label("state"),
        needs.label("needs"),
        cast(classified, Boolean).label("classified"),
        Case.risk_level.is_not(None).label("assessed"),
        func.coalesce(flags.c.delivered, false()).label("intervened"),
        func.coalesce(flags.c.completed, false()).label("helped"),
    ]


def _in_report(principal: Principal, period: Period):
    return (
        Case.created_at >= period.start,
        Case.created_at < period.end,
        Case.state.not_in(("merged", "invalid")),
        case_filter(principal),
    )


def _age_band(years):
    """rules.band_of in SQL: the configured band of an age in years, 未填写 outside them."""
    bands = [(and_(years >= low, years < high), label) for low, high, label in rules.age_bands()]
    return case(*bands, else_=literal("未填写")) if bands else literal("未填写")


def _figures_statement(principal: Principal, period: Period):
    """State, needs, the rates' sets, age band and sex, grouped: one row per combination
    with its number of cases.

    The age and sex are the case's plain `child_age` and `child_sex` (its first report's,
    corrections included; migration 0036), so no report is read and no sealed child opened.
    Whether any referral was delivered or completed comes from one read of the case's
    referrals, by index."""
    flags = _flags()
    inner = (
        select(
            *_case_columns(flags),
            _age_band(Case.child_age).label("age_band"),
            Case.child_sex.label("sex"),
        )
        .select_from(Case)
        .outerjoin(flags, true())
        .where(*_in_report(principal, period))
        .subquery()
    )
    columns = [inner.c[name] for name in inner.c.keys()]
    return select(*columns, func.count()).group_by(*columns)


def _extra_statement(principal: Principal, period: Period):
    """The same per combination with its cases' sealed children (for age and sex) as a list
    instead of age band and sex: the figures as they were read before the case kept its
    child's age and sex in plain, each case's first report looked up once, by index.
    Kept as the sealed reading the figures tests compare with (an earlier statement, and the
    plain columns); the report itself uses `_figures_statement`."""
    first_report = (
        select(Report.child)
        .where(Report.case_id == Case.id)
        .order_by(Report.id)
        .limit(1)
        .lateral("first_report")
    )
    flags = _flags()
    inner = (
        select(first_report.c.child.label("child"), *_case_columns(flags))
        .select_from(Case)
        .outerjoin(first_report, true())
        .outerjoin(flags, true())
        .where(*_in_report(principal, period))
        .subquery()
    )
    columns = [inner.c[name] for name in inner.c.keys() if name != "child"]
    # The children (ciphertext, one per case) gathered per combination and opened in
    # Python: grouping by a sealed value sorted and returned one row per case.
    children = type_coerce(func.array_agg(inner.c.child), ARRAY(Text)).label("children")
    return select(*columns, children, func.count()).group_by(*columns)


async def report_figures(
    session: AsyncSession, place: Jurisdiction, period: ReportPeriod
) -> dict[str, Any]:
    """The figures of one district's report for one period, as stored in the report."""
    await session.execute(text("SET LOCAL jit = off"))
    principal = _as_district(place)
    span = stats_period(period)
    base = await stats_figures(session, principal, span)
    ages: dict[str, int] = {}
    sexes: dict[str, int] = {}
    states: dict[str, int] = {}
    needs: dict[str, int] = {}
    sets = dict.fromkeys(rules.CASE_SETS, 0)
    for row in await session.execute(_figures_statement(principal, span)):
        n = row[-1]
        ages[row.age_band] = ages.get(row.age_band, 0) + n
        sex = GENDERS.get(row.sex or "", "未填写")
        sexes[sex] = sexes.get(sex, 0) + n
        states[row.state] = states.get(row.state, 0) + n
        listed = [x for x in (row.needs or []) if isinstance(x, str)]
        for need in listed:
            needs[need] = needs.get(need, 0) + n
        sets["received"] += n
        sets["classified"] += n if row.classified else 0
        sets["assessed"] += n if row.assessed else 0
        sets["intervened"] += n if row.intervened else 0
        sets["needing_help"] += n if (listed or row.intervened) else 0
        sets["helped"] += n if row.helped else 0
        sets["closed"] += n if row.state == "closed" else 0
    breakdowns = [
        {"title": b.title, "rows": [{"label": r.label, "count": r.count} for r in b.rows]}
        for b in base.breakdowns
    ]
    breakdowns += [
        {"title": "年龄段", "rows": _rows(ages)},
        {"title": "性别", "rows": _rows(sexes)},
        {"title": "需求", "rows": _rows(needs)},
        {"title": "办理结果（案件状态）", "rows": _rows(states, STATE_LABELS)},
        {
            "title": "服务提供（已办结转介）",
            "rows": sorted(
                (
                    {"label": d.department, "count": d.by_status.get("completed", 0)}
                    for d in base.departments
                    if d.by_status.get("completed")
                ),
                key=lambda r: -r["count"],
            ),
        },
    ]
    rates = [
        {
            "key": d.key,
            "label": d.label,
            "numerator": sets[d.numerator],
            "denominator": sets[d.denominator],
            "value": rules.rate(sets[d.numerator], sets[d.denominator]),
        }
        for d in rules.rate_definitions()
    ]
    return {
        "period": period.code,
        "label": period.label,
        "district": place.code,
        "district_name": place.name,
        "cases": base.cases,
        "breakdowns": breakdowns,
        "departments": [
            {
                "department": d.department,
                "total": d.total,
                "by_status": {STATUS_LABELS.get(k, k): v for k, v in d.by_status.items()},
            }
            for d in base.departments
        ],
        "rates": rates,
        "sets": sets,
        "counted_at": clock.now().isoformat(),
    }


# --- who may do what -------------------------------------------------------------------


def _is_city(principal: Principal) -> bool:
    return (
        principal.is_center
        and bool(principal.scope_path)
        and (principal.scope_path.count("/") == 1)
    )


def _own_district(principal: Principal, district: str) -> bool:
    return principal.is_center and principal.jurisdiction == district


def may_read(principal: Principal, district: str) -> bool:
    """The city reads every district's report; a district only its own."""
    return _is_city(principal) or _own_district(principal, district)


def _check(principal: Principal, district: str, event: str | None) -> None:
    if event in ("acknowledge", "return"):
        allowed = _is_city(principal) and principal.role in ("supervisor", "inspector")
        message = "只有市级中心督导可以确认或退回区县报告"
    elif event in ("review", "submit"):
        allowed = _own_district(principal, district) and principal.role == "supervisor"
        message = "只有本区县中心的督导可以审核和报送"
    else:  # writing the draft
        allowed = _own_district(principal, district) and principal.role in (
            "caseworker",
            "supervisor",
        )
        message = "只有本区县中心的社工或督导可以编写本区县报告"
    if not allowed:
        raise Forbidden("forbidden", message)


# --- the report itself -----------------------------------------------------------------


async def load(
    session: AsyncSession,
    principal: Principal,
    district: str,
    period: ReportPeriod,
    *,
    lock: bool = False,
) -> PeriodicReport | None:
    if not may_read(principal, district):
        raise NotFound("report_not_found", "未找到该报告")
    stmt = select(PeriodicReport).where(
        PeriodicReport.district_code == district, PeriodicReport.period == period.code
    )
    return (await session.execute(stmt.with_for_update() if lock else stmt)).scalar_one_or_none()


def _step(
    report: PeriodicReport,
    principal: Principal,
    what: str,
    now: datetime,
    comment: str | None = None,
) -> None:
    report.history = [
        *report.history,
        {"at": now.isoformat(), "by": principal.label, "what": what, "comment": comment},
    ]
    report.updated_by_label = principal.label
    report.updated_at = now


def _typical(items: list[dict[str, Any]]) -> list[dict[str, str]]:
    if len(items) > MAX_TYPICAL:
        raise Invalid("too_many_cases", f"典型案例最多{MAX_TYPICAL}个")
    out = []
    for item in items:
        title = str(item.get("title", "")).strip()[:100]
        body = str(item.get("text", "")).strip()[:5000]
        if not (title and body):
            raise Invalid("typical_case_incomplete", "每个典型案例都需要标题和内容")
        out.append({"title": title, "text": body})
    return out


async def save_draft(
    session: AsyncSession,
    principal: Principal,
    district: str,
    period: ReportPeriod,
    narrative: str,
    typical_cases: list[dict[str, Any]],
    now: datetime,
) -> PeriodicReport:
    """Write the district's narrative and typical cases (anonymised by the district). A
    reviewed report that is edited goes back to draft: it must be reviewed again."""
    _check(principal, district, None)
    await district_of(session, district)
    report = await load(session, principal, district, period, lock=True)
    if report is None:
        report = PeriodicReport(
            district_code=district,
            period=period.code,
            status="draft",
            updated_by_label=principal.label,
            created_at=now,
            updated_at=now,
            history=[],
        )
        session.add(report)
    elif report.status not in rules.REPORT_EDITABLE:
        label = rules.REPORT_STATUS_LABELS[report.status]
        raise Conflict("report_sent", f"报告{label}，不能再修改")
    report.narrative = narrative.strip()[:20000]
    report.typical_cases = _typical(typical_cases)
    if report.status == "reviewed":
        report.status = "draft"
    _step(report, principal, "edit", now)
    await session.flush()
    return report


async def report_event(
    session: AsyncSession,
    principal: Principal,
    district: str,
    period: ReportPeriod,
    event: str,
    comment: str | None,
    now: datetime,
    *,
    ip: str | None,
) -> PeriodicReport:
    """审核 and 报送 by the district; acknowledge or return by the city; audited with the
    event's label, for the API and the page alike."""
    _check(principal, district, event)
    place = await district_of(session, district)
    report = await load(session, principal, district, period, lock=True)
    if report is None:
        raise NotFound("report_not_found", "该区县尚未编写本期报告")
    try:
        report.status = rules.apply_report_event(report.status, event, comment)
    except WorkflowRefused as exc:
        kind = Conflict if exc.code == "transition_not_allowed" else Invalid
        raise kind(exc.code, exc.message) from exc
    if event == "review":
        report.figures = await report_figures(session, place, period)
    if event == "submit":
        report.submitted_at = now
    if event == "return":
        report.comment = (comment or "").strip()
    _step(report, principal, event, now, (comment or "").strip() or None)
    detail = {"event": rules.REPORT_EVENT_LABELS[event]}
    audit(
        session, principal, f"supervision.report_{event}", "report", report.id, None, detail, ip=ip
    )
    return report


async def overview(
    session: AsyncSession, principal: Principal, period: ReportPeriod, today: date
) -> list[dict[str, Any]]:
    """The city's list for one period: every district, its report's status, and whether it
    is missing past the due date. A district sees its own line only."""
    reports = {
        r.district_code: r
        for r in (
            await session.execute(
                select(PeriodicReport).where(PeriodicReport.period == period.code)
            )
        ).scalars()
    }
    out = []
    for place in await districts(session):
        if not may_read(principal, place.code):
            continue
        report = reports.get(place.code)
        sent = report is not None and report.status in rules.REPORT_SENT
        out.append(
            {
                "district": place.code,
                "district_name": place.name,
                "status": report.status if report else None,
                "status_label": rules.REPORT_STATUS_LABELS.get(report.status, "")
                if report
                else "未编写",
                "submitted_at": report.submitted_at if report else None,
                "due": period.due,
                "missing": not sent and today > period.due,
            }
        )
    return out
