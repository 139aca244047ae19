"""The statistics page read from its tally of closed days is the live count, figure for
figure, at every moment: after the scheduler's pass has counted the seeded days, and right
after each late change to a counted day (before any pass counts it again), and after the
next pass. The changes: a case backdated by an import, a risk level assessed again, a
referral returned (its department no longer sees the case), a case moved to another
district by a correction (its referrals planned again), a referral re-routed to another
place's office, a second report on another channel, a case deleted. Viewers: the city
center, a district center, police of the district and of the city, education's liaison.
"""

import asyncio
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import delete, func, insert, select

from bench.bench_console import seed
from db import clock
from db.models import Case, Jurisdiction, Office, Referral, Report
from db.stats import stats_case_tally, stats_day, stats_referral_tally, stats_touched
from dispatch.cases.corrections import Correction, correct_case
from dispatch.console import periods, stats_tally
from dispatch.console.stats import figures
from dispatch.console.timefmt import local_zone
from dispatch.ops import schema
from dispatch.staff.auth import Principal
from tests.fixtures.sessions import own_sessions
from tests.fixtures.stats import expected_shown, reference_figures, shown_figures

CASES = 700
DAYS = 20  # the seed's cases are spread over the last 20 days, up to an hour ago


@pytest.fixture(scope="module")
def seeded(fresh_database) -> str:
    url = fresh_database()
    schema.migrate(url)
    asyncio.run(seed(url, CASES, days=DAYS))
    return url


async def _viewers(session) -> list[Principal]:
    paths = dict((await session.execute(select(Jurisdiction.code, Jurisdiction.path))).all())
    return [
        Principal(1, "city", "supervisor", None, "990100", paths["990100"]),
        Principal(2, "district", "supervisor", None, "990102", paths["990102"]),
        Principal(3, "police", "supervisor", "police", "990102", paths["990102"]),
        Principal(4, "city-police", "supervisor", "police", "990100", paths["990100"]),
        Principal(5, "edu", "liaison", "education", "990100", paths["990100"]),
    ]


def _today() -> date:
    return clock.now().astimezone(local_zone()).date()


def _periods() -> list[periods.Period]:
    """The quarter (at its start mostly live), the seeded days up to today, and some days
    in between."""
    today = _today()
    first = today - timedelta(days=DAYS)
    return [
        periods.quarter(periods.current_quarter()),
        periods.days(first, today),
        periods.days(first + timedelta(days=1), today - timedelta(days=2)),
    ]


async def _assert_exact(sessions, viewers, *, tallied: bool) -> None:
    """figures() (tally and live parts) equals the plain live queries, for every viewer
    and period; with `tallied`, counted days were read from the tally."""
    for period in _periods():
        async with sessions() as session, session.begin():
            clean = await stats_tally.clean_buckets(session, period)
            for principal in viewers:
                shown = await figures(session, principal, period)
                ref = await reference_figures(session, principal, period)
                assert shown_figures(shown) == expected_shown(ref, shown), (
                    principal.username,
                    period.label,
                )
        if tallied and period.label != _periods()[0].label:
            assert clean, period.label  # the tally was in play, not only the live count


async def _counted_case(session, nth: int, **where) -> Case:
    """A case created on a closed day (counted by the first pass), the `nth` such one
    (changes land on different cases and, mostly, different days)."""
    stmt = select(Case).where(Case.created_at < stats_tally.bucket(_today())[0])
    for name, value in where.items():
        stmt = stmt.where(getattr(Case, name) == value)
    return (await session.scalars(stmt.order_by(Case.id.desc()).offset(nth).limit(1))).one()


async def _live_referral(session, nth: int, department: str, place: str = "%") -> Referral:
    """A live referral created on a closed day, the `nth` such one."""
    return (
        await session.scalars(
            select(Referral)
            .where(
                Referral.department_code == department,
                Referral.jurisdiction_code.like(place),
                Referral.created_at < stats_tally.bucket(_today())[0],
                Referral.status.in_(("queued", "claimed", "in_progress")),
            )
            .order_by(Referral.id.desc())
            .offset(nth)
            .limit(1)
        )
    ).one()


