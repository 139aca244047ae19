"""Signed Twilio SMS webhooks against a running service, at a fixed rate (open loop): each
request leaves at its scheduled time whether or not earlier ones have been answered, so a
slow service shows up as latency instead of quietly lowering the load.

    HOTLINE_PUBLIC_URL=https://hotline.example.test TWILIO_AUTH_TOKEN=bench-token ... hotline api
    python -m bench.bench_sms_webhook --url http://127.0.0.1:8000 \\
        --public-url https://hotline.example.test --auth-token bench-token

The mix is what a hotline sees: most messages are first messages from new numbers (a report,
its case and thread, triage), the rest follow up on an earlier number's thread; a few are
Twilio's retries of a MessageSid already answered. Latency is measured from each request's
scheduled departure to its answer. Goal: p99 under 50 ms at 100 requests/s.
"""

import argparse
import asyncio
import random
import secrets
import time

import httpx
from twilio.request_validator import RequestValidator

from bench.common import percentile, summary

PATH = "/channels/twilio/sms"
TIPS = [
    "学校门口有个孩子天天被几个人勒索要钱",
    "邻居家的孩子总是一个人关在家里，没人照顾",
    "小区门口有个孩子在乞讨，身上很脏",
    "有个初中生没上学，在工地打工搬砖",
]
FOLLOWUPS = ["孩子今天还在那里", "刚才又看到了，大概十岁", "地址是幸福里小区3栋"]


class Traffic:
    """Signed SMS webhook bodies: new numbers, follow-ups and retries in a fixed mix."""

    def __init__(self, public_url: str, token: str, followups: float, retries: float) -> None:
        self.url = public_url.rstrip("/") + PATH
        self.validator = RequestValidator(token)
        self.followups, self.retries = followups, retries
        self.senders: list[str] = []
        self.sent: list[dict[str, str]] = []
        self.random = random.Random(7)

    def next(self) -> tuple[dict[str, str], dict[str, str]]:
        roll = self.random.random()
        if self.sent and roll < self.retries:
            params = self.random.choice(self.sent)
        elif self.senders and roll < self.retries + self.followups:
            params = self._params(self.random.choice(self.senders), FOLLOWUPS)
        else:
            sender = f"+86139{secrets.randbelow(10**8):08d}"
            self.senders.append(sender)
            params = self._params(sender, TIPS)
        self.sent.append(params)
        return params, {"X-Twilio-Signature": self.validator.compute_signature(self.url, params)}

    def _params(self, sender: str, texts: list[str]) -> dict[str, str]:
        return {
            "MessageSid": "SM" + secrets.token_hex(16),
            "AccountSid": "AC" + "0" * 32,
            "From": sender,
            "To": "+8610000000000",
            "Body": self.random.choice(texts),
            "NumMedia": "0",
        }


async def run(url: str, traffic: Traffic, rate: float, seconds: float) -> None:
    total = int(rate * seconds)
    latencies: list[float] = []
    failures: dict[int | str, int] = {}
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:

        async def one(due: float, params: dict[str, str], headers: dict[str, str]) -> None:
            try:
                response = await client.post(PATH, data=params, headers=headers)
                status: int | str = response.status_code
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            latencies.append(time.perf_counter() - due)
            if status != 200:
                failures[status] = failures.get(status, 0) + 1

        for _ in range(20):  # warm-up: connections, the service's caches
            await one(time.perf_counter(), *traffic.next())
        latencies.clear()
        failures.clear()

        start = time.perf_counter()
        tasks = []
        for i in range(total):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(due, *traffic.next())))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start

    print(summary(f"POST {PATH} at {rate:.0f}/s offered", elapsed, latencies))
    late = sum(1 for x in latencies if x > 0.05)
    print(f"p99.9 {percentile([x * 1000 for x in latencies], 99.9):.1f} ms; over 50 ms: {late}")
    print(f"non-200 answers: {failures or 'none'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--public-url", required=True, help="the service's HOTLINE_PUBLIC_URL")
    parser.add_argument("--auth-token", required=True, help="the service's TWILIO_AUTH_TOKEN")
    parser.add_argument("--rate", type=float, default=100.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--followups", type=float, default=0.3, help="share of follow-ups")
    parser.add_argument("--retries", type=float, default=0.05, help="share of Twilio retries")
    args = parser.parse_args()
    traffic = Traffic(args.public_url, args.auth_token, args.followups, args.retries)
    asyncio.run(run(args.url, traffic, args.rate, args.seconds))


if __name__ == "__main__":
    main()
