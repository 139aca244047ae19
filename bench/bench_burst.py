"""A burst (issue 16): N signed 12345 work orders at full speed against a whole `hotline up`
(API, worker(s), scheduler) on a scratch database and a Redis db of the run's own, with the
partner's callback endpoint simulated in this process.

Reported: the accepted rate (202s per second, from the first request to the last answer);
the rate at which cases are routed (their referrals exist) and at which 已受理 reaches the
partner, each from the first request to the last one; the ratio acknowledged ÷ accepted
(goal ≥ 0.5); and the peak RSS of each process of the service during the burst.

    python -m bench.bench_burst --admin-url postgresql://postgres@127.0.0.1:5432/test \\
        --redis-url redis://127.0.0.1:6379 [--orders 3000] [--workers 1] [--api-workers 1]

The client is a raw HTTP/1.1 writer on 32 keep-alive connections (C-like overhead: the
load generator shares the machine's two cores with the service).
"""

import argparse
import asyncio
import contextlib
import json
import secrets
import time

import asyncpg
import httpx
import psutil
from starlette.requests import Request
from starlette.responses import Response

from bench.bench_forwards import add_partner, signed_file
from bench.common import percentile, process_on_port
from bench.service import (
    CallbackServer,
    redis_database,
    running_service,
    scratch_database,
)


class Partner(CallbackServer):
    """The partner's callback endpoint: the arrival time of each 已受理 (accepted)."""

    def __init__(self) -> None:
        self.accepted: list[float] = []
        self.other = 0

        async def take(request: Request) -> Response:
            message = json.loads(await request.body())
            if message.get("status") == "accepted":
                self.accepted.append(time.perf_counter())
            else:
                self.other += 1
            return Response(status_code=200)

        super().__init__(take)


def service_root(proc: psutil.Process | None) -> psutil.Process | None:
    """`hotline up` itself: with HOTLINE_API_WORKERS > 1 the process listening on the port
    is uvicorn's, below it, and the worker and scheduler are not in its tree."""
    while proc is not None:
        parent = proc.parent()
        if parent is None or not " ".join(parent.cmdline()).endswith("hotline up"):
            return proc
        proc = parent
    return None


def _kind(proc: psutil.Process, root: psutil.Process) -> str:
    if proc.pid == root.pid:
        return "hotline up (API)"
    line = " ".join(proc.cmdline())
    for word in ("scheduler", "worker"):
        if f"cli {word}" in line or f"hotline {word}" in line or line.endswith(word):
            parent = proc.parent()
            if word == "worker" and parent and parent.pid != root.pid:
                return "RQ scheduler (the worker's fork)"
            return word
    if "multiprocessing" in line:
        return "API worker"
    parent = proc.parent()
    return "RQ scheduler (the worker's fork)" if parent and parent.pid != root.pid else line[:40]


class Memory:
    """Peak RSS per process kind of the service's tree, sampled every 100 ms, and the CPU
    each kind (and the PostgreSQL backends serving the bench's database) spent meanwhile:
    CPU per order is what the machine's load does not change much, unlike the rates."""

    def __init__(self, root: psutil.Process | None, database: str) -> None:
        self.root = root
        self.database = database
        self.peak: dict[str, int] = {}
        self.count: dict[str, set[int]] = {}
        self.first: dict[int, tuple[str, float]] = {}
        self.last: dict[int, float] = {}
        self.task: asyncio.Task | None = None

    def _cpu(self, proc: psutil.Process, kind: str) -> None:
        cpu = sum(proc.cpu_times()[:2])
        self.first.setdefault(proc.pid, (kind, cpu))
        self.last[proc.pid] = cpu

    def _backends(self) -> list[psutil.Process]:
        return [
            p
            for p in psutil.process_iter(["cmdline"])
            if (p.info["cmdline"] or [""])[0].startswith("postgres:")
            and f" {self.database} " in (p.info["cmdline"] or [""])[0]
        ]

    async def _run(self) -> None:
        tick = 0
        while self.root:
            for proc in [self.root, *self.root.children(recursive=True)]:
                try:
                    kind = _kind(proc, self.root)
                    rss = proc.memory_info().rss
                    self._cpu(proc, kind)
                except psutil.Error:
                    continue
                self.peak[kind] = max(self.peak.get(kind, 0), rss)
                self.count.setdefault(kind, set()).add(proc.pid)
            if tick % 5 == 0:
                for proc in self._backends():
                    with contextlib.suppress(psutil.Error):
                        self._cpu(proc, "PostgreSQL backends")
            tick += 1
            await asyncio.sleep(0.1)

    def cpu_per(self, orders: int) -> str:
        spent: dict[str, float] = {}
        for pid, (kind, first) in self.first.items():
            spent[kind] = spent.get(kind, 0.0) + self.last[pid] - first
        return "; ".join(
            f"{kind} {1000 * cpu / orders:.1f} ms" for kind, cpu in sorted(spent.items())
        )

    def start(self) -> None:
        self.task = asyncio.create_task(self._run())

    def stop(self) -> str:
        if self.task:
            self.task.cancel()
        return "; ".join(
            f"{kind} ×{len(self.count[kind])}: peak {rss / 2**20:.0f} MiB"
            for kind, rss in sorted(self.peak.items())
        )


def _signed_lines(path: str) -> list[list[str]]:
    with open(path) as fh:
        return [line.rstrip("\n").split("\t", 2) for line in fh]


