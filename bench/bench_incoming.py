"""The operators' incoming list, most urgent first (issue 10), on a scratch database of
100,000 cases of which a share still waits in 发现 with a predicted risk: the query's time
(p50/p95/max, in process, no HTTP) for the city center's operator, who sees everything.

    python -m bench.bench_incoming --admin-url postgresql://postgres@127.0.0.1:5432/test

The cases are bench_console's seed; then `--waiting` of them (default 10 %) are put back in
发现 with a predicted risk and some marked non-cases, as a backlog the list must order.
"""

import argparse
import asyncio
import time

import asyncpg

from bench.bench_console import seed
from bench.common import percentile
from bench.service import scratch_database
from db.engine import make_engine, make_sessionmaker
from dispatch.console.incoming import incoming_reports
from dispatch.ops import schema
from dispatch.staff.auth import Principal

BACKLOG_SQL = """
UPDATE hcase SET state = 'discovered',
       predicted_risk = (ARRAY['red','orange','yellow','yellow','blue'])[1 + id % 5],
       not_a_case = CASE WHEN id % 17 = 0 THEN 'consultation' END
 WHERE id % $1::int = 0
"""


async def measure(database_url: str, every: int, runs: int) -> list[float]:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(BACKLOG_SQL, every)
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    engine = make_engine(database_url, pool_size=2)
    sessions = make_sessionmaker(engine)
    operator = Principal(1, "bench_operator", "operator", None, "990100", "990100/")
    times = []
    try:
        for _ in range(runs):
            async with sessions() as session, session.begin():
                started = time.perf_counter()
                rows = await incoming_reports(session, operator)
                times.append((time.perf_counter() - started) * 1000)
        assert rows, "the list is empty"
    finally:
        await engine.dispose()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--admin-url", required=True)
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--waiting", type=float, default=0.10, help="share of cases in 发现")
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()
    with scratch_database(args.admin_url) as database_url:
        schema.migrate(database_url)
        counts = asyncio.run(seed(database_url, args.cases))
        every = max(1, round(1 / args.waiting))
        times = asyncio.run(measure(database_url, every, args.runs))
    print(f"seeded {counts['hcase']} cases, {counts['hcase'] // every} waiting in 发现")
    print(
        f"incoming list query: p50 {percentile(times, 50):.1f} ms, "
        f"p95 {percentile(times, 95):.1f} ms, max {max(times):.1f} ms ({args.runs} runs)"
    )


if __name__ == "__main__":
    main()
