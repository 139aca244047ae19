"""Liveness per process kind, for container healthchecks (`hotline health --kind K`).

- api: `/readyz` on the local port answers 200 (PostgreSQL and Redis reachable).
- worker: RQ's own worker registry in Redis lists a worker on this host whose heartbeat is
  recent; RQ drops a worker's key when it stops beating, so a hung or dead worker vanishes.
- scheduler: a heartbeat file that `hotline scheduler` touches from its own event loop, so
  a loop that stops turning (not only a dead process) goes stale.

Kept small on purpose: when the job pipeline grows heartbeats of its own (Redis keys per
process), these checks should read those instead.
"""

import asyncio
import os
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from db.settings import Settings

T = TypeVar("T")
KINDS = ("api", "worker", "scheduler")
BEAT_SECONDS = 10.0
STALE_SECONDS = 60.0  # a heartbeat older than this: not alive


def heartbeat_file(settings: Settings, kind: str) -> Path:
    return Path(settings.hotline_data_dir) / f"{kind}.heartbeat"


def _touch(path: Path) -> None:
    """A local file's mtime: microseconds, not worth a thread."""
    path.touch()


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)


async def beating(main: Coroutine[Any, Any, T], path: Path, every: float = BEAT_SECONDS) -> T:
    """Run `main`, touching `path` every `every` seconds on the same loop while it runs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    task = asyncio.ensure_future(main)
    try:
        while not task.done():
            _touch(path)
            await asyncio.wait({task}, timeout=every)
        return task.result()
    finally:
        task.cancel()
        _remove(path)  # a stopped scheduler is not alive


def check_api(settings: Settings) -> str | None:
    host = settings.hotline_host
    host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    url = f"http://{host}:{settings.hotline_port}/readyz"
    try:
        with urllib.request.urlopen(url, timeout=3) as answer:
            return None if answer.status == 200 else f"/readyz answered {answer.status}"
    except urllib.error.HTTPError as exc:
        return f"/readyz answered {exc.code}"
    except OSError as exc:
        return f"/readyz unreachable ({type(exc).__name__})"


def check_worker(redis_url: str, hostname: str | None = None) -> str | None:
    from redis import Redis
    from rq import Worker

    hostname = hostname or socket.gethostname()
    redis = Redis.from_url(redis_url, socket_timeout=3, socket_connect_timeout=3)
    try:
        workers = [w for w in Worker.all(connection=redis) if w.hostname == hostname]
    except OSError as exc:
        return f"redis unreachable ({type(exc).__name__})"
    finally:
        redis.close()
    now = datetime.now(UTC)
    for worker in workers:
        beat = worker.last_heartbeat
        if beat is not None:
            beat = beat if beat.tzinfo else beat.replace(tzinfo=UTC)
            if (now - beat).total_seconds() <= worker.worker_ttl + STALE_SECONDS:
                return None
    return f"no live RQ worker registered for host {hostname}"


def check_scheduler(settings: Settings) -> str | None:
    path = heartbeat_file(settings, "scheduler")
    try:
        age = time.time() - os.stat(path).st_mtime
    except FileNotFoundError:
        return f"no heartbeat file {path}"
    return None if age <= STALE_SECONDS else f"heartbeat {age:.0f}s old ({path})"
