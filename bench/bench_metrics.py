"""What metrics cost intake: POST /api/v1/reports with metrics off and on, in one run.

    python -m bench.bench_metrics --database-url postgresql://postgres@127.0.0.1:5432/postgres \
        --redis-url redis://127.0.0.1:6379/0 [--total 3000] [--rounds 2]

Each round starts `hotline up` (one API process, one worker) twice on a scratch database:
once without HOTLINE_METRICS_TOKEN (no request timing, counters in memory only), once with
it (request timing, every counter in the multiprocess folder, and /metrics scraped every
5 s as Prometheus would). Rounds alternate off/on so machine noise falls on both. Figures:
reports per second, and the API process's CPU seconds per 1000 reports (what a busy host
does not blur), with the on/off ratio of each; how long a scrape takes; and, measured
alone, the CPU one report's counting costs in multiprocess mode, as a share of the API's
CPU per report (the figure that stays readable when the machine is too busy for the rest).
"""

import argparse
import asyncio
import secrets
import statistics
import subprocess
import sys
import time

import httpx
import psutil

from bench.common import run_load, summary
from bench.service import redis_database, running_tree, scratch_database
from tests.fixtures.reports import REPORT as BODY

TOKEN = "bench-" + secrets.token_hex(8)


async def _load(url: str, pid: int, total: int, concurrency: int, scrape: bool) -> dict:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    run_id = secrets.token_hex(4)
    scrapes: list[float] = []
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:

        failures = 0

        async def call(i: int) -> None:
            nonlocal failures
            body = {**BODY, "description": f"{BODY['description']} {run_id}-{i}"}
            try:
                response = await client.post("/api/v1/reports", json=body)
                failures += response.status_code != 201
            except httpx.TransportError:
                failures += 1

        async def scraper(stop: asyncio.Event) -> None:
            while not stop.is_set():
                started = time.perf_counter()
                answer = await client.get(
                    "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}
                )
                assert answer.status_code == 200, answer.text
                scrapes.append(time.perf_counter() - started)
                try:
                    await asyncio.wait_for(stop.wait(), 5)
                except TimeoutError:
                    pass

        await run_load(call, min(300, total), concurrency)  # warm-up
        failures = 0
        api = psutil.Process(pid)
        cpu = sum(api.cpu_times()[:2])
        stop = asyncio.Event()
        side = asyncio.create_task(scraper(stop)) if scrape else None
        elapsed, latencies = await run_load(call, total, concurrency)
        stop.set()
        if side:
            await side
        cpu = sum(api.cpu_times()[:2]) - cpu
    return {
        "rate": total / elapsed,
        "cpu_per_1000": cpu / total * 1000,
        "line": summary("intake", elapsed, latencies) + f"; {failures} not 201",
        "scrape_ms": [s * 1000 for s in scrapes],
    }


def _round(admin_url: str, redis_url: str, on: bool, total: int, concurrency: int) -> dict:
    env = {"HOTLINE_API_WORKERS": "1", "HOTLINE_WORKERS": "1"}
    if on:
        env["HOTLINE_METRICS_TOKEN"] = TOKEN
    with scratch_database(admin_url) as database_url, redis_database(redis_url) as redis:
        with running_tree(database_url, redis, **env) as (url, pid):
            return asyncio.run(_load(url, pid, total, concurrency, scrape=on))


_MICRO = """
import tempfile, time
from pathlib import Path
from db import metrics
metrics.use_folder(Path(tempfile.mkdtemp()), clear=True)
n = 20000
started = time.process_time()
for i in range(n):
    metrics.REQUEST_SECONDS.labels("/api/v1/reports", "POST", "201").observe(0.012)
    metrics.INTAKE.labels("webform", "case").inc()
    metrics.TRIAGE.labels("orange", "false", "false", "").inc()
print((time.process_time() - started) / n * 1e6)
"""


def micro() -> float:
    """CPU microseconds one report's counting costs in multiprocess mode (the request's
    histogram, the intake and triage counters), measured alone in a child process."""
    done = subprocess.run([sys.executable, "-c", _MICRO], capture_output=True, text=True,
                          check=True)
    return float(done.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True, help="a server to make scratch DBs on")
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--total", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    results: dict[bool, list[dict]] = {False: [], True: []}
    for _ in range(args.rounds):
        for on in (False, True):
            result = _round(args.database_url, args.redis_url, on, args.total, args.concurrency)
            results[on].append(result)
            print(f"metrics {'on ' if on else 'off'}: {result['line']}; "
                  f"API CPU {result['cpu_per_1000']:.2f} s per 1000 reports")
    rate = {on: statistics.median(r["rate"] for r in rs) for on, rs in results.items()}
    cpu = {on: statistics.median(r["cpu_per_1000"] for r in rs) for on, rs in results.items()}
    scrapes = [ms for r in results[True] for ms in r["scrape_ms"]]
    print(f"median reports/s: off {rate[False]:.0f}, on {rate[True]:.0f}, "
          f"on/off {rate[True] / rate[False]:.3f}")
    print(f"median API CPU s per 1000 reports: off {cpu[False]:.2f}, on {cpu[True]:.2f}, "
          f"on/off {cpu[True] / cpu[False]:.3f}")
    per_report = micro()
    print(f"counting one report (multiprocess files): {per_report:.1f} µs CPU, "
          f"{per_report / (cpu[False] * 1000) * 100:.2f} % of the API's CPU per report")
    if scrapes:
        print(f"/metrics during load: {len(scrapes)} scrapes, median "
              f"{statistics.median(scrapes):.1f} ms, max {max(scrapes):.1f} ms")


if __name__ == "__main__":
    main()