async def send_all(url: str, path: str, concurrency: int) -> tuple[float, list[float], int]:
    """(seconds from the first request to the last answer, latencies, non-202 count)."""
    lines = _signed_lines(path)
    host, port = httpx.URL(url).host, httpx.URL(url).port
    work = iter(lines)
    latencies: list[float] = []
    bad = 0

    async def lane() -> None:
        nonlocal bad
        reader, writer = await asyncio.open_connection(host, port)
        for ts, signature, body in work:
            data = body.encode()
            start = time.perf_counter()
            writer.write(
                f"POST /api/v1/forwards/12345 HTTP/1.1\r\nHost: {host}\r\n"
                f"Content-Type: application/json\r\nX-Hotline-Timestamp: {ts}\r\n"
                f"X-Hotline-Signature: {signature}\r\nContent-Length: {len(data)}\r\n\r\n".encode()
                + data
            )
            status = int((await reader.readline()).split()[1])
            length = 0
            while (header := await reader.readline()) not in (b"\r\n", b""):
                if header.lower().startswith(b"content-length:"):
                    length = int(header.split(b":")[1])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - start)
            bad += status != 202
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies, bad


async def routed_times(database_url: str, started_wall: float) -> tuple[int, float | None]:
    """(cases with referrals, seconds from the start to the last case's first referral)."""
    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow(
            "SELECT count(*) AS n, extract(epoch FROM max(first)) AS last FROM"
            " (SELECT min(f.created_at) AS first FROM report r JOIN referral f"
            "  ON f.case_id = r.case_id WHERE r.channel = '12345' GROUP BY r.case_id) x"
        )
        return row["n"], (float(row["last"]) - started_wall) if row["last"] else None
    finally:
        await conn.close()


async def idle(database_url: str, redis_url: str) -> bool:
    from redis import Redis
    from rq import Queue

    conn = await asyncpg.connect(database_url)
    try:
        pending = await conn.fetchval("SELECT count(*) FROM outbox WHERE relayed_at IS NULL")
    finally:
        await conn.close()
    if pending:
        return False
    return not any(q.count for q in Queue.all(connection=Redis.from_url(redis_url)))


async def burst(args, url: str, database_url: str, redis_url: str, partner: Partner) -> None:
    path = signed_file(args.orders)
    memory = Memory(
        service_root(process_on_port(httpx.URL(url).port)), database_url.rsplit("/", 1)[-1]
    )
    memory.start()
    started_wall = time.time()
    started = time.perf_counter()
    elapsed, latencies, bad = await send_all(url, path, args.concurrency)
    accepted = len(latencies) - bad
    ms = [x * 1000 for x in latencies]
    print(
        f"accepted: {accepted} of {len(latencies)} in {elapsed:.1f} s = {accepted / elapsed:.0f}/s"
        f" (p50 {sorted(ms)[len(ms) // 2]:.0f} ms, p99 {percentile(ms, 99):.0f} ms)"
    )
    deadline = time.monotonic() + args.timeout
    last_seen, quiet_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        await asyncio.sleep(1)
        if len(partner.accepted) != last_seen:
            last_seen, quiet_since = len(partner.accepted), time.monotonic()
        if len(partner.accepted) >= accepted:
            break
        if time.monotonic() - quiet_since > 20 and await idle(database_url, redis_url):
            break  # nothing more will come (orders the service did not accept as cases)
    mem = memory.stop()
    routed, routed_last = await routed_times(database_url, started_wall)
    acked = len(partner.accepted)
    ack_span = (max(partner.accepted) - started) if acked else float("nan")
    accept_rate = accepted / elapsed
    ack_rate = acked / ack_span if acked else 0.0
    if routed_last:
        print(
            f"routed: {routed} cases, the last {routed_last:.1f} s after the start"
            f" = {routed / routed_last:.1f}/s"
        )
    print(
        f"已受理 at the partner: {acked} in {ack_span:.1f} s from the start = {ack_rate:.1f}/s"
        f" (other statuses {partner.other})"
    )
    print(f"ratio acknowledged ÷ accepted rate: {ack_rate / accept_rate:.3f} (goal ≥ 0.5)")
    print(f"memory under the burst: {mem}")
    print(
        f"CPU per order (user + system, from the start until all was acknowledged): "
        f"{memory.cpu_per(accepted)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--admin-url", required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--orders", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", default="1", help="HOTLINE_WORKERS")
    parser.add_argument("--api-workers", default="1", help="HOTLINE_API_WORKERS")
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for 已受理")
    args = parser.parse_args()
    key = secrets.token_hex(16)
    with (
        scratch_database(args.admin_url) as database_url,
        redis_database(args.redis_url) as redis_url,
        Partner() as partner,
    ):
        env = {
            "HOTLINE_SECRET_KEY": key,
            "HOTLINE_WORKERS": args.workers,
            "HOTLINE_API_WORKERS": args.api_workers,
        }
        with running_service(database_url, redis_url, **env) as url:
            asyncio.run(add_partner(database_url, key, f"http://127.0.0.1:{partner.port}/cb"))
            print(
                f"{args.orders} signed 12345 forwards, c={args.concurrency}, workers"
                f" {args.workers}, api workers {args.api_workers}"
            )
            asyncio.run(burst(args, url, database_url, redis_url, partner))


if __name__ == "__main__":
    main()
