"""Intake throughput of POST /api/v1/reports at concurrency 32, against a running service,
and in the same run the ceiling: plain asyncpg inserting one equivalent row per transaction.

    python bench/bench_intake.py --url http://127.0.0.1:8000 --database-url postgresql://...

The goal is at least half the ceiling with p99 under 100 ms. Load generator and service share
this machine's cores, so the figures are a floor for the service.

    python bench/bench_intake.py --compare-limits --database-url postgresql://... \
        --redis-url redis://...

measures instead the cost of public intake's abuse control, in one process and one run: two
apps on the same database and Redis, one with the shipped limits and burst holds, one with
both off, and one with only the holds on (the limits' own share is on minus hold), taking
turns (rounds alternate, so drift hits all), each report from an address and with a text of
its own (the limits are counted, never met). Prints each mode's median throughput and the
ratio on/off. In-process (httpx's ASGI transport), so the figures are
the app's own, without uvicorn.
"""

import argparse
import asyncio
import contextlib
import json
import secrets
import shutil
import statistics
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx

from bench.common import (
    LIMITS_OFF,
    MemorySampler,
    Profile,
    process_on_port,
    run_load,
    run_wrk,
    summary,
    top,
)
from tests.fixtures.reports import REPORT as BODY


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


@contextlib.asynccontextmanager
async def _in_process(
    database_url: str, redis_url: str, data_dir: Path, **changes: object
) -> AsyncIterator[list[httpx.AsyncClient]]:
    """An app (shipped settings with `changes`) and 4096 clients, each its own address (a
    random /16 per run, so reruns within the hour do not meet the hourly limit)."""
    from db.settings import Settings
    from dispatch.app import create_app

    settings = Settings(
        hotline_data_dir=data_dir, database_url=database_url, redis_url=redis_url, **changes
    )
    app = create_app(settings, database_url=database_url, redis_url=redis_url)
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(app.router.lifespan_context(app))
        clients, net = [], secrets.randbelow(250)
        for n in range(4096):
            ip = f"10.{net}.{n // 250}.{n % 250 + 1}"
            transport = httpx.ASGITransport(app=app, client=(ip, 1))
            clients.append(await stack.enter_async_context(
                httpx.AsyncClient(transport=transport, base_url="http://bench")
            ))
        yield clients


async def compare_limits(
    database_url: str, redis_url: str, total: int, concurrency: int, rounds: int
) -> None:
    from dispatch.ops import schema

    await asyncio.to_thread(schema.migrate, database_url)
    run_id = secrets.token_hex(4)
    rates: dict[str, list[float]] = {"off": [], "hold": [], "on": []}
    hold_only = {**LIMITS_OFF, "hotline_intake_hold_seconds": 3600}
    failures = 0
    with tempfile.TemporaryDirectory() as data_dir:
        async with (
            _in_process(database_url, redis_url, Path(data_dir)) as on,
            _in_process(database_url, redis_url, Path(data_dir), **LIMITS_OFF) as off,
            _in_process(database_url, redis_url, Path(data_dir), **hold_only) as hold,
        ):
            for round_no in range(rounds + 1):  # round 0 warms all up
                for mode, clients in (("off", off), ("hold", hold), ("on", on)):

                    async def call(
                        i: int, mode: str = mode, clients: list = clients, r: int = round_no
                    ) -> None:
                        nonlocal failures
                        text = f"{BODY['description']} {run_id}-{mode}{r}-{i}"
                        answer = await clients[i % len(clients)].post(
                            "/api/v1/reports", json={**BODY, "description": text}
                        )
                        failures += answer.status_code != 201

                    count = total if round_no else min(200, total)
                    elapsed, latencies = await run_load(call, count, concurrency)
                    if round_no:
                        rates[mode].append(count / elapsed)
                        print(summary(f"round {round_no} {mode:4}", elapsed, latencies))
    off_rate, on_rate = statistics.median(rates["off"]), statistics.median(rates["on"])
    hold_rate = statistics.median(rates["hold"])
    print(
        f"intake in-process (c={concurrency}), median of {rounds} rounds: limits and holds off "
        f"{off_rate:.0f}/s, holds only {hold_rate:.0f}/s, both on {on_rate:.0f}/s; "
        f"ratio on/off {on_rate / off_rate:.3f} ({(1 - on_rate / off_rate) * 100:.1f} % cost)"
    )
    if failures:
        print(f"non-201 answers: {failures}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--total", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=10, help="wrk run length")
    parser.add_argument("--profile", help="py-spy the API during the wrk run into FILE")
    parser.add_argument(
        "--compare-limits", action="store_true",
        help="in-process: intake with the abuse limits and holds on vs off, same run",
    )
    parser.add_argument("--redis-url", help="for --compare-limits")
    parser.add_argument("--rounds", type=int, default=3, help="for --compare-limits")
    args = parser.parse_args()
    if args.compare_limits:
        if not args.redis_url:
            parser.error("--compare-limits needs --redis-url")
        await compare_limits(
            args.database_url, args.redis_url, args.total, args.concurrency, args.rounds
        )
        return
    if shutil.which("wrk"):
        await service_wrk(args.url, args.seconds, args.concurrency, args.profile)
        if args.profile:
            print(top(args.profile, 60))
    else:  # a Python client: slower, so it understates the service
        await service(args.url, args.total, args.concurrency)
    await ceiling(args.database_url, args.total, args.concurrency)


if __name__ == "__main__":
    asyncio.run(main())
