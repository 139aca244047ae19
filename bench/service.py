"""Run a whole service (API + worker + scheduler, `hotline up`) on a scratch database for a
benchmark, and take it all down afterwards."""

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench.common import LIMITS_OFF

HOTLINE = str(Path(sys.executable).with_name("hotline"))


# How long `hotline up` may take to answer /readyz (a busy shared machine is slow to start).
READY_SECONDS = float(os.environ.get("BENCH_READY_SECONDS", "180"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _admin(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextlib.contextmanager
def scratch_database(admin_url: str) -> Iterator[str]:
    name = f"hotline_bench_{secrets.token_hex(4)}"
    asyncio.run(_admin(admin_url, f'CREATE DATABASE "{name}"'))
    try:
        yield urlunsplit(urlsplit(admin_url)._replace(path="/" + name))
    finally:
        asyncio.run(_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextlib.contextmanager
def redis_database(url: str) -> Iterator[str]:
    """A Redis database number of this run's own, claimed the way the test suite claims its
    own (a lock key in db 0), so a bench and a test run on one server never flush or drain
    each other's queues. `url` names the server; its database number is ignored."""
    from redis import Redis

    base = urlsplit(url)
    lock = Redis.from_url(urlunsplit(base._replace(path="/0")))
    token = secrets.token_hex(8)
    for db in range(15, 0, -1):
        if lock.set(f"hotline-test-db:{db}", token, nx=True, ex=4 * 3600):
            break
    else:
        raise RuntimeError("all Redis databases 1-15 are in use")
    claimed = urlunsplit(base._replace(path=f"/{db}"))
    Redis.from_url(claimed).flushdb()
    try:
        yield claimed
    finally:
        Redis.from_url(claimed).flushdb()
        if lock.get(f"hotline-test-db:{db}") == token.encode():
            lock.delete(f"hotline-test-db:{db}")


@contextlib.contextmanager
def running_service(database_url: str, redis_url: str, **env: str) -> Iterator[str]:
    """`hotline up` with the given servers; yields its base URL once /readyz answers 200."""
    with running_tree(database_url, redis_url, **env) as (url, _pid):
        yield url


@contextlib.contextmanager
def running_tree(database_url: str, redis_url: str, **env: str) -> Iterator[tuple[str, int]]:
    """`running_service`, also yielding the pid of `hotline up` (its children are the tree).
    Public intake's limits are off unless `env` sets them: a bench is one client."""
    port = free_port()
    full_env = {
        **os.environ,
        **{key.upper(): str(value) for key, value in LIMITS_OFF.items()},
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "HOTLINE_PORT": str(port),
        "HOTLINE_SECRET_KEY": secrets.token_hex(16),
        "HOTLINE_DATA_DIR": f"/tmp/hotline-bench-{port}",
        **env,
    }
    # BENCH_SERVICE_LOG=path keeps the service's output, to read why a request failed.
    log_path = os.environ.get("BENCH_SERVICE_LOG")
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(
        [HOTLINE, "up"],
        env=full_env,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + READY_SECONDS
        while True:
            if proc.poll() is not None:
                raise RuntimeError("hotline up exited")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"hotline up not ready in {READY_SECONDS} s")
            time.sleep(0.1)
        yield url, proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        if log is not subprocess.DEVNULL:
            log.close()


class CallbackServer:
    """A partner's callback endpoint (POST /cb) on a free port, in a thread of its own, for
    as long as the `with` block lasts; `take` handles each request."""

    def __init__(self, take: Callable[[Request], Awaitable[Response]]) -> None:
        self.port = free_port()
        app = Starlette(routes=[Route("/cb", take, methods=["POST"])])
        self.server = uvicorn.Server(
            uvicorn.Config(app, port=self.port, log_level="warning", lifespan="off")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "CallbackServer":
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
