"""Partner forwards (issue 5), on a scratch database with a whole service (`hotline up`):

1. signed forward intake, POST /api/v1/forwards/12345 at concurrency 32 with wrk (every
   request a new work order, pre-signed), beside the same ceiling as the web form's bench
   (plain asyncpg, one row per transaction);
2. callback delivery: N status messages owed to one partner, delivered by the service's
   worker in order to a local receiver; messages per second from wake-up to the last one
   taken.

    python -m bench.bench_forwards --admin-url postgresql://postgres@127.0.0.1:5432/test \\
        --redis-url redis://127.0.0.1:6379
"""

import argparse
import asyncio
import json
import os
import secrets
import shutil
import tempfile
import time
from datetime import UTC, datetime

import asyncpg
import httpx
from starlette.requests import Request
from starlette.responses import Response

from bench.bench_intake import BODY, ceiling
from bench.common import MemorySampler, process_on_port, run_wrk, wrk_post
from bench.service import (
    CallbackServer,
    redis_database,
    running_service,
    scratch_database,
)
from channels.partners.secrets import seal
from channels.partners.signature import sign
from dispatch.ops.simulate import work_order

SECRET = "bench-partner-secret-" + secrets.token_hex(8)


def signed_file(count: int) -> str:
    """`count` distinct work orders, signed now (the bench runs well inside 300 s)."""
    import random

    rng = random.Random(1)
    run = secrets.token_hex(3)
    ts = int(time.time())
    with tempfile.NamedTemporaryFile("w", suffix=".tsv", delete=False) as fh:
        for i in range(count):
            body = json.dumps(work_order("12345", f"B-{run}-{i}", rng), ensure_ascii=False)
            fh.write(f"{ts}\t{sign(SECRET, ts, body.encode())}\t{body}\n")
    return fh.name


async def add_partner(database_url: str, key: str, callback_url: str | None) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchval(
            "INSERT INTO partner (source, name, secret_box, callback_url) VALUES"
            " ('12345', '12345', $1, $2) ON CONFLICT (source) DO UPDATE SET"
            " secret_box = EXCLUDED.secret_box, callback_url = EXCLUDED.callback_url"
            " RETURNING id",
            seal(key, SECRET),
            callback_url,
        )
    finally:
        await conn.close()


class Receiver(CallbackServer):
    """The partner's endpoint, as fast as we can make it: counts and answers 200."""

    def __init__(self) -> None:
        self.count = 0

        async def take(request: Request) -> Response:
            await request.body()
            self.count += 1
            return Response(status_code=200)

        super().__init__(take)


async def delivery(database_url: str, key: str, messages: int) -> None:
    with Receiver() as receiver:
        partner_id = await add_partner(database_url, key, f"http://127.0.0.1:{receiver.port}/cb")
        conn = await asyncpg.connect(database_url)
        try:
            reports = await conn.fetch(
                "SELECT id, case_id FROM report WHERE channel = '12345' ORDER BY id LIMIT $1",
                messages,
            )
            await conn.execute("DELETE FROM partner_message")
            body = json.dumps({"status": "accepted", "message": "已受理"}, ensure_ascii=False)
            await conn.executemany(
                "INSERT INTO partner_message (partner_id, report_id, case_id, status, body)"
                " VALUES ($1, $2, $3, 'bench', $4::jsonb)",
                [(partner_id, r["id"], r["case_id"], body) for r in reports],
            )
            started = time.perf_counter()
            await conn.execute(
                "INSERT INTO outbox (topic, payload, attempts)"
                " VALUES ('partner.deliver', $1::jsonb, 0)",
                json.dumps({"partner_id": partner_id}),
            )
            deadline = time.monotonic() + 600
            while await conn.fetchval(
                "SELECT count(*) FROM partner_message WHERE delivered_at IS NULL"
                " AND status = 'bench'"
            ):
                if time.monotonic() > deadline:
                    raise RuntimeError("delivery did not finish in 600 s")
                await asyncio.sleep(0.05)
            elapsed = time.perf_counter() - started
            tries = await conn.fetch(
                "SELECT coalesce(error, 'ok') AS outcome, count(*), avg(duration_ms)::int AS ms"
                " FROM partner_attempt a JOIN partner_message m ON m.id = a.message_id"
                " WHERE m.status = 'bench' GROUP BY 1 ORDER BY 1"
            )
            span = await conn.fetchval(
                "SELECT extract(epoch FROM max(delivered_at) - min(delivered_at))"
                " FROM partner_message WHERE status = 'bench'"
            )
        finally:
            await conn.close()
    n = len(reports)
    print(
        f"callback delivery, one partner, in order: {n} messages in {elapsed:.2f} s"
        f" from wake-up = {n / elapsed:.0f}/s (first→last taken {float(span):.2f} s ="
        f" {n / max(float(span), 1e-9):.0f}/s); receiver saw {receiver.count}"
    )
    print(
        "attempts: " + ", ".join(f"{t['outcome']} {t['count']} (avg {t['ms']} ms)" for t in tries)
    )


