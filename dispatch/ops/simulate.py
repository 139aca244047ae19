"""`hotline simulate`: a partner (110, 12345 or 12355) in a box, for demos and load tests.

It sends signed work orders at a steady rate (a share of them twice, as partners' retries
do), and runs the partner's callback receiver, which checks our signatures and counts the
status messages it is sent. The summary says what was accepted, what was a duplicate, what
failed, the latencies, and which feedback arrived.
"""

import asyncio
import contextlib
import json
import random
import secrets
import socket
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from channels.partners.signature import SIGNATURE, TIMESTAMP, check, signed_headers

STORIES = [
    ("邻居反映楼上孩子经常被父亲打骂，昨晚听到哭喊声。", "domestic"),
    ("地铁站口有一名约8岁儿童独自乞讨，旁边有成年人看管。", "begging"),
    ("家长反映孩子连续两周没有上学，在网吧被发现。", "school"),
    ("一名约5岁儿童独自在家三天，父母外出务工联系不上。", "left_alone"),
    ("宾馆前台发现一名未成年女孩与多名成年男子同住。", "hotel"),
    ("学校老师发现学生身上有多处烫伤，学生不敢说明原因。", "injury"),
]
ADDRESSES = ["东湖市湖东区幸福街道幸福里小区3栋", "湖西区湖滨街道湖滨村", "南山县青石镇老街12号"]


@dataclass
class Summary:
    sent: int = 0
    accepted: int = 0
    duplicates: int = 0
    failed: Counter = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    callbacks: Counter = field(default_factory=Counter)
    bad_signatures: int = 0
    orders: dict[str, int] = field(default_factory=dict)  # external_id → case_id
    messages: list[dict[str, Any]] = field(default_factory=list)

    def percentile(self, q: float) -> float | None:
        if not self.latencies_ms:
            return None
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def lines(self) -> list[str]:
        p50, p99 = self.percentile(0.5), self.percentile(0.99)
        out = [
            f"已发送 {self.sent} 次，受理 {self.accepted}，重复 {self.duplicates}，"
            f"失败 {sum(self.failed.values())}"
            + (f"（{dict(self.failed)}）" if self.failed else ""),
        ]
        if p50 is not None:
            out.append(f"延迟 p50 {p50:.1f} ms，p99 {p99:.1f} ms")
        out.append(
            "收到反馈："
            + ("，".join(f"{k} {v}" for k, v in sorted(self.callbacks.items())) or "无")
            + (f"；签名无效 {self.bad_signatures}" if self.bad_signatures else "")
        )
        return out


def work_order(source: str, external_id: str, rng: random.Random) -> dict[str, Any]:
    """A plausible order in the partner's own fields."""
    story, _ = rng.choice(STORIES)
    order: dict[str, Any] = {
        "external_id": external_id,
        "content": story,
        "received_at": datetime.now(UTC).isoformat(),
        "caller_name": rng.choice(["张女士", "李先生", "王老师", "匿名"]),
        "caller_phone": f"138{rng.randrange(10**8):08d}",
        "address": rng.choice(ADDRESSES),
        "child": {"age": rng.randrange(3, 17), "gender": rng.choice(["male", "female"])},
    }
    if source == "110":
        order["in_progress"] = rng.random() < 0.1
        order["incident_type"] = "求助"
    elif source == "12345":
        order["urgency"] = rng.choice(["一般", "一般", "紧急"])
        order["appeal_type"] = "求助"
    else:
        order["risk"] = rng.choice(["低", "中", "高"])
    return order


def receiver(secret: str, summary: Summary, done: asyncio.Event, expect: int | None) -> Starlette:
    """The partner's callback endpoint: checks our signature, counts what arrives."""

    async def callback(request: Request) -> JSONResponse:
        body = await request.body()
        problem = check(
            secret,
            request.headers.get(TIMESTAMP),
            request.headers.get(SIGNATURE),
            body,
            time.time(),
        )
        if problem:
            summary.bad_signatures += 1
            return JSONResponse({"error": problem}, status_code=401)
        message = json.loads(body)
        summary.callbacks[message.get("status_label") or message.get("status", "?")] += 1
        summary.messages.append(message)
        accepted = sum(m.get("status") == "accepted" for m in summary.messages)
        if expect is not None and accepted >= expect:
            done.set()
        return JSONResponse({"ok": True})

    return Starlette(routes=[Route("/callback", callback, methods=["POST"])])


async def run(
    url: str,
    source: str,
    secret: str,
    *,
    rate: float,
    count: int,
    concurrency: int = 32,
    duplicate_share: float = 0.1,
    callback_sock: socket.socket | None = None,
    wait: float = 0.0,
    seed: int | None = None,
) -> Summary:
    """Send `count` orders at `rate` per second; with a callback socket, also receive the
    feedback, waiting up to `wait` seconds for every order's 受理 after the last send."""
    summary = Summary()
    rng = random.Random(seed)
    run_id = secrets.token_hex(3)
    done = asyncio.Event()
    server = None
    serving = None
    if callback_sock is not None:
        app = receiver(secret, summary, done, expect=count)
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        serving = asyncio.create_task(server.serve(sockets=[callback_sock]))
    gate = asyncio.Semaphore(concurrency)
    endpoint = f"{url.rstrip('/')}/api/v1/forwards/{source}"
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(timeout=30, limits=limits) as http:

        async def send(i: int) -> None:
            order = work_order(source, f"SIM-{source}-{run_id}-{i:06d}", rng)
            body = json.dumps(order, ensure_ascii=False).encode()
            times = 2 if rng.random() < duplicate_share else 1
            for _ in range(times):
                async with gate:
                    headers = {"content-type": "application/json", **signed_headers(secret, body)}
                    started = time.perf_counter()
                    try:
                        response = await http.post(endpoint, content=body, headers=headers)
                    except httpx.HTTPError as exc:
                        summary.failed[type(exc).__name__] += 1
                        continue
                    finally:
                        summary.sent += 1
                    summary.latencies_ms.append((time.perf_counter() - started) * 1000)
                if response.status_code != 202:
                    summary.failed[str(response.status_code)] += 1
                    continue
                answer = response.json()
                if answer["duplicate"]:
                    summary.duplicates += 1
                else:
                    summary.accepted += 1
                summary.orders[order["external_id"]] = answer["case_id"]

        start = time.perf_counter()
        tasks = []
        for i in range(count):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(send(i)))
        await asyncio.gather(*tasks)
    if server is not None and serving is not None:
        if wait > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), wait)
        server.should_exit = True
        await serving
    return summary
