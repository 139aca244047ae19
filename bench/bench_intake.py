"""Intake throughput of POST /api/v1/reports at concurrency 32, against a running service,
and in the same run the ceiling: plain asyncpg inserting one equivalent row per transaction.

    python bench/bench_intake.py --url http://127.0.0.1:8000 --database-url postgresql://...

The goal is at least half the ceiling with p99 under 100 ms. Load generator and service share
this machine's cores, so the figures are a floor for the service.
"""

import argparse
import asyncio
import json
import secrets
import shutil

import asyncpg
import httpx

from bench.common import (
    MemorySampler,
    Profile,
    process_on_port,
    run_load,
    run_wrk,
    summary,
    top,
)

BODY = {
    "reporter": {
        "name": "李老师",
        "unit": "东湖第一小学",
        "role": "teacher",
        "phone": "13800138000",
    },
    "situations": [4],
    "categories": ["domestic_violence"],
    "child": {"name": "王小明", "age": 9, "gender": "male", "address": "幸福里小区3栋"},
    "jurisdiction": "990102001001",
    "description": "学生身上多处淤青，称父亲酒后殴打。",
    "in_danger_now": False,
}


async def service_wrk(
    url: str, seconds: int, concurrency: int, profile: str | None = None
) -> None:
    body = json.dumps({**BODY, "description": BODY["description"] + " __N__"}, ensure_ascii=False)
    port = httpx.URL(url).port or 80
    async with MemorySampler(process_on_port(port)) as memory, Profile(port, profile):
        line = await asyncio.to_thread(
            run_wrk, f"{url}/api/v1/reports", body, concurrency=concurrency, seconds=seconds
        )
    print(f"service POST /api/v1/reports via wrk (c={concurrency}): {line}")
    print(memory.report())


async def service(url: str, total: int, concurrency: int) -> None:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    run_id = secrets.token_hex(4)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        failures = 0

        async def call(i: int) -> None:
            nonlocal failures
            body = {**BODY, "description": f"{BODY['description']} {run_id}-{i}"}
            response = await client.post("/api/v1/reports", json=body)
            failures += response.status_code != 201

        await run_load(call, min(200, total), concurrency)  # warm-up
        port = httpx.URL(url).port or 80
        async with MemorySampler(process_on_port(port)) as memory:
            elapsed, latencies = await run_load(call, total, concurrency)
        print(summary(f"service POST /api/v1/reports (c={concurrency})", elapsed, latencies))
        print(memory.report())
        if failures:
            print(f"non-201 answers: {failures}")


async def ceiling(database_url: str, total: int, concurrency: int) -> None:
    pool = await asyncpg.create_pool(database_url, min_size=concurrency, max_size=concurrency)
    async with pool.acquire() as conn:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_ceiling (id bigserial PRIMARY KEY, "
            "channel text, external_id text, receipt_code text UNIQUE, reporter jsonb, "
            "child jsonb, categories text[], description text, created_at timestamptz "
            "DEFAULT now())"
        )
    payload = json.dumps(BODY, ensure_ascii=False)

    async def call(i: int) -> None:
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO bench_ceiling (channel, external_id, receipt_code, reporter, child,"
                " categories, description) VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6, $7)",
                "webform",
                secrets.token_hex(8),
                secrets.token_hex(5),
                payload,
                payload,
                ["domestic_violence"],
                BODY["description"],
            )

    await run_load(call, min(200, total), concurrency)
    elapsed, latencies = await run_load(call, total, concurrency)
    print(summary(f"ceiling asyncpg insert+commit (c={concurrency})", elapsed, latencies))
    async with pool.acquire() as conn:
        await conn.execute("DROP TABLE bench_ceiling")
    await pool.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--total", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=10, help="wrk run length")
    parser.add_argument("--profile", help="py-spy the API during the wrk run into FILE")
    args = parser.parse_args()
    if shutil.which("wrk"):
        await service_wrk(args.url, args.seconds, args.concurrency, args.profile)
        if args.profile:
            print(top(args.profile, 60))
    else:  # a Python client: slower, so it understates the service
        await service(args.url, args.total, args.concurrency)
    await ceiling(args.database_url, args.total, args.concurrency)


if __name__ == "__main__":
    asyncio.run(main())
