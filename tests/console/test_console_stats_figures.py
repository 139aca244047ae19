"""The statistics page's figures (also the quarterly report's summary sheet) are computed
in one statement by joins; they must be the very numbers the straightforward per-breakdown
queries give, on a seeded set of cases in every state, for every kind of viewer."""

import asyncio
from datetime import date

import pytest
from sqlalchemy import select

from bench.bench_console import seed
from db.engine import make_engine, make_sessionmaker
from db.models import Jurisdiction
from dispatch.console import periods
from dispatch.console.stats import figures
from dispatch.ops import schema
from dispatch.staff.auth import Principal
from tests.fixtures.stats import expected_shown, reference_figures, shown_figures


@pytest.fixture(scope="module")
def seeded(fresh_database) -> str:
    url = fresh_database()
    schema.migrate(url)
    asyncio.run(seed(url, 1500))
    return url


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
                    ref = await reference_figures(session, principal, period)
                assert shown_figures(shown) == expected_shown(ref, shown), (
                    principal.username, period)
                seen_cases += shown.cases
        assert seen_cases > 1500  # the seeded cases were counted, not an empty set
    finally:
        await engine.dispose()
