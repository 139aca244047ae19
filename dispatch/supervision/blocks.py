"""Blocks: the scorecard's tally of a local month's closed UTC days, its minutes in buckets.

A quarter's figures are medians and 90th percentiles of ~380,000 minutes; the day tally
keeps them exact per day and place, a few a row, so reading them meant unnesting them all.
A block is the UTC days wholly inside one local month (a scorecard's periods run from
local midnight, so a month or a quarter covers its blocks whole). Once every day of a block
is counted, the scheduler's pass sums its day rows' counts (`scorecard_block_tally`, a
quarter is a few thousand rows, not ~18,000) and copies their minutes, per department ×
office × the two places × what (claim, action) × bucket (`BOUNDS`): the bucket's count and
its exact minutes (distinct, and how many of each). The scorecard adds up the counts, finds
the buckets holding each median and 90th percentile, and reads the exact minutes of those
buckets only (`exact`).

A day counted again drops its block (`drop`); the pass builds it again. The reader uses a
block only while every one of its days is clean, under the tally's shared lock, so no pass
changes a block between its two reads.
"""

from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from functools import cache

from sqlalchemy import (
    Integer,
    String,
    and_,
    bindparam,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import TALLY_COUNTS, scorecard_block, scorecard_minutes
from dispatch.console.timefmt import local_zone
from dispatch.staff.auth import Principal
from dispatch.staff.scope import tallied_referral_filter

BLOCKS_PER_PASS = 6


def _bounds(exact: int = 16, ratio: float = 1.08, top: int = 400_000) -> tuple[int, ...]:
    """Bucket edges: a bucket per minute below `exact`, then each `ratio` times wider."""
    edges, at = list(range(1, exact + 1)), float(exact)
    while at < top:
        at *= ratio
        if int(at) > edges[-1]:
            edges.append(int(at))
    return tuple(edges)


BOUNDS = _bounds()
BOUNDS_KEY = ",".join(map(str, BOUNDS))  # a block built with other edges is built again


@cache
def bucket(minute: int) -> int:
    """PostgreSQL's width_bucket(minute, BOUNDS): how many edges are at or below it."""
    return bisect_right(BOUNDS, minute)


def span(month: date) -> tuple[date, date]:
    """The block of a local month: its whole UTC days, [first, after)."""
    zone = local_zone()
    nxt = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    start = datetime.combine(month, time.min, tzinfo=zone).astimezone(UTC)
    end = datetime.combine(nxt, time.min, tzinfo=zone).astimezone(UTC)
    first = start.date() + timedelta(days=0 if start.time() == time.min else 1)
    return first, end.date()


def _months(first: date, last: date) -> Iterable[date]:
    """The local months whose blocks may lie in [first, last] (UTC days)."""
    month = date(first.year, first.month, 1) - timedelta(days=1)
    month = date(month.year, month.month, 1)
    while month <= last:
        yield month
        month = date(month.year + month.month // 12, month.month % 12 + 1, 1)


def _days(first: date, after: date) -> Iterable[date]:
    return (first + timedelta(days=n) for n in range((after - first).days))


async def drop(session: AsyncSession, day: date) -> None:
    """The block holding a day being counted again is no more (its minutes go with it)."""
    await session.execute(
        delete(scorecard_block).where(
            scorecard_block.c.first_day <= day, scorecard_block.c.after_day > day
        )
    )


_KEYS = "department_code, office_id, jurisdiction_code, case_jurisdiction, status, return_reason"
_COUNTS = text(
    f"""
    INSERT INTO scorecard_block_tally (block, {_KEYS}, {", ".join(TALLY_COUNTS)})
    SELECT :first, {_KEYS}, {", ".join(f"sum({name})" for name in TALLY_COUNTS)}
      FROM scorecard_tally
     WHERE day >= :first AND day < :after
     GROUP BY {_KEYS}
    """  # noqa: S608 (names from this module and db.supervision, no input)
)
_BUILD = text(
    """
    INSERT INTO scorecard_minutes (block, department_code, office_id, jurisdiction_code,
                                   case_jurisdiction, what, bucket, n, minutes, counts)
    SELECT :first, department_code, office_id, jurisdiction_code, case_jurisdiction, what,
           width_bucket(minute, :bounds), sum(n), array_agg(minute ORDER BY minute),
           array_agg(n ORDER BY minute)
      FROM (SELECT t.department_code, t.office_id, t.jurisdiction_code, t.case_jurisdiction,
                   u.what, u.minute, count(*) AS n
              FROM scorecard_tally t
             CROSS JOIN LATERAL (SELECT 'claim', m FROM unnest(t.claim_minutes) m
                                 UNION ALL
                                 SELECT 'action', m FROM unnest(t.act_minutes) m) u(what, minute)
             WHERE t.day >= :first AND t.day < :after
             GROUP BY 1, 2, 3, 4, 5, 6) each_minute
     GROUP BY 1, 2, 3, 4, 5, 6, 7
    """
).bindparams(bindparam("bounds", type_=ARRAY(Integer)))


async def build(
    session: AsyncSession, today: date, counted: set[date], limit: int = BLOCKS_PER_PASS
) -> list[date]:
    """Build the blocks whose days are all counted and closed, not built yet (or built with
    other edges), at most `limit`: their minutes copied from the day tally."""
    if not counted:
        return []
    b = scorecard_block.c
    built = dict((await session.execute(select(b.first_day, b.bounds))).all())
    done = []
    for month in _months(min(counted), today):
        first, after = span(month)
        if len(done) >= limit or after > today or built.get(first) == BOUNDS_KEY:
            continue
        if not all(day in counted for day in _days(first, after)):
            continue
        await session.execute(delete(scorecard_block).where(scorecard_block.c.first_day == first))
        await session.execute(
            insert(scorecard_block).values(
                first_day=first, after_day=after, built_at=func.now(), bounds=BOUNDS_KEY
            )
        )
        await session.execute(_COUNTS, {"first": first, "after": after})
        await session.execute(_BUILD, {"first": first, "after": after, "bounds": list(BOUNDS)})
        done.append(first)
    if done:  # the planner's row counts: a hash aggregate over the blocks, not a sort
        await session.execute(text("ANALYZE scorecard_block_tally, scorecard_minutes"))
    return done


async def usable(
    session: AsyncSession, first: date, after: date, clean: set[date]
) -> list[tuple[date, date]]:
    """The built blocks inside the whole days [first, after) whose days are all clean."""
    stmt = select(scorecard_block.c.first_day, scorecard_block.c.after_day).where(
        scorecard_block.c.first_day >= first,
        scorecard_block.c.after_day <= after,
        scorecard_block.c.bounds == BOUNDS_KEY,
    )
    return [
        (lo, hi)
        for lo, hi in await session.execute(stmt)
        if all(day in clean for day in _days(lo, hi))
    ]


def _scope(principal: Principal):
    m = scorecard_minutes.c
    return tallied_referral_filter(
        principal, m.department_code, m.jurisdiction_code, m.case_jurisdiction
    )


def bucket_counts(principal: Principal, blocks: list[date]):
    """Per department × office × what × bucket, how many minutes the blocks hold."""
    m = scorecard_minutes.c
    keys = (m.department_code, m.office_id, m.what, m.bucket)
    return (
        select(*keys, func.sum(m.n).label("n"))
        .where(m.block.in_(blocks), _scope(principal))
        .group_by(*keys)
    )


Need = tuple[tuple[str | None, int | None], str, int]  # (department, office) key, what, bucket


async def exact(
    session: AsyncSession, principal: Principal, blocks: list[date], needs: set[Need]
) -> defaultdict[Need, Counter[int]]:
    """The exact minutes of the blocks' buckets asked for, per key as the scorecard sums
    them: an office's, a department's (office None), the whole scope's (both None)."""
    m = scorecard_minutes.c
    asked = list(needs)
    found: defaultdict[Need, Counter[int]] = defaultdict(Counter)
    if not asked:
        return found
    # The needs as one relation from five array parameters (a VALUES list would be five
    # bound parameters a need): NULL department and office for the whole scope, NULL
    # office for a department.
    columns = {
        "i": (list(range(len(asked))), Integer),
        "d": ([d for (d, _), _, _ in asked], String),
        "o": ([o for (_, o), _, _ in asked], Integer),
        "w": ([w for _, w, _ in asked], String),
        "b": ([b for _, _, b in asked], Integer),
    }
    v = (
        func.unnest(*(literal(data, ARRAY(kind)) for data, kind in columns.values()))
        .table_valued(*columns)
        .render_derived()
    )
    pair = func.unnest(m.minutes, m.counts).table_valued("minute", "n").render_derived()
    pair = pair.lateral()
    on = and_(
        m.what == v.c.w,
        m.bucket == v.c.b,
        or_(v.c.d.is_(None), m.department_code == v.c.d),
        or_(v.c.o.is_(None), m.office_id == v.c.o),
    )
    # Grouped by integers (the need's number, the minute): no text compared per value.
    stmt = (
        select(v.c.i, pair.c.minute, func.sum(pair.c.n))
        .select_from(v)
        .join(scorecard_minutes, on)
        .join(pair, true())
        .where(m.block.in_(blocks), _scope(principal))
        .group_by(v.c.i, pair.c.minute)
    )
    for i, value, n in await session.execute(stmt):
        found[asked[i]][value] = int(n)
    return found
