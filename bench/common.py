"""Shared bits of the benchmark scripts: arguments, timing, load loops, percentiles, the
service's memory, the table of figures."""

import argparse
import asyncio
import secrets
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import psutil

from db.settings import Settings

T = TypeVar("T")

PUBLIC_URL = "https://hotline.example.test"
# Public intake's limits and burst hold off: one client files every request, so the cost
# measured is the report's, not a refusal's.
LIMITS_OFF = {
    "hotline_intake_limits_per_address": "",
    "hotline_intake_limits_per_content": "",
    "hotline_intake_hold_seconds": 0,
}


def in_process_settings(**changes: object) -> Settings:
    """Settings of an app the bench runs in its own process (it passes the database and
    Redis to `create_app`): a scratch data folder, a fresh secret key, the example public
    URL, intake's limits off; `changes` over them."""
    return Settings(
        hotline_data_dir=tempfile.mkdtemp(prefix="hotline-bench-"),
        hotline_secret_key="bench-" + secrets.token_hex(8),
        hotline_public_url=PUBLIC_URL,
        database_url=None,
        redis_url=None,
        **{**LIMITS_OFF, **changes},
    )


def bench_parser(doc: str | None, *, redis: bool = True) -> argparse.ArgumentParser:
    """The arguments every bench on a scratch database takes (--admin-url, and --redis-url
    unless `redis` is off); the bench adds its own sizes."""
    parser = argparse.ArgumentParser(description=doc)
    parser.add_argument(
        "--admin-url", required=True,
        help="a PostgreSQL database to connect to (the bench makes and drops its own)",
    )
    if redis:
        parser.add_argument("--redis-url", required=True)
    return parser


def timed(work: Callable[[], T]) -> tuple[T, float]:
    """`work()`'s result and the wall-clock seconds it took."""
    started = time.perf_counter()
    return work(), time.perf_counter() - started


def print_figures(rows: list) -> None:
    """A two-column table of `rows` (each with a .name and a .value), names aligned."""
    width = max(len(r.name) for r in rows)
    print(f"\n{'figure'.ljust(width)} | value")
    print(f"{'-' * width}-+-{'-' * 60}")
    for row in rows:
        print(f"{row.name.ljust(width)} | {row.value}")


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
    return ordered[index]


async def run_load(
    call: Callable[[int], Awaitable[None]], total: int, concurrency: int
) -> tuple[float, list[float]]:
    """Run `call(i)` for i < total with at most `concurrency` in flight.

    Returns (elapsed seconds, per-call latencies in seconds).
    """
    latencies: list[float] = []
    counter = iter(range(total))

    async def lane() -> None:
        for i in counter:
            start = time.perf_counter()
            await call(i)
            latencies.append(time.perf_counter() - start)

    started = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies


def summary(name: str, elapsed: float, latencies: list[float]) -> str:
    ms = [x * 1000 for x in latencies]
    return (
        f"{name}: {len(ms)} in {elapsed:.2f}s = {len(ms) / elapsed:.0f}/s; "
        f"p50 {statistics.median(ms):.1f} ms, p99 {percentile(ms, 99):.1f} ms, "
        f"max {max(ms):.1f} ms"
    )


def process_on_port(port: int) -> psutil.Process | None:
    for conn in psutil.net_connections(kind="tcp"):
        if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN:
            return psutil.Process(conn.pid) if conn.pid else None
    return None


def tree_rss(process: psutil.Process) -> int:
    """RSS of a process and its children (uvicorn workers are children of the supervisor)."""
    total = 0
    for proc in [process, *process.children(recursive=True)]:
        try:
            total += proc.memory_info().rss
        except psutil.Error:
            pass
    return total


class MemorySampler:
    """Peak RSS of a process tree while a load runs (sampled every 50 ms)."""

    def __init__(self, process: psutil.Process | None) -> None:
        self.process = process
        self.peak = 0
        self.before = tree_rss(process) if process else 0
        self._task: asyncio.Task | None = None

    async def _sample(self) -> None:
        while True:
            if self.process:
                self.peak = max(self.peak, tree_rss(self.process))
            await asyncio.sleep(0.05)

    async def __aenter__(self) -> "MemorySampler":
        self._task = asyncio.create_task(self._sample())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task
        self._task.cancel()

    def report(self) -> str:
        if not self.process:
            return "service memory: process not found on that port"
        return (
            f"service RSS: {self.before / 2**20:.0f} MiB before, {self.peak / 2**20:.0f} MiB peak"
        )


