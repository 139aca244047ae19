"""Time from EmbeddedServers.start() until PostgreSQL (asyncpg SELECT 1) and Redis (PING)
both answer: cold (new data dir, includes initdb) and warm (the same dir again).

    .venv/bin/python bench/bench_embedded_start.py
"""

import asyncio
import shutil
import tempfile
import time
from pathlib import Path

import asyncpg
from redis import Redis

from dispatch.ops.embedded import EmbeddedServers


def seconds_to_answer(data_dir: Path) -> float:
    embedded = EmbeddedServers(data_dir)
    began = time.perf_counter()
    try:
        embedded.start()
        assert embedded.database_url and embedded.redis_url
        with Redis.from_url(embedded.redis_url) as redis:
            redis.ping()

        async def select_one() -> None:
            conn = await asyncpg.connect(embedded.database_url)
            await conn.fetchval("SELECT 1")
            await conn.close()

        asyncio.run(select_one())
        return time.perf_counter() - began
    finally:
        embedded.stop()


def main(warm_runs: int = 3) -> None:
    root = Path(tempfile.mkdtemp(prefix="hb", dir="/tmp"))  # short: unix socket paths
    try:
        cold = seconds_to_answer(root / ".hotline")
        warm = sorted(seconds_to_answer(root / ".hotline") for _ in range(warm_runs))
        print(f"cold start (initdb included): {cold:.2f}s")
        print(f"warm start (median of {warm_runs}): {warm[len(warm) // 2]:.2f}s")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