async def test_the_tallied_figures_are_the_live_ones_after_every_change(seeded):
    async with own_sessions(seeded) as sessions:
        async with sessions() as session, session.begin():
            viewers = await _viewers(session)
            # Nothing counted yet, whichever test of the module ran before.
            for table in (stats_case_tally, stats_referral_tally, stats_touched, stats_day):
                await session.execute(delete(table))
        await _assert_exact(sessions, viewers, tallied=False)
        counted = await stats_tally.build(sessions, clock.now(), limit=400)
        assert counted
        assert await stats_tally.build(sessions, clock.now(), limit=400) == []  # all clean
        await _assert_exact(sessions, viewers, tallied=True)

        async def change(step) -> None:
            async with sessions() as session, session.begin():
                await step(session)
            await _assert_exact(sessions, viewers, tallied=True)  # before any pass

        async def imported(session) -> None:  # a backdated case, on a counted day
            at = (await _counted_case(session, 3)).created_at + timedelta(minutes=1)
            case_id = await session.scalar(
                insert(Case)
                .values(
                    state="handling",
                    risk_level="red",
                    categories=["trafficking", "poverty"],
                    jurisdiction_code="990102001",
                    created_at=at,
                    updated_at=at,
                )
                .returning(Case.id)
            )
            await session.execute(
                insert(Report).values(
                    channel="12355",
                    external_id=f"import-{case_id}",
                    receipt_code="IMPORT0001",
                    case_id=case_id,
                    description="补录",
                    created_at=at,
                )
            )
            await session.execute(
                insert(Referral).values(
                    case_id=case_id,
                    department_code="police",
                    role="lead",
                    status="queued",
                    jurisdiction_code="990102",
                    created_at=at,
                    updated_at=at,
                )
            )

        async def assessed(session) -> None:
            case = await _counted_case(session, 20, risk_level="blue")
            case.risk_level = "red"

        async def returned(session) -> None:  # education sees the case no more
            referral = await _live_referral(session, 10, "education")
            referral.status, referral.return_reason = "returned", "不属于本部门职责"

        async def moved(session) -> None:
            case = await _counted_case(session, 2, state="handling", jurisdiction_code="990102")
            locked = await session.get(Case, case.id, with_for_update=True)
            city = viewers[0]
            fix = Correction(reason="地址更正", jurisdiction="990103001")
            await correct_case(session, locked, fix, city, clock.now())

        async def rerouted(session) -> None:  # to another district's police
            referral = await _live_referral(session, 30, "police", "990102%")
            office = (
                await session.scalars(
                    select(Office).where(
                        Office.department_code == "police", Office.jurisdiction_code == "990104"
                    )
                )
            ).first()
            referral.office_id, referral.jurisdiction_code = office.id, office.jurisdiction_code

        async def second_report(session) -> None:
            case = await _counted_case(session, 60)
            channels = set(
                await session.scalars(select(Report.channel).where(Report.case_id == case.id))
            )
            channel = next(c for c in ("sms", "voice", "110", "webform") if c not in channels)
            await session.execute(
                insert(Report).values(
                    channel=channel,
                    external_id=f"again-{case.id}",
                    receipt_code="AGAIN00001",
                    case_id=case.id,
                    description="再次来电",
                    created_at=clock.now(),
                )
            )

        async def deleted(session) -> None:
            case = await _counted_case(session, 80, state="closed")
            await session.execute(delete(Referral).where(Referral.case_id == case.id))
            await session.execute(delete(Report).where(Report.case_id == case.id))
            await session.execute(delete(Case).where(Case.id == case.id))

        for step in (imported, assessed, returned, moved, rerouted, second_report, deleted):
            await change(step)

        # The next pass counts exactly the touched days again; then all is clean and exact.
        assert await stats_tally.build(sessions, clock.now(), limit=400)
        assert await stats_tally.build(sessions, clock.now(), limit=400) == []
        await _assert_exact(sessions, viewers, tallied=True)
        async with sessions() as session:
            left = await session.scalar(select(func.count()).select_from(Case))
        assert left == CASES  # one imported, one deleted


async def test_a_writer_running_while_a_pass_counts_leaves_the_day_dirty(seeded):
    """A day touched (committed), then touched again by a writer still running while the
    pass counts it: the pass counts the first change, the second, committed after the
    pass's snapshot, keeps the day dirty: read live, counted by the next pass."""
    async with own_sessions(seeded, pool_size=3) as sessions:
        async with sessions() as session:
            viewers = await _viewers(session)
        await stats_tally.build(sessions, clock.now(), limit=400)
        async with sessions() as session, session.begin():
            case = await _counted_case(session, 5, risk_level="yellow")
            case_id, day = case.id, case.created_at.astimezone(local_zone()).date()
            case.risk_level = "orange"
        async with sessions() as writer, writer.begin():
            case = await writer.get(Case, case_id)
            case.risk_level = "red"
            await writer.flush()  # the trigger ran; the writer has not committed
            counted = await stats_tally.build(sessions, clock.now(), limit=400)
            assert counted == [stats_tally.bucket(day)[0]]
        await _assert_exact(sessions, viewers, tallied=True)
        again = await stats_tally.build(sessions, clock.now(), limit=400)
        assert again == [stats_tally.bucket(day)[0]]
        await _assert_exact(sessions, viewers, tallied=True)


def test_buckets_are_local_days():
    lo, hi = stats_tally.bucket(date(2024, 3, 1))
    assert lo.astimezone(local_zone()).hour == 0 and hi - lo == timedelta(days=1)
    assert isinstance(lo, datetime)
