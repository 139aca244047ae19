"""Supervision figures (issue 17) on a scratch database of 100,000 cases and 250,000 referrals:
the department scorecard (per office and per department, with the previous period's trend)
and a district's periodic report figures, timed as the service computes them
(p50/p95/max over repeated runs; goal p95 under 1 s), plus building the XLSX and PDF files.
Each scorecard is timed twice in one run: live (no day counted) and after the scheduler's
tally has counted the closed days (`dispatch.supervision.tally`; its time is printed).

    python -m bench.bench_supervision --admin-url postgresql://postgres@127.0.0.1:5432/test
    python -m bench.bench_supervision --keep bench_supervision   # seed once, measure again

The cases, reports and referrals are bench_console's seed (the current quarter), topped up
with cooperating referrals to 250,000; each claimed referral gets its measures (first claim
and action, on time or not, some 督办 and 挂牌督办) as the timeline trigger would write
them, and one in fifty cases a 督查 order. Times are of the service functions called
in-process on a pooled connection (no HTTP: the figures' cost is the SQL).
"""

import argparse
import asyncio
import time
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from sqlalchemy import delete

from bench.bench_console import seed
from bench.common import percentile
from bench.service import scratch_database
from db.engine import make_engine, make_sessionmaker, transaction
from db.models import Jurisdiction, scorecard_day
from dispatch.console import periods
from dispatch.console.timefmt import local_zone
from dispatch.ops import schema
from dispatch.staff.auth import Principal
from dispatch.supervision import exports, reports, tally
from dispatch.supervision.scorecard import scorecard
from workflows.supervision import parse_period

TOP_UP = """
INSERT INTO referral (case_id, department_code, office_id, jurisdiction_code, role, status,
                      claimed_at, last_activity_at, claim_due_at, action_due_at, delivered_at,
                      escalation, created_at, updated_at)
SELECT r.case_id, d.dept, o.id, o.jurisdiction_code, 'cooperating', r.status, r.claimed_at,
       r.last_activity_at, r.claim_due_at, r.action_due_at, r.delivered_at, 0, r.created_at,
       r.updated_at
  FROM referral r
  JOIN LATERAL (SELECT (ARRAY['justice','youth_league','court'])[1 + r.id % 3] AS dept) d ON true
  JOIN office o ON o.department_code = d.dept AND o.jurisdiction_code = '990100'
 WHERE r.role = 'lead' AND r.office_id IS NOT NULL
 ORDER BY r.id
 LIMIT $1
"""

MEASURES = """
INSERT INTO referral_measure (referral_id, first_claimed_at, claimed_on_time, first_acted_at,
                              acted_on_time, escalated_at, escalations, flagged_at)
SELECT id,
       created_at + (id % 300) * interval '1 minute',
       id % 300 < 240,
       CASE WHEN status IN ('in_progress', 'completed')
            THEN created_at + (id % 2000) * interval '1 minute' END,
       CASE WHEN status IN ('in_progress', 'completed') THEN id % 2000 < 1440 END,
       CASE WHEN id % 300 >= 240 THEN created_at + interval '4 hours' END,
       CASE WHEN id % 300 >= 240 THEN 1 ELSE 0 END,
       CASE WHEN id % 300 >= 290 THEN created_at + interval '8 hours' END
  FROM referral WHERE status IN ('claimed', 'in_progress', 'completed', 'returned');

INSERT INTO supervision_order (case_id, referral_id, department_code, office_id,
                               jurisdiction_code, status, reason, due_at, opened_by_label,
                               opened_at, created_at)
SELECT case_id, id, department_code, office_id, jurisdiction_code,
       (ARRAY['open', 'answered', 'lifted'])[1 + id % 3], '限时整改',
       created_at + interval '7 days',
       'bench', created_at + interval '1 day', created_at + interval '1 day'
  FROM referral WHERE role = 'lead' AND office_id IS NOT NULL AND case_id % 50 = 0
"""


async def top_up(database_url: str, referrals: int) -> dict[str, int]:
    conn = await asyncpg.connect(database_url)
    try:
        have = await conn.fetchval("SELECT count(*) FROM referral")
        if have < referrals:
            await conn.execute(TOP_UP, referrals - have)
        for statement in MEASURES.split(";\n\n"):
            await conn.execute(statement)
        # A database at rest, as autovacuum leaves one in service (it is off on the test
        # machines' server): without it the seeded tables have no visibility map, so no
        # index-only scan, and the report reads 219 MB of report rows instead of a 5 MB index.
        await conn.execute("VACUUM ANALYZE")
        return {
            table: await conn.fetchval(f"SELECT count(*) FROM {table}")  # noqa: S608
            for table in ("hcase", "referral", "referral_measure", "supervision_order")
        }
    finally:
        await conn.close()


