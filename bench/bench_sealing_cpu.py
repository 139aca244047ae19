"""What encryption at rest costs intake: API CPU time per request with sealing on and off in
the same run, alternating (issue 14; goal: under 15 % extra).

    python -m bench.bench_sealing_cpu --admin-url postgresql://postgres@127.0.0.1:5432/test \\
        --redis-url redis://127.0.0.1:6379

In process (the app on a scratch database, requests one at a time through httpx's ASGI
transport), two kinds of request: the public web form with the reporter's name and phone
(sealed: the reporter, the phone and its blind index, the raw form), and a signed Twilio SMS
webhook, half first messages from new numbers (report, thread, message: number and body
sealed, the number indexed) and half follow-ups (the thread looked up by index, its bodies
opened and judged again). "Off" swaps db.crypto's cipher for identity functions and its
keyed hash for a plain SHA-256 inside this script (no product flag): the same statements,
plain values. Rounds
alternate on/off so the machine's load falls on both alike; each round uses numbers of its
own, so no round reads what the other mode wrote.
"""

import argparse
import asyncio
import hashlib
import re
import secrets
import statistics
import time
from collections.abc import Awaitable, Callable
from contextlib import contextmanager

import httpx
from twilio.request_validator import RequestValidator

from bench.common import PUBLIC_URL, in_process_settings
from bench.service import redis_database, scratch_database
from db import crypto
from dispatch.ops import schema

TOKEN = "bench-token-" + "0" * 20
ACCOUNT = "AC" + "1" * 32
TEXTS = [
    "学生今天告诉我继父昨晚拿皮带抽她，现在还在家里，继父扬言回去打死她",
    "班上一名12岁女生近期呕吐，校医检查疑似怀孕，女生称被邻居多次带到家中",
    "孩子父母外出打工，由奶奶照看，最近经常不去上学",
]
FOLLOWUPS = ["孩子今天还在那里", "刚才又看到了，大概十岁", "地址是幸福里小区3栋"]
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@contextmanager
def sealing_off():
    """Identity cipher, unkeyed hash: what the same code costs storing plain values (the
    hash is the SHA-256 the submission fingerprint was before it was keyed)."""
    from workflows.cases import intake  # it holds its own name for the keyed hash

    saved = crypto.encrypt, crypto.decrypt, crypto.keyed_hash
    crypto.encrypt = lambda value: value
    crypto.decrypt = lambda token: token
    crypto.keyed_hash = intake.keyed_hash = lambda data: hashlib.sha256(data).hexdigest()
    try:
        yield
    finally:
        crypto.encrypt, crypto.decrypt, crypto.keyed_hash = saved
        intake.keyed_hash = saved[2]


def _number() -> str:
    return f"+86139{secrets.randbelow(10**8):08d}"


async def _cpu(send: Callable[[int], Awaitable[None]], n: int) -> float:
    started = time.process_time()
    for i in range(n):
        await send(i)
    return (time.process_time() - started) / n * 1000


async def measure(database_url: str, redis_url: str, n: int, rounds: int) -> dict:
    from dispatch.app import create_app

    settings = in_process_settings(
        twilio_account_sid=ACCOUNT, twilio_auth_token=TOKEN, twilio_from_number="+8610000000000"
    )
    validator = RequestValidator(TOKEN)
    app = create_app(settings, database_url=database_url, redis_url=redis_url)
    figures: dict[str, dict[str, list[float]]] = {
        "web form (reporter phone)": {"on": [], "off": []},
        "SMS webhook (new + follow-up)": {"on": [], "off": []},
    }
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            page = await c.get("/report")
            token = _CSRF.search(page.text).group(1)

            async def web(i: int) -> None:
                answer = await c.post("/report", data={
                    "csrf_token": token, "reporter_name": "张医生", "reporter_role": "doctor",
                    "reporter_phone": _number()[3:], "situations": ["4"],
                    "categories": ["domestic_violence"], "child_age": "11",
                    "jurisdiction": "990103001001", "in_danger_now": "no",
                    "description": f"{TEXTS[i % len(TEXTS)]}（{secrets.token_hex(4)}）",
                })
                assert answer.status_code == 201, answer.text

            numbers: list[str] = []

            async def text(i: int) -> None:
                if i % 2 == 0:
                    numbers.append(_number())
                    body = TEXTS[i % len(TEXTS)]
                else:
                    body = FOLLOWUPS[i % len(FOLLOWUPS)]
                params = {"MessageSid": "SM" + secrets.token_hex(16), "AccountSid": ACCOUNT,
                          "From": numbers[-1], "To": "+8610000000000", "Body": body,
                          "NumMedia": "0"}
                signature = validator.compute_signature(PUBLIC_URL + "/channels/twilio/sms", params)
                answer = await c.post("/channels/twilio/sms", data=params,
                                      headers={"X-Twilio-Signature": signature})
                assert answer.status_code == 200, answer.text

            for send in (web, text):  # warm up both modes
                await _cpu(send, 6)
                with sealing_off():
                    await _cpu(send, 6)
            for r in range(rounds):
                for mode in (("on", "off") if r % 2 == 0 else ("off", "on")):
                    for name, send in zip(figures, (web, text), strict=True):
                        if mode == "off":
                            with sealing_off():
                                figures[name][mode].append(await _cpu(send, n))
                        else:
                            figures[name][mode].append(await _cpu(send, n))
    return figures


def micro(rounds: int = 20000) -> tuple[float, float]:
    """µs to seal a number and compute its index, and to open it again."""
    phone = _number()
    started = time.perf_counter()
    for _ in range(rounds):
        sealed = crypto.encrypt(phone)
        crypto.phone_index(phone)
    seal = (time.perf_counter() - started) / rounds * 1e6
    started = time.perf_counter()
    for _ in range(rounds):
        crypto.decrypt(sealed)
    return seal, (time.perf_counter() - started) / rounds * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--admin-url", required=True)
    parser.add_argument("--redis-url", required=True, help="the server (a free db is claimed)")
    parser.add_argument("--requests", type=int, default=100, help="per round and kind")
    parser.add_argument("--rounds", type=int, default=6, help="each mode; alternating")
    args = parser.parse_args()
    with scratch_database(args.admin_url) as database_url, redis_database(args.redis_url) as redis:
        schema.migrate(database_url)
        figures = asyncio.run(measure(database_url, redis, args.requests, args.rounds))
    for name, modes in figures.items():
        on, off = statistics.median(modes["on"]), statistics.median(modes["off"])
        rounds = " ".join(f"{a:.2f}/{b:.2f}" for a, b in zip(modes["on"], modes["off"],
                                                              strict=True))
        print(f"{name}: sealing on {on:.2f} ms, off {off:.2f} ms of API CPU per request"
              f" (median of {len(modes['on'])} rounds × {args.requests}): {on / off - 1:+.1%}"
              f"   [rounds on/off: {rounds}]")
    seal, opened = micro()
    print(f"a phone sealed and indexed: {seal:.1f} µs; opened: {opened:.1f} µs")


if __name__ == "__main__":
    main()
