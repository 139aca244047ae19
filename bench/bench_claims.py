"""Claim races (issue 16): rounds of N concurrent claims of one referral against a whole
service (`hotline up`) on a scratch database; exactly one 200 per round, and the latency
of all answers (p50/p99 over every round).

    python -m bench.bench_claims --admin-url postgresql://postgres@127.0.0.1:5432/test \\
        --redis-url redis://127.0.0.1:6379

Every claimant is a different liaison, signed in just before the race (as a shift starts):
each first request of a token is the one measured. The HTTP client is a raw HTTP/1.1 writer
on connections opened in advance, so the client's own overhead is not what is measured.
"""

import asyncio
import statistics

import asyncpg
import httpx

from bench.bench_dispatch import REPORT, _wait
from bench.common import Profile, bench_parser, percentile, process_on_port, raw_claim, top
from bench.service import redis_database, running_service, scratch_database
from dispatch.staff.auth import hash_password


async def seed(url: str, database_url: str, rounds: int, claimers: int) -> list[int]:
    """`rounds` police referrals sitting in their queue, and the liaisons to race for them."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        for i in range(rounds):
            body = {**REPORT, "description": f"{REPORT['description']} claims {i}"}
            assert (await client.post("/api/v1/reports", json=body)).status_code == 201
    conn = await asyncpg.connect(database_url)
    try:
        sql = (
            "SELECT count(*) FROM referral WHERE department_code = 'police'"
            " AND status = 'queued' AND delivered_at IS NOT NULL"
        )
        await _wait(conn, sql, rounds)
        password = hash_password("bench-password")
        await conn.executemany(
            "INSERT INTO app_user (username, password_hash, role, department_code,"
            " jurisdiction_code, active, token_version) VALUES ($1, $2, 'liaison', 'police',"
            " '990102001', true, 0)",
            [(f"bench_police_{r}_{i}", password) for r in range(rounds) for i in range(claimers)],
        )
        return [
            row["id"]
            for row in await conn.fetch(
                "SELECT id FROM referral WHERE department_code = 'police' AND status = 'queued'"
                " ORDER BY id LIMIT $1",
                rounds,
            )
        ]
    finally:
        await conn.close()


async def race(
    url: str, referral: int, users: list[str], profile: str | None
) -> tuple[list[int], list[float], list[float]]:
    limits = httpx.Limits(max_connections=len(users))
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        tokens = []
        for user in users:
            r = await client.post(
                "/api/v1/auth/token", data={"username": user, "password": "bench-password"}
            )
            tokens.append(r.json()["access_token"])
    host, port = httpx.URL(url).host, httpx.URL(url).port
    streams = [await asyncio.open_connection(host, port) for _ in tokens]

    api = process_on_port(port)
    cpu_before = sum(api.cpu_times()[:2]) if api else 0.0
    async with Profile(port, profile):
        results = await asyncio.gather(
            *(raw_claim(s, host, referral, t) for s, t in zip(streams, tokens, strict=True))
        )
    cpu = (sum(api.cpu_times()[:2]) - cpu_before) * 1000 / len(tokens) if api else float("nan")
    print(f"  API process CPU per claim in the race: {cpu:.2f} ms (user + system)")
    # The same claims again one at a time (all 409 now): what one answer costs the service.
    serial = [
        await raw_claim(await asyncio.open_connection(host, port), host, referral, t)
        for t in tokens[:20]
    ]
    return [c for c, _ in results], [t * 1000 for _, t in results], [t * 1000 for _, t in serial]


async def run(url: str, database_url: str, rounds: int, claimers: int, profile: str | None) -> None:
    referrals = await seed(url, database_url, rounds, claimers)
    all_ms: list[float] = []
    for r, referral in enumerate(referrals):
        users = [f"bench_police_{r}_{i}" for i in range(claimers)]
        codes, ms, serial = await race(url, referral, users, profile and f"{profile}.{r}")
        all_ms += ms
        print(
            f"round {r + 1}: {codes.count(200)} × 200, {codes.count(409)} × 409, other "
            f"{len(codes) - codes.count(200) - codes.count(409)}; "
            f"p50 {statistics.median(ms):.0f} ms, p99 {percentile(ms, 99):.0f} ms; one at a time"
            f" afterwards: p50 {statistics.median(serial):.1f} ms"
        )
        await asyncio.sleep(0.5)
    print(
        f"{claimers} concurrent claims × {rounds} rounds: p50 {statistics.median(all_ms):.1f} ms,"
        f" p99 {percentile(all_ms, 99):.1f} ms, max {max(all_ms):.1f} ms"
    )
    if profile:
        print(top(f"{profile}.0"))


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--claimers", type=int, default=100)
    parser.add_argument("--profile", help="py-spy the API during each round into FILE.N")
    parser.add_argument("--api-workers", default="1", help="HOTLINE_API_WORKERS for the run")
    args = parser.parse_args()
    with redis_database(args.redis_url) as redis_url, scratch_database(args.admin_url) as db:
        with running_service(db, redis_url, HOTLINE_API_WORKERS=args.api_workers) as url:
            asyncio.run(run(url, db, args.rounds, args.claimers, args.profile))


if __name__ == "__main__":
    main()