def run_wrk(
    url: str, body: str, *, concurrency: int, seconds: int, headers: dict[str, str] | None = None
) -> str:
    """POST unique bodies with wrk (C, one thread: the load generator stays off the
    service's core as far as it can); returns a one-line summary."""
    import os
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        fh.write(body)
    env = {"BODY_FILE": fh.name}
    if headers:
        env["EXTRA_HEADERS"] = "|".join(f"{k}: {v}" for k, v in headers.items())
    try:
        return wrk_post(url, "post_unique.lua", env, concurrency=concurrency, seconds=seconds)
    finally:
        os.unlink(fh.name)


def wrk_post(url: str, script: str, env: dict[str, str], *, concurrency: int, seconds: int) -> str:
    """Run wrk with one of bench/'s Lua scripts (its settings in `env`); a one-line summary."""
    import os
    import re
    import subprocess
    from pathlib import Path

    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{concurrency}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(Path(__file__).with_name(script)),
            url,
        ],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)
    p50 = re.search(r"50%\s+(\S+)", out).group(1)
    p99 = re.search(r"99%\s+(\S+)", out).group(1)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    total = re.search(r"(\d+) requests in", out).group(1)
    bad = f", non-2xx {errors.group(1)}" if errors else ""
    return f"{total} requests, {float(rate):.0f}/s; p50 {p50}, p99 {p99}{bad}"


class Profile:
    """`py-spy record` of the service's API processes while a load runs (optional: pass
    `--profile FILE` to a bench; needs `pip install py-spy`). The output is py-spy's
    collapsed-stack text, one line per stack with its sample count: `bench.common.top`
    sums it by function."""

    def __init__(self, port: int, path: str | None) -> None:
        self.port = port
        self.path = path
        self._proc = None

    async def __aenter__(self) -> "Profile":
        import shutil
        import subprocess
        import sys
        from pathlib import Path

        if not self.path:
            return self
        spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        api = process_on_port(self.port)
        if api is None:
            return self
        # With HOTLINE_API_WORKERS > 1 uvicorn's spawned children serve; else the listener.
        spawned = [c for c in api.children() if "multiprocessing" in " ".join(c.cmdline())]
        pid = spawned[0].pid if spawned else api.pid
        self._proc = await asyncio.to_thread(
            subprocess.Popen,
            [
                spy,
                "record",
                "--nonblocking",
                "--gil",
                "-r",
                "200",
                "-f",
                "raw",
                "-o",
                self.path,
                "-p",
                str(pid),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        await asyncio.sleep(1.0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        import signal

        if self._proc:
            self._proc.send_signal(signal.SIGINT)
            await asyncio.to_thread(self._proc.wait, 30)


def top(path: str, limit: int = 25) -> str:
    """Self and inclusive sample shares per function from a py-spy raw profile."""
    from collections import Counter

    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    with open(path) as fh:
        for line in fh:
            stack, _, count = line.rstrip().rpartition(" ")
            n = int(count)
            frames = [
                f.split(" (")[0] + " " + f.split("/")[-1].rstrip(")") for f in stack.split(";")
            ]
            total += n
            own[frames[-1]] += n
            for frame in set(frames):
                inclusive[frame] += n
    lines = [f"{total} samples; inclusive / self %"]
    for frame, n in inclusive.most_common(limit):
        lines.append(f"{100 * n / total:5.1f} {100 * own[frame] / total:5.1f}  {frame}")
    return "\n".join(lines)


async def raw_claim(
    stream: tuple[asyncio.StreamReader, asyncio.StreamWriter], host: str, referral: int, token: str
) -> tuple[int, float]:
    """One claim on an open connection, by a raw HTTP/1.1 request: (status, seconds).
    httpx's own overhead at 100 concurrent requests would be measured instead of the service."""
    reader, writer = stream
    start = time.perf_counter()
    writer.write(
        f"POST /api/v1/referrals/{referral}/claim HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Length: 0\r\n\r\n".encode()
    )
    status_line = await reader.readline()
    elapsed = time.perf_counter() - start
    writer.close()
    return int(status_line.split()[1]), elapsed
