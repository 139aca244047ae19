"""The scorecard read from the tally of closed days is the live scorecard, figure for figure.

A database of its own and fixed dates: February to 10 April 2024 (Asia/Shanghai), a few
hundred referrals to city, district and street offices of several departments, cases in
other places than their offices and a few with no place yet, claims, first actions, 督办
and 挂牌督办 on the timeline (the trigger fills the measures), every status with return
reasons, 督查 orders. The same scorecards are computed with no day counted (all live) and
after the scheduler's pass has counted the closed days, for the city, a district center,
department supervisors of the city and of a district, per office and per department, over
periods that start and end at local midnight (mid-UTC-day), at odd hours, and over a
period that runs into today. Then late changes on counted days (a referral returned, a
case moved to another district, a first claim) must show at once, before any recount.
"""

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import array

from db.engine import transaction
from db.models import (
    Case,
    CaseEvent,
    Office,
    Referral,
    SupervisionOrder,
    scorecard_block,
    scorecard_block_tally,
    scorecard_day,
    scorecard_minutes,
    scorecard_tally,
)
from dispatch.referrals.service import reroute
from dispatch.staff.auth import Principal
from dispatch.supervision import tally
from dispatch.supervision.scorecard import scorecard
from tests.fixtures.referrals import referral_event, seed_referral
from tests.fixtures.sessions import own_sessions

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2024, 4, 10, 15, 0, tzinfo=TZ)  # "today" is 10 April

CITY = Principal(1, "city", "supervisor", None, "990100", "990100/")
EAST_CENTER = Principal(4, "ec", "supervisor", None, "990102", "990100/990102/")
EAST_POLICE = Principal(2, "ep", "supervisor", "police", "990102", "990100/990102/")
CITY_POLICE = Principal(3, "cp", "supervisor", "police", "990100", "990100/")
CITY_EDUCATION = Principal(5, "ce", "supervisor", "education", "990100", "990100/")
SCOPES = [CITY, EAST_CENTER, EAST_POLICE, CITY_POLICE, CITY_EDUCATION]

PERIODS = [
    (datetime(2024, 3, 1, tzinfo=TZ), datetime(2024, 4, 1, tzinfo=TZ)),  # local midnights
    (datetime(2024, 3, 5, 10, 30, tzinfo=TZ), datetime(2024, 3, 20, 15, 7, tzinfo=TZ)),
    (datetime(2024, 4, 1, tzinfo=TZ), datetime(2024, 4, 11, tzinfo=TZ)),  # into today
    (datetime(2024, 2, 14, 3, 0, tzinfo=UTC), datetime(2024, 2, 16, 0, 0, tzinfo=UTC)),
]
PLACES = ["990100", "990102", "990103", "990102001", "990104"]
DEPARTMENTS = ["police", "education", "civil_affairs", "health"]
REASONS = ["不属于本部门职责", "信息不全，请补充", None]
KNOWN_PLACES = {"990102", "990103", "990104", "990102001", "990102002", "990103001"}


@pytest.fixture(scope="module")
async def seeded(database_url):
    async with own_sessions(database_url) as sessions:
        rng = random.Random(17)
        first = datetime(2024, 2, 1, tzinfo=TZ)
        ids: list[int] = []
        async with transaction(sessions) as session:
            offices = [
                (o.id, o.department_code, o.jurisdiction_code)
                for o in (await session.execute(select(Office))).scalars()
                if o.department_code in DEPARTMENTS and o.jurisdiction_code in PLACES
            ]
            for n in range(360):
                office_id, dept, place = rng.choice(offices)
                created = first + timedelta(minutes=rng.randrange(0, 70 * 24 * 60))
                if created > NOW:
                    created = NOW - timedelta(minutes=rng.randrange(1, 600))
                case_place = rng.choice([place + "001", place, "990103001", "990102002", None])
                status = rng.choice(
                    ["queued", "claimed", "in_progress", "completed", "completed", "returned"]
                )
                claim_due = created + timedelta(minutes=rng.choice([30, 120, 480]))
                action_due = created + timedelta(hours=rng.choice([4, 24, 72]))
                reason = rng.choice(REASONS) if status == "returned" else None
                events = []
                if status != "queued":
                    claimed = created + timedelta(minutes=rng.randrange(0, 900))
                    events.append(("referral_claimed", claimed))
                    if status in ("in_progress", "completed") and rng.random() < 0.9:
                        progress = claimed + timedelta(minutes=rng.randrange(1, 3000))
                        events.append(("referral_progress", progress))
                if rng.random() < 0.25:
                    events.append(("escalated", claim_due))
                    if rng.random() < 0.4:
                        events.append(("flagged", claim_due + (claim_due - created)))
                case_id, rid = await seed_referral(
                    session, department=dept, office_id=office_id, place=place,
                    case_place=case_place if case_place in KNOWN_PLACES else None,
                    category="left_behind", created=created, claim_due=claim_due,
                    action_due=action_due, status=status, events=events, return_reason=reason,
                )
                ids.append(rid)
                if n % 29 == 0:
                    session.add(
                        SupervisionOrder(
                            case_id=case_id,
                            referral_id=rid,
                            department_code=dept,
                            office_id=office_id,
                            jurisdiction_code=place,
                            status=rng.choice(["open", "answered"]),
                            reason="整改",
                            due_at=created + timedelta(days=3),
                            opened_by_label="test",
                            opened_at=created + timedelta(hours=5),
                            created_at=created + timedelta(hours=5),
                        )
                    )
                await session.flush()
        yield sessions, ids


