"""The statistics page's figures (also the quarterly report's summary sheet) are computed
in one statement by joins; they must be the very numbers the straightforward per-breakdown
queries give, on a seeded set of cases in every state, for every kind of viewer."""

import asyncio
from datetime import date

import pytest
from sqlalchemy import func, literal_column, select
from sqlalchemy.orm import aliased

from bench.bench_console import seed
from db.engine import make_engine, make_sessionmaker
from db.models import Case, Jurisdiction, Referral, Report
from dispatch.console import periods
from dispatch.console.stats import figures
from dispatch.ops import schema
from dispatch.staff.auth import Principal
from dispatch.staff.scope import case_filter, referral_filter


@pytest.fixture(scope="module")
def seeded(fresh_database) -> str:
    url = fresh_database()
    schema.migrate(url)
    asyncio.run(seed(url, 1500))
    return url


def _in(column, period):
    return (column >= period.start) & (column < period.end)


async def _reference(session, principal: Principal, period) -> dict:
    """The figures by one plain query each (what the page computed before)."""
    in_scope = (_in(Case.created_at, period), case_filter(principal))
    cases = await session.scalar(select(func.count()).select_from(Case).where(*in_scope))
    channels = await session.execute(
        select(Report.channel, func.count(func.distinct(Report.case_id)))
        .join(Case, Case.id == Report.case_id).where(*in_scope).group_by(Report.channel))
    category = func.unnest(Case.categories).label("category")
    categories = await session.execute(
        select(literal_column("category"), func.count())
        .select_from(select(category).where(*in_scope).subquery())
        .group_by(literal_column("category")))
    risks = await session.execute(
        select(Case.risk_level, func.count()).where(*in_scope).group_by(Case.risk_level))
    depth = (principal.scope_path or "").count("/")
    place = aliased(Jurisdiction)
    below = func.split_part(place.path, "/", depth + 1)
    places = await session.execute(
        select(below, func.count()).select_from(Case)
        .outerjoin(place, place.code == Case.jurisdiction_code).where(*in_scope)
        .group_by(below))
    departments = await session.execute(
        select(Referral.department_code, Referral.status, func.count())
        .where(_in(Referral.created_at, period), referral_filter(principal))
        .group_by(Referral.department_code, Referral.status))
    return {
        "cases": cases,
        "channel": sorted(channels.all()),
        "category": sorted(categories.all()),
        "risk": sorted(risks.all(), key=str),
        "place": sorted(places.all(), key=str),
        "department": sorted(departments.all()),
    }


def _shown(f) -> dict:
    return {
        "cases": f.cases,
        **{b.title: sorted((r.label, r.count) for r in b.rows) for b in f.breakdowns},
        "department": sorted((d.department, d.total, sorted(d.by_status.items()))
                             for d in f.departments),
    }


def _expected_shown(ref: dict, f) -> dict:
    """The reference in the page's labels (the page's own label maps, applied to it)."""
    from dispatch.console.stats import _place_label, _rows
    from dispatch.console.web import CHANNEL_LABELS
    from workflows.reference import category_labels, department_labels, jurisdiction_labels
    from workflows.referrals.deadlines import LEVEL_LABELS

    by_dept: dict[str, dict[str, int]] = {}
    for dept, status, n in ref["department"]:
        by_dept.setdefault(dept, {})[status] = n
    labels = department_labels()
    names = jurisdiction_labels()
    return {
        "cases": ref["cases"],
        "来源渠道": sorted((r.label, r.count) for r in _rows(ref["channel"], CHANNEL_LABELS)),
        "困境类型": sorted((r.label, r.count) for r in _rows(ref["category"], category_labels())),
        "风险等级": sorted((r.label, r.count)
                       for r in _rows(ref["risk"], dict(LEVEL_LABELS), "未评估")),
        "辖区": sorted((_place_label(code, names), n) for code, n in ref["place"]),
        "department": sorted((labels.get(d, d), sum(s.values()), sorted(s.items()))
                             for d, s in by_dept.items()),
    }


async def test_the_figures_match_the_plain_queries_for_every_viewer_and_period(seeded):
    engine = make_engine(seeded, pool_size=2)
    sessions = make_sessionmaker(engine)
    try:
        async with sessions() as session:
            paths = dict((await session.execute(
                select(Jurisdiction.code, Jurisdiction.path))).all())
        viewers = [
            Principal(1, "city", "supervisor", None, "990100", paths["990100"]),
            Principal(2, "district", "supervisor", None, "990102", paths["990102"]),
            Principal(3, "street", "caseworker", None, "990102001", paths["990102001"]),
            Principal(4, "police", "supervisor", "police", "990102", paths["990102"]),
            Principal(5, "edu", "liaison", "education", "990100", paths["990100"]),
        ]
        quarter = periods.quarter(periods.current_quarter())
        some_days = periods.chosen("", quarter.start.date(), date.today())
        nothing = periods.chosen("", date(2001, 1, 1), date(2001, 1, 31))
        seen_cases = 0
        for principal in viewers:
            for period in (quarter, some_days, nothing):
                async with sessions() as session, session.begin():
                    shown = await figures(session, principal, period)
                    ref = await _reference(session, principal, period)
                assert _shown(shown) == _expected_shown(ref, shown), (principal.username, period)
                seen_cases += shown.cases
        assert seen_cases > 1500  # the seeded cases were counted, not an empty set
    finally:
        await engine.dispose()
