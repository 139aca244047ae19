"""CPU time per intake request, in process (the app on a scratch database, requests through
httpx's ASGI transport one at a time): what one web-form report, one 12345 forward and one
SMS follow-up cost the API process, judgement of the text included (issue 10).

    python -m bench.bench_intake_cpu --admin-url postgresql://postgres@127.0.0.1:5432/test \\
        --redis-url redis://127.0.0.1:6379

Process CPU time rather than wall time: on a shared machine it still says what the service
spends per request (database time is in another process and not counted). Also the time
of one `judge` call on the same texts.
"""

import argparse
import asyncio
import json
import secrets
import statistics
import time
from datetime import UTC, datetime

import httpx

from bench.common import in_process_settings
from bench.service import redis_database, scratch_database
from channels.partners.secrets import seal
from channels.partners.signature import signed_headers
from db.partners import Partner
from dispatch.ops import schema
from workflows.triage import judge

TEXTS = [
    "学生今天告诉我继父昨晚拿皮带抽她，现在还在家里，继父扬言回去打死她",
    "市民来电反映：幸福里小区邻居家男人正在打孩子，孩子一直在哭喊。诉求：请尽快派人处理。",
    "班上一名12岁女生近期呕吐，校医检查疑似怀孕，女生称被邻居多次带到家中",
    "孩子父母外出打工，由奶奶照看，最近经常不去上学",
]
SECRET = "bench-secret-" + secrets.token_hex(8)


def _report(text: str) -> dict:
    return {"description": f"{text}（{secrets.token_hex(4)}）", "situations": [], "categories": []}


def _order(text: str) -> dict:
    return {
        "external_id": f"WO-{secrets.token_hex(8)}",
        "content": text,
        "received_at": datetime.now(UTC).isoformat(),
        "address": "东湖市湖东区幸福街道幸福里小区3栋",
    }


async def _cpu_per_request(send, n: int) -> float:
    for i in range(5):  # warm up
        await send(i)
    started = time.process_time()
    for i in range(n):
        await send(i)
    return (time.process_time() - started) / n * 1000


async def measure(database_url: str, redis_url: str, n: int) -> dict[str, float]:
    from dispatch.app import create_app

    settings = in_process_settings()
    app = create_app(settings, database_url=database_url, redis_url=redis_url)
    async with app.router.lifespan_context(app):
        runtime = app.state.runtime
        async with runtime.sessions() as session, session.begin():
            session.add(
                Partner(source="12345", name="12345", secret_box=seal(runtime.secret_key, SECRET))
            )
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:

            async def web(i: int) -> None:
                answer = await c.post("/api/v1/reports", json=_report(TEXTS[i % len(TEXTS)]))
                assert answer.status_code == 201, answer.text

            async def forward(i: int) -> None:
                raw = json.dumps(_order(TEXTS[i % len(TEXTS)]), ensure_ascii=False).encode()
                headers = {"content-type": "application/json", **signed_headers(SECRET, raw)}
                answer = await c.post("/api/v1/forwards/12345", content=raw, headers=headers)
                assert answer.status_code == 202, answer.text

            return {
                "web form report": await _cpu_per_request(web, n),
                "12345 forward": await _cpu_per_request(forward, n),
            }


def judge_micros(rounds: int = 2000) -> tuple[float, float]:
    judge(TEXTS[0])
    times = []
    for i in range(rounds):
        started = time.perf_counter()
        judge(TEXTS[i % len(TEXTS)])
        times.append((time.perf_counter() - started) * 1e6)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.99)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--admin-url", required=True)
    parser.add_argument("--redis-url", required=True, help="the server (a free db is claimed)")
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    with scratch_database(args.admin_url) as database_url, redis_database(args.redis_url) as redis:
        schema.migrate(database_url)
        figures = asyncio.run(measure(database_url, redis, args.requests))
    for name, ms in figures.items():
        print(f"{name}: {ms:.2f} ms of API CPU per request ({args.requests} requests)")
    p50, p99 = judge_micros()
    print(f"judge (version {judge(TEXTS[0]).version}): p50 {p50:.0f} µs, p99 {p99:.0f} µs")


if __name__ == "__main__":
    main()
