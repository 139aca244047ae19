"""The statistics page's tally (`db.stats`): closed local days counted once by the
scheduler, read back by `dispatch.console.stats.figures` for the days of a period still
clean; everything else (today, days not counted yet, days touched since) is counted live
there, so the figures are the live ones whatever the tally holds.

A pass (`build`) counts again the buckets a trigger marked touched since (`stats_touched`),
then the closed days never counted (newest first), at most `BATCH_DAYS` in all, in one
REPEATABLE READ snapshot: the touched instants it sees are the changes it counts, and it
drops exactly those. A writer still running keeps its own instant (its transaction id is in
the key), so its change leaves the bucket dirty once committed.
"""

from datetime import date, datetime, time, timedelta

from sqlalchemy import exists, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db import stats
from db.engine import transaction
from db.models import Case, Referral
from dispatch.console.periods import Period
from dispatch.console.timefmt import local_zone
from dispatch.staff.scope import LIVE_REFERRAL

BATCH_DAYS = 31  # buckets (re)counted per pass: a first pass over a long history is spread out
LOCK = 0x57A7_5DA7  # pg advisory lock: one scheduler counts at a time

Span = tuple[datetime, datetime]


def bucket(day: date) -> Span:
    """A local day as the half-open span of instants it covers."""
    zone = local_zone()
    return (
        datetime.combine(day, time.min, tzinfo=zone),
        datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone),
    )


async def build(
    sessions: async_sessionmaker[AsyncSession], now: datetime, limit: int = BATCH_DAYS
) -> list[datetime]:
    """One pass (see the module); the starts of the buckets counted. Idempotent; several
    schedulers take turns (an advisory lock), the one without it does nothing."""
    async with transaction(sessions) as session:
        await session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
        # The snapshot is taken by this statement, just before the lock: a pass committing
        # in between makes this one fail (its rows are invisible and in the way of ours:
        # REPEATABLE READ refuses to replace them), never count a day twice.
        if not await session.scalar(select(func.pg_try_advisory_xact_lock(LOCK))):
            return []
        dirty = await stats.dirty_buckets(session)
        todo = sorted(dirty.items())
        first = await session.scalar(
            select(
                func.least(
                    select(func.min(Case.created_at)).scalar_subquery(),
                    select(func.min(Referral.created_at)).scalar_subquery(),
                )
            )
        )
        if first is not None:
            counted = set(await session.scalars(select(stats.stats_day.c.day_start)))
            zone = local_zone()
            oldest = first.astimezone(zone).date()
            day = now.astimezone(zone).date() - timedelta(days=1)
            while day >= oldest and len(todo) < limit:
                if (span := bucket(day))[0] not in counted:
                    todo.append(span)
                day -= timedelta(days=1)
        done = todo[:limit]
        for lo, hi in done:
            await stats.count_bucket(session, lo, hi, LIVE_REFERRAL)
        await stats.forget_touched(session, [s for s in todo[limit:] if s[0] in dirty])
        return [lo for lo, _ in done]


async def clean_buckets(session: AsyncSession, period: Period) -> list[Span]:
    """The counted buckets inside the period with nothing touched since, in order and
    never overlapping (buckets of another time zone setting are left out)."""
    d, t = stats.stats_day.c, stats.stats_touched.c
    rows = await session.execute(
        select(d.day_start, d.day_end)
        .where(
            d.day_start >= period.start,
            d.day_end <= period.end,
            ~exists().where(t.at >= d.day_start, t.at < d.day_end),
        )
        .order_by(d.day_start)
    )
    clean: list[Span] = []
    for lo, hi in rows:
        if not clean or lo >= clean[-1][1]:
            clean.append((lo, hi))
    return clean


def spans(period: Period, clean: list[Span]) -> list[Span]:
    """The period less the clean buckets (sorted, disjoint), as half-open spans."""
    out, at = [], period.start
    for lo, hi in clean:
        if lo > at:
            out.append((at, lo))
        at = max(at, hi)
    if at < period.end:
        out.append((at, period.end))
    return out