async def seed_reports(database_url: str, count: int) -> None:
    """`count` 12345 work orders written by SQL, for `--delivery-only` runs."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "WITH c AS (INSERT INTO hcase (state, categories, emergency, mandatory,"
            " jurisdiction_code, created_at, updated_at) SELECT 'reported', '{other}', false,"
            " false, '990102001001', now(), now() FROM generate_series(1, $1) RETURNING id)"
            " INSERT INTO report (channel, external_id, receipt_code, case_id, situations,"
            " categories, jurisdiction_code, description, in_danger_now, fingerprint,"
            " created_at) SELECT '12345', 'D-' || id,"
            " 'D' || lpad((id % 10000000000)::text, 10, '0'), id,"
            " '{}', '{other}', '990102001001', '工单' || id, false, md5('d' || id), now()"
            " FROM c",
            count,
        )
    finally:
        await conn.close()


def settle(database_url: str, redis_url: str) -> None:
    """Wait until the worker has done what the last load left (intake jobs, routing,
    notifications), so the next figure is not measured against its backlog."""
    from redis import Redis
    from rq import Queue

    async def pending() -> int:
        conn = await asyncpg.connect(database_url)
        try:
            return await conn.fetchval("SELECT count(*) FROM outbox WHERE relayed_at IS NULL")
        finally:
            await conn.close()

    redis = Redis.from_url(redis_url)
    started = time.monotonic()
    while asyncio.run(pending()) or any(q.count for q in Queue.all(connection=redis)):
        if time.monotonic() - started > 900:
            raise RuntimeError("the worker did not catch up in 15 minutes")
        time.sleep(0.5)
    print(f"(worker backlog done after {time.monotonic() - started:.0f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--admin-url", required=True, help="a PostgreSQL URL allowed to CREATE DATABASE"
    )
    parser.add_argument("--redis-url", required=True, help="the server (a free db is claimed)")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--orders", type=int, default=60000, help="pre-signed work orders")
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--api-workers", default="1")
    parser.add_argument(
        "--delivery-only",
        action="store_true",
        help="only the callback delivery figure, on work orders written by SQL",
    )
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed (apt-get install wrk)")
    key = secrets.token_hex(16)
    with scratch_database(args.admin_url) as database_url, redis_database(args.redis_url) as redis:
        env = {"HOTLINE_SECRET_KEY": key, "HOTLINE_API_WORKERS": args.api_workers}
        if args.delivery_only:
            with running_service(database_url, redis, **env):
                asyncio.run(seed_reports(database_url, args.messages))
                asyncio.run(delivery(database_url, key, args.messages))
            return
        with running_service(database_url, redis, **env) as url:
            asyncio.run(add_partner(database_url, key, None))
            path = signed_file(args.orders)
            try:
                with open(path) as fh:
                    ts, signature, body = fh.readline().rstrip("\n").split("\t", 2)
                probe = httpx.post(
                    f"{url}/api/v1/forwards/12345",
                    content=body.encode(),
                    headers={
                        "content-type": "application/json",
                        "X-Hotline-Timestamp": ts,
                        "X-Hotline-Signature": signature,
                    },
                )
                assert probe.status_code == 202, probe.text
                port = httpx.URL(url).port

                async def measured() -> str:
                    async with MemorySampler(process_on_port(port)) as memory:
                        line = await asyncio.to_thread(
                            wrk_post,
                            f"{url}/api/v1/forwards/12345",
                            "post_signed.lua",
                            {"SIGNED_FILE": path},
                            concurrency=args.concurrency,
                            seconds=args.seconds,
                        )
                    return f"{line}\n{memory.report()}"

                print(f"[{datetime.now(UTC):%Y-%m-%d %H:%M}] api workers {args.api_workers}")
                print(f"signed forwards via wrk (c={args.concurrency}): {asyncio.run(measured())}")
                settle(database_url, redis)
                webform = json.dumps(
                    {**BODY, "description": BODY["description"] + " __N__"}, ensure_ascii=False
                )
                line = run_wrk(
                    f"{url}/api/v1/reports",
                    webform,
                    concurrency=args.concurrency,
                    seconds=args.seconds,
                )
                print(f"same service, web form POST /api/v1/reports via wrk: {line}")
            finally:
                os.unlink(path)
            settle(database_url, redis)
            asyncio.run(ceiling(database_url, 3000, args.concurrency))
            asyncio.run(delivery(database_url, key, args.messages))


if __name__ == "__main__":
    main()
