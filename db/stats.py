"""Tables of the statistics page's tally (migration 0038) and the SQL that (re)counts one
bucket (a closed local day) of it.

`stats_case_tally` holds, per bucket, the cases created in it once for the center (viewer
'') and once per department with a live referral on the case (viewer: the department,
`places`: those referrals' places, sorted, without NULL): per place × risk level (kind
'case'), per place × category ('category') and per place × channel ('channel', a case once
per channel). `stats_referral_tally` holds the referrals created in the bucket per
department × status × the referral's place × the case's place. `stats_touched` is written by
triggers only (see the migration): instants whose bucket a change made dirty.
"""

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel

__all__ = ["stats_case_tally", "stats_day", "stats_referral_tally", "stats_touched"]

stats_day = sa.Table(
    "stats_day",
    SQLModel.metadata,
    sa.Column("day_start", sa.DateTime(timezone=True), primary_key=True),
    sa.Column("day_end", sa.DateTime(timezone=True), nullable=False),
    sa.Column("counted_at", sa.DateTime(timezone=True), nullable=False),
)
stats_case_tally = sa.Table(
    "stats_case_tally",
    SQLModel.metadata,
    sa.Column("day_start", sa.DateTime(timezone=True), nullable=False),
    sa.Column("viewer", sa.String(40), nullable=False),  # '' the center, else a department
    sa.Column("places", ARRAY(sa.String)),  # the department's live referrals' places
    sa.Column("jurisdiction_code", sa.String),  # the case's
    sa.Column("risk_level", sa.String(10)),  # kind 'case' only
    sa.Column("kind", sa.String(8), nullable=False),  # case, category, channel
    sa.Column("key", sa.String),  # the category or the channel
    sa.Column("n", sa.Integer, nullable=False),
)
stats_referral_tally = sa.Table(
    "stats_referral_tally",
    SQLModel.metadata,
    sa.Column("day_start", sa.DateTime(timezone=True), nullable=False),
    sa.Column("department_code", sa.String, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("jurisdiction_code", sa.String),  # the referral's (its office's)
    sa.Column("case_jurisdiction", sa.String),  # the case's
    sa.Column("n", sa.Integer, nullable=False),
)
stats_touched = sa.Table(
    "stats_touched",
    SQLModel.metadata,
    sa.Column("at", sa.DateTime(timezone=True), primary_key=True),
    sa.Column("xid", sa.BigInteger, primary_key=True),
)

_COUNT_CASES = text("""
WITH c AS MATERIALIZED (
    SELECT id, jurisdiction_code, risk_level, categories FROM hcase
     WHERE created_at >= CAST(:lo AS timestamptz) AND created_at < CAST(:hi AS timestamptz)
), views AS MATERIALIZED (
    SELECT id AS case_id, CAST('' AS varchar) AS viewer, CAST(NULL AS varchar[]) AS places
      FROM c
    UNION ALL
    SELECT r.case_id, r.department_code,
           array_agg(DISTINCT r.jurisdiction_code ORDER BY r.jurisdiction_code)
               FILTER (WHERE r.jurisdiction_code IS NOT NULL)
      FROM referral r JOIN c ON c.id = r.case_id
     WHERE r.status = ANY(CAST(:live AS varchar[]))
     GROUP BY r.case_id, r.department_code
    HAVING count(r.jurisdiction_code) > 0
), seen AS MATERIALIZED (
    SELECT v.viewer, v.places, c.id, c.jurisdiction_code, c.risk_level, c.categories
      FROM views v JOIN c ON c.id = v.case_id
), channels AS (
    SELECT DISTINCT r.case_id, r.channel FROM report r JOIN c ON c.id = r.case_id
)
INSERT INTO stats_case_tally (day_start, viewer, places, jurisdiction_code, risk_level,
                              kind, key, n)
SELECT CAST(:lo AS timestamptz), viewer, places, jurisdiction_code, risk_level, 'case', NULL,
       count(*)
  FROM seen GROUP BY viewer, places, jurisdiction_code, risk_level
UNION ALL
SELECT CAST(:lo AS timestamptz), viewer, places, jurisdiction_code, NULL, 'category',
       category, count(*)
  FROM seen CROSS JOIN LATERAL unnest(seen.categories) AS category
 GROUP BY viewer, places, jurisdiction_code, category
UNION ALL
SELECT CAST(:lo AS timestamptz), s.viewer, s.places, s.jurisdiction_code, NULL, 'channel',
       p.channel, count(*)
  FROM seen s JOIN channels p ON p.case_id = s.id
 GROUP BY s.viewer, s.places, s.jurisdiction_code, p.channel
""")

_COUNT_REFERRALS = text("""
INSERT INTO stats_referral_tally (day_start, department_code, status, jurisdiction_code,
                                  case_jurisdiction, n)
SELECT CAST(:lo AS timestamptz), r.department_code, r.status, r.jurisdiction_code,
       c.jurisdiction_code, count(*)
  FROM referral r JOIN hcase c ON c.id = r.case_id
 WHERE r.created_at >= CAST(:lo AS timestamptz) AND r.created_at < CAST(:hi AS timestamptz)
 GROUP BY r.department_code, r.status, r.jurisdiction_code, c.jurisdiction_code
""")


async def count_bucket(
    session: AsyncSession, lo: datetime, hi: datetime, live_statuses: Sequence[str]
) -> None:
    """Replace the bucket [lo, hi)'s rows with a fresh count. `live_statuses`: the
    referral statuses through which a department sees a case (dispatch.staff.scope)."""
    await session.execute(sa.delete(stats_case_tally).where(stats_case_tally.c.day_start == lo))
    await session.execute(
        sa.delete(stats_referral_tally).where(stats_referral_tally.c.day_start == lo)
    )
    await session.execute(_COUNT_CASES, {"lo": lo, "hi": hi, "live": list(live_statuses)})
    await session.execute(_COUNT_REFERRALS, {"lo": lo, "hi": hi})
    upsert = (
        pg_insert(stats_day)
        .values(day_start=lo, day_end=hi, counted_at=sa.func.now())
        .on_conflict_do_update(
            index_elements=["day_start"], set_={"day_end": hi, "counted_at": sa.func.now()}
        )
    )
    await session.execute(upsert)


async def dirty_buckets(session: AsyncSession) -> dict[datetime, datetime]:
    """Counted buckets with a touched instant inside: start -> end."""
    d, t = stats_day.c, stats_touched.c
    touched = sa.exists().where(t.at >= d.day_start, t.at < d.day_end)
    return dict((await session.execute(sa.select(d.day_start, d.day_end).where(touched))).all())


async def forget_touched(session: AsyncSession, kept: Sequence[tuple[datetime, datetime]]) -> None:
    """Drop the touched instants this snapshot sees, but those inside `kept` (buckets still
    dirty, not counted again in this pass). An instant outside any counted bucket matters
    to none: a bucket counted later is counted afresh."""
    at = stats_touched.c.at
    stmt = sa.delete(stats_touched)
    if kept:
        stmt = stmt.where(~sa.or_(*(sa.and_(at >= lo, at < hi) for lo, hi in kept)))
    await session.execute(stmt)
