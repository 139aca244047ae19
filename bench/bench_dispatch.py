"""Dispatch figures (issue 3), each on a scratch database:

1. latency from intake commit to the referral sitting in its office's queue, delivered by the
   intake job (relay → intake job: routing, referrals, delivery in one transaction);
2. 100 concurrent claims on one referral: exactly one 200, and the latency of the answers;
3. the escalation sweep's cost with 1,000,000 open referrals of which none is due.

    python -m bench.bench_dispatch --admin-url postgresql://postgres@127.0.0.1:5432/test \\
        --redis-url redis://127.0.0.1:6379/8
"""

import asyncio
import statistics
import time
from datetime import UTC, datetime

import asyncpg
import httpx
from redis import Redis

from bench.common import bench_parser, percentile, raw_claim
from bench.service import running_service, scratch_database
from db.engine import make_engine, make_sessionmaker, transaction
from dispatch.referrals.deadlines import sweep_referrals
from dispatch.staff.auth import hash_password

REPORT = {
    "reporter": {"role": "teacher"},
    "categories": ["domestic_violence"],
    "jurisdiction": "990102001001",
    "description": "学生称父亲酒后殴打",
}


async def _wait(conn: asyncpg.Connection, sql: str, want: int) -> None:
    deadline = time.monotonic() + 120
    while (await conn.fetchval(sql)) < want:
        if time.monotonic() > deadline:
            raise RuntimeError("dispatch did not finish in time")
        await asyncio.sleep(0.2)


async def latency(url: str, database_url: str, redis_url: str, count: int, rate: float) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        for i in range(count):
            body = {**REPORT, "description": f"{REPORT['description']} {i}"}
            assert (await client.post("/api/v1/reports", json=body)).status_code == 201
            await asyncio.sleep(1 / rate)
    conn = await asyncpg.connect(database_url)
    try:
        await _wait(conn, "SELECT count(*) FROM referral WHERE delivered_at IS NOT NULL", count * 5)
        rows = await conn.fetch(
            "SELECT r.created_at AS intake, f.delivered_at"
            " FROM report r JOIN referral f ON f.case_id = r.case_id"
        )
    finally:
        await conn.close()
    # The intake job routes and delivers in one transaction: in the office's queue is
    # delivered (there is no separate referral job any more).
    delivered = [(row["delivered_at"] - row["intake"]).total_seconds() for row in rows]
    for name, values in (("in office queue (delivered by the intake job)", delivered),):
        ms = [v * 1000 for v in values]
        print(
            f"dispatch latency, intake commit → {name} ({len(ms)} referrals, "
            f"{count} reports at {rate}/s): p50 {statistics.median(ms):.0f} ms, "
            f"p99 {percentile(ms, 99):.0f} ms, max {max(ms):.0f} ms"
        )


async def claims(url: str, database_url: str, claimers: int) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        password = hash_password("bench-password")
        await conn.executemany(
            "INSERT INTO app_user (username, password_hash, role, department_code,"
            " jurisdiction_code, active, token_version) VALUES ($1, $2, 'liaison', 'police',"
            " '990102001', true, 0)",
            [(f"bench_police_{i}", password) for i in range(claimers)],
        )
        referral = await conn.fetchval(
            "SELECT id FROM referral WHERE department_code = 'police' AND status = 'queued'"
            " ORDER BY id LIMIT 1"
        )
    finally:
        await conn.close()
    limits = httpx.Limits(max_connections=claimers)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        tokens = []
        for i in range(claimers):
            r = await client.post(
                "/api/v1/auth/token",
                data={"username": f"bench_police_{i}", "password": "bench-password"},
            )
            tokens.append(r.json()["access_token"])

    # A raw HTTP/1.1 client on open connections: httpx's own overhead at 100 concurrent
    # requests is several milliseconds each and would be measured instead of the service.
    host, port = httpx.URL(url).host, httpx.URL(url).port
    streams = [await asyncio.open_connection(host, port) for _ in tokens]

    results = await asyncio.gather(
        *(raw_claim(s, host, referral, t) for s, t in zip(streams, tokens, strict=True))
    )
    codes = [c for c, _ in results]
    ms = [t * 1000 for _, t in results]
    print(
        f"{claimers} concurrent claims: {codes.count(200)} × 200, {codes.count(409)} × 409, "
        f"other {len(codes) - codes.count(200) - codes.count(409)}; "
        f"p50 {statistics.median(ms):.0f} ms, p99 {percentile(ms, 99):.0f} ms"
    )


async def sweep(database_url: str, rows: int) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        case_id = await conn.fetchval("SELECT min(id) FROM hcase")
        start = time.perf_counter()
        await conn.execute(
            "INSERT INTO referral (case_id, department_code, role, status, escalation,"
            " next_check_at, created_at, updated_at)"
            " SELECT $1, 'civil_affairs', 'lead', 'returned', 0,"
            "        now() + interval '1 day' + g * interval '1 second', now(), now()"
            " FROM generate_series(1, $2) g",
            case_id,
            rows,
        )
        await conn.execute("ANALYZE referral")
        print(f"inserted {rows} open referrals in {time.perf_counter() - start:.1f} s")
        plan = await conn.fetch(
            "EXPLAIN ANALYZE SELECT * FROM referral WHERE next_check_at <= now()"
            " ORDER BY next_check_at LIMIT 500 FOR UPDATE SKIP LOCKED"
        )
        print("plan:", " | ".join(r[0].strip() for r in plan[:3]))
    finally:
        await conn.close()
    engine = make_engine(database_url, pool_size=1)
    sessions = make_sessionmaker(engine)
    timings = []
    for _ in range(20):
        started = time.perf_counter()
        async with transaction(sessions) as session:
            seen = await sweep_referrals(session, datetime.now(UTC))
        timings.append((time.perf_counter() - started) * 1000)
    await engine.dispose()
    print(
        f"escalation sweep over {rows} open referrals, none due (looked at {seen}): "
        f"p50 {statistics.median(timings):.1f} ms, max {max(timings):.1f} ms"
    )


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--reports", type=int, default=200)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--claimers", type=int, default=100)
    parser.add_argument("--sweep-rows", type=int, default=1_000_000)
    parser.add_argument("--api-workers", default="1", help="HOTLINE_API_WORKERS for the run")
    args = parser.parse_args()
    Redis.from_url(args.redis_url).flushdb()
    with scratch_database(args.admin_url) as database_url:
        with running_service(
            database_url, args.redis_url, HOTLINE_API_WORKERS=args.api_workers
        ) as url:
            asyncio.run(latency(url, database_url, args.redis_url, args.reports, args.rate))
            asyncio.run(claims(url, database_url, args.claimers))
        asyncio.run(sweep(database_url, args.sweep_rows))
    Redis.from_url(args.redis_url).flushdb()


if __name__ == "__main__":
    main()