async def _card(sessions, principal, start, end, by, *, live: bool):
    async with sessions() as session:
        async with session.begin():
            if live:  # as if nothing were counted; rolled back
                await session.execute(delete(scorecard_day))
            result = await scorecard(session, principal, start, end, by=by, now=NOW)
            await session.rollback()
    return result


async def _all_equal(sessions, periods=PERIODS) -> int:
    """Asserts the counted scorecard is the live one in every scope, period and grouping."""
    compared = 0
    for principal in SCOPES:
        for start, end in periods:
            for by in ("office", "department"):
                live = await _card(sessions, principal, start, end, by, live=True)
                counted = await _card(sessions, principal, start, end, by, live=False)
                assert counted == live, (principal.username, start, end, by)
                compared += len(live.items)
    return compared


async def _count_all(sessions) -> None:
    """Passes until one counts no day it had not counted (a day touched by a late change is
    counted again by every pass within the margin)."""
    seen: set = set()
    while True:
        async with transaction(sessions) as session:
            done = set(await tally.build(session, NOW, limit=20))
        if done <= seen:
            return
        seen |= done


async def test_the_counted_scorecard_is_the_live_one(seeded):
    sessions, _ = seeded
    await _count_all(sessions)
    async with transaction(sessions) as session:
        days = (await session.execute(select(scorecard_day.c.day))).scalars().all()
        oldest = await session.scalar(select(func.min(Referral.created_at)))
    # Every UTC day from the first referral's to yesterday (9 April); today is not counted.
    first = oldest.astimezone(UTC).date()
    yesterday = datetime(2024, 4, 9).date()
    assert sorted(days) == [first + timedelta(days=n) for n in range((yesterday - first).days + 1)]
    compared = await _all_equal(sessions)
    assert compared > 50  # offices and departments were there to compare


async def test_the_tally_is_what_is_read(seeded):
    """Not the live rows in disguise: a counted day's rows altered show in the figures (over
    days that are not a whole month's: those are read from their block)."""
    sessions, _ = seeded
    await _count_all(sessions)
    start, end = PERIODS[1]
    before = await _card(sessions, CITY, start, end, "office", live=False)
    day = datetime(2024, 3, 12).date()
    async with sessions() as session:
        async with session.begin():
            rows = await session.scalar(
                select(func.count())
                .select_from(scorecard_tally)
                .where(scorecard_tally.c.day == day)
            )
            await session.execute(
                update(scorecard_tally)
                .where(scorecard_tally.c.day == day)
                .values(received=scorecard_tally.c.received + 1000)
            )
            altered = await scorecard(session, CITY, start, end, by="office", now=NOW)
            await session.rollback()
    assert rows > 0
    assert altered.total["received"] == before.total["received"] + 1000 * rows


