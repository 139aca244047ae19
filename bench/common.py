"""Shared bits of the benchmark scripts: load loops, percentiles, the service's memory."""

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable

import psutil


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


class MemorySampler:
    """Peak RSS of a process while a load runs (sampled every 50 ms in the background)."""

    def __init__(self, process: psutil.Process | None) -> None:
        self.process = process
        self.peak = 0
        self.before = process.memory_info().rss if process else 0
        self._task: asyncio.Task | None = None

    async def _sample(self) -> None:
        while True:
            if self.process:
                self.peak = max(self.peak, self.process.memory_info().rss)
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