async def timed(label: str, runs: int, work) -> tuple[list[float], object]:
    times, result = [], None
    for _ in range(runs):
        began = time.perf_counter()
        result = await work()
        times.append(time.perf_counter() - began)
    print(
        f"{label:<44} p50 {percentile(times, 50) * 1000:7.0f} ms  "
        f"p95 {percentile(times, 95) * 1000:7.0f} ms  max {max(times) * 1000:7.0f} ms"
    )
    return times, result


async def count_all(sessions, now: datetime) -> None:
    """The scheduler's tally passes until every closed day is counted."""
    began, seen = time.perf_counter(), set()
    while True:
        async with transaction(sessions) as session:
            done = set(await tally.build(session, now))
        if done <= seen:
            break
        seen |= done
    print(f"tally: {len(seen)} days counted in {time.perf_counter() - began:.1f} s")


async def measure(database_url: str, runs: int) -> None:
    engine = make_engine(database_url, pool_size=2)
    sessions = make_sessionmaker(engine)
    quarter = periods.quarter(periods.current_quarter())
    now = datetime.now(UTC)
    city = Principal(1, "bench", "supervisor", None, "990100", "990100/")
    police = Principal(2, "bench_police", "supervisor", "police", "990100", "990100/")
    district = Principal(3, "bench_district", "supervisor", None, "990102", "990100/990102/")

    # The quarter's second month, once over: its previous month is full too (the quarter's
    # previous quarter is empty in this seed).
    today = datetime.now(local_zone()).date()
    first = date(today.year, 3 * ((today.month - 1) // 3) + 2, 1)
    after = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    month = periods.days(first, after - timedelta(days=1)) if today >= after else None

    def card_of(principal, by, period=quarter):
        async def work():
            async with transaction(sessions) as session:
                return await scorecard(
                    session, principal, period.start, period.end, by=by, now=now
                )

        return work

    scopes = [
        ("city, per office", city, "office", quarter),
        ("city, per department", city, "department", quarter),
        ("police supervisor (own dept)", police, "office", quarter),
        ("district 990102, per office", district, "office", quarter),
    ]
    if month is not None:
        scopes.append((f"city, per office, {first:%Y-%m}", city, "office", month))
    card = None
    for tag in ("live", "tally"):
        if tag == "tally":
            await count_all(sessions, now)
        else:
            async with transaction(sessions) as session:
                await session.execute(delete(scorecard_day))  # no day counted: all live
        for label, principal, by, period in scopes:
            _, result = await timed(
                f"scorecard [{tag}], {label}", runs, card_of(principal, by, period)
            )
            card = card or result
    code = periods.current_quarter()

    async def report_work():
        async with transaction(sessions) as session:
            place = await session.get(Jurisdiction, "990102")
            return await reports.report_figures(session, place, parse_period(code))

    _, figures = await timed("periodic report figures, one district", runs, report_work)
    await timed(
        "scorecard XLSX build", runs, lambda: asyncio.to_thread(exports.scorecard_xlsx, card)
    )
    await timed(
        "scorecard PDF build (chart + table)",
        runs,
        lambda: asyncio.to_thread(exports.scorecard_pdf, card),
    )
    await timed(
        "report PDF build (charts)",
        runs,
        lambda: asyncio.to_thread(exports.report_pdf, None, figures, "东湖市湖东区", code),
    )
    print(f"scorecard: {len(card.items)} offices, {card.total['received']} referrals received")
    print(f"report: {figures['cases']} cases in 990102")
    await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--referrals", type=int, default=250_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument(
        "--keep",
        metavar="NAME",
        help="seed a database of this name once and keep it: later runs (same name) measure"
        " it again as it is, after migrating it to this branch's head",
    )
    args = parser.parse_args()
    if args.keep:
        url = urlunsplit(urlsplit(args.admin_url)._replace(path="/" + args.keep))
        if asyncio.run(_created(args.admin_url, args.keep)):
            _prepare(url, args.cases, args.referrals)
        else:
            schema.migrate(url)
        asyncio.run(measure(url, args.runs))
        return
    with scratch_database(args.admin_url) as url:
        _prepare(url, args.cases, args.referrals)
        asyncio.run(measure(url, args.runs))


def _prepare(url: str, cases: int, referrals: int) -> None:
    schema.migrate(url)
    began = time.perf_counter()
    asyncio.run(seed(url, cases))
    counts = asyncio.run(top_up(url, referrals))
    print(f"seeded in {time.perf_counter() - began:.0f} s: {counts}")


async def _created(admin_url: str, name: str) -> bool:
    """Create the kept database unless it exists; True when it is new (to be seeded)."""
    conn = await asyncpg.connect(admin_url)
    try:
        if await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            return False
        await conn.execute(f'CREATE DATABASE "{name}"')
        return True
    finally:
        await conn.close()


if __name__ == "__main__":
    main()