async def test_late_changes_on_counted_days_show_at_once(seeded):
    sessions, ids = seeded
    await _count_all(sessions)
    start, end = PERIODS[0]
    before = await _card(sessions, CITY, start, end, "office", live=False)
    real_now = datetime.now(UTC)  # what a writer stamps its timeline event with
    async with transaction(sessions) as session:
        rows = (
            await session.execute(
                select(Referral)
                .where(
                    Referral.created_at >= start,
                    Referral.created_at < end,
                    Referral.status == "queued",
                )
                .order_by(Referral.id)
                .limit(2)
            )
        ).scalars()
        returned, claimed = list(rows)
        returned.status, returned.return_reason = "returned", "不属于本部门职责"
        returned.updated_at = real_now
        session.add(referral_event(returned, "referral_returned", real_now))
        claimed.status = "claimed"
        # Dated at the claim's time (when it was recorded is the note below).
        session.add(
            referral_event(claimed, "referral_claimed", claimed.created_at + timedelta(minutes=7))
        )
        # The claim is recorded now: its transaction writes the timeline at this moment.
        session.add(
            CaseEvent(
                case_id=claimed.case_id,
                event="note",
                actor="test",
                data={},
                created_at=real_now,
            )
        )
        moved = await session.get(Case, (await session.get(Referral, ids[3])).case_id)
        moved.jurisdiction_code = "990104001" if moved.jurisdiction_code != "990104001" else None
        session.add(
            CaseEvent(
                case_id=moved.id, event="case_corrected", actor="test", data={}, created_at=real_now
            )
        )
    after = await _card(sessions, CITY, start, end, "office", live=False)
    assert after.total["returned"] == before.total["returned"] + 1
    assert after.total["claimed"] == before.total["claimed"] + 1
    await _all_equal(sessions)
    # The next pass counts the touched days again; still the live figures.
    async with transaction(sessions) as session:
        assert await tally.build(session, NOW)
    await _all_equal(sessions)


async def test_whole_months_read_their_buckets_and_stay_exact(seeded):
    """February and March are built as blocks (their minutes bucketed); over periods made
    of whole months the figures are still the live ones, and the blocks are really read:
    a block's counts and exact minutes altered show in the figures."""
    sessions, _ = seeded
    await _count_all(sessions)
    async with transaction(sessions) as session:
        built = (await session.execute(select(scorecard_block.c.first_day))).scalars().all()
    assert sorted(built) == [datetime(2024, 2, 1).date(), datetime(2024, 3, 1).date()]
    months = [
        (datetime(2024, 2, 1, tzinfo=TZ), datetime(2024, 4, 1, tzinfo=TZ)),
        (datetime(2024, 2, 1, tzinfo=TZ), datetime(2024, 4, 11, tzinfo=TZ)),
        (datetime(2024, 2, 1, tzinfo=TZ), datetime(2024, 3, 1, tzinfo=TZ)),
    ]
    await _all_equal(sessions, months)
    start, end = months[0]
    before = await _card(sessions, CITY, start, end, "office", live=False)
    minutes = scorecard_minutes.c.minutes
    async with sessions() as session:
        async with session.begin():
            await session.execute(
                update(scorecard_minutes).values(
                    minutes=func.array_fill(100_000, array([func.cardinality(minutes)]))
                )
            )
            await session.execute(
                update(scorecard_block_tally).values(received=scorecard_block_tally.c.received + 1)
            )
            altered = await scorecard(session, CITY, start, end, by="office", now=NOW)
            await session.rollback()
    assert altered.total["received"] > before.total["received"]
    for figure in ("median_minutes_to_claim", "p90_minutes_to_action"):
        assert before.total[figure] < 10_000
        assert altered.total[figure] > before.total[figure]


async def test_a_share_routed_later_leaves_its_day_and_the_figures_stay_exact(seeded):
    """Routing an unrouted share stamps it anew (`reroute` sets its created_at to the routing
    time): it moves from a counted day to today. The day that held it counted nothing of it
    (the scorecard counts referrals with an office), so the counted figures stay the live
    ones, and the routed share shows today's."""
    sessions, _ = seeded
    held_on = datetime(2024, 3, 12, 10, 0, tzinfo=TZ)
    async with transaction(sessions) as session:
        case_id = await session.scalar(
            insert(Case)
            .values(state="handling", jurisdiction_code="990102001", categories=["left_behind"],
                    created_at=held_on)
            .returning(Case.id)
        )
        await session.execute(
            insert(Referral).values(
                case_id=case_id, department_code="police", office_id=None,
                jurisdiction_code=None, role="lead", status="unrouted",
                created_at=held_on, updated_at=held_on,
            )
        )
    await _count_all(sessions)
    today = PERIODS[2]
    before = await _card(sessions, CITY, *today, "office", live=False)
    async with transaction(sessions) as session:
        case = await session.get(Case, case_id)
        routed = await reroute(session, case, "police", None, "test", NOW - timedelta(hours=1))
        # The routing is recorded now: its transaction writes the timeline at this moment.
        session.add(
            CaseEvent(case_id=case_id, event="note", actor="test", data={},
                      created_at=datetime.now(UTC))
        )
    assert routed.created_at == NOW - timedelta(hours=1) and routed.office_id is not None
    after = await _card(sessions, CITY, *today, "office", live=False)
    assert after.total["received"] == before.total["received"] + 1
    await _all_equal(sessions)
