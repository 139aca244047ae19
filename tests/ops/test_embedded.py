"""The embedded servers: real PostgreSQL and Redis that start, keep data and leave nothing.

Plain sync tests; each works in a short dir under /tmp (unix socket paths are limited) and a
finalizer kills whatever a failing test left running there.
"""

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import psutil
import pytest
from redis import Redis

from dispatch.ops.embedded import EmbeddedServerError, EmbeddedServers, EmbeddedServersBusy
from tests.fixtures import raw_sql
from tests.fixtures.processes import leftovers

ROOT = Path(__file__).resolve().parents[2]


def redis_children(data_dir: Path) -> list[psutil.Process]:
    """Our redis-server children working in data_dir (the test session may run its own)."""
    found = []
    for p in psutil.Process().children(recursive=True):
        try:
            if (
                p.name().startswith("redis-server")
                and p.status() != psutil.STATUS_ZOMBIE
                and Path(p.cwd()).is_relative_to(data_dir)
            ):
                found.append(p)
        except psutil.Error:
            continue
    return found


@pytest.fixture
def data_dir(request: pytest.FixtureRequest) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="he", dir="/tmp"))

    def clean() -> None:
        for proc in leftovers(path):
            proc.kill()
        psutil.wait_procs(leftovers(path), timeout=10)
        shutil.rmtree(path, ignore_errors=True)

    request.addfinalizer(clean)
    return path


@pytest.fixture
def servers(data_dir: Path) -> Iterator[EmbeddedServers]:
    embedded = EmbeddedServers(data_dir / ".hotline")
    try:
        yield embedded
    finally:
        embedded.stop()


def write(embedded: EmbeddedServers, value: str) -> None:
    async def go() -> None:
        conn = await asyncpg.connect(embedded.database_url)
        try:
            await conn.execute("CREATE TABLE IF NOT EXISTS kept (value text)")
            await conn.execute("INSERT INTO kept VALUES ($1)", value)
        finally:
            await conn.close()

    asyncio.run(go())
    with Redis.from_url(embedded.redis_url) as redis:
        redis.rpush("queue", value)


def read(embedded: EmbeddedServers) -> tuple[list[str], list[str]]:
    async def go() -> list[str]:
        conn = await asyncpg.connect(embedded.database_url)
        try:
            return [r["value"] for r in await conn.fetch("SELECT value FROM kept")]
        finally:
            await conn.close()

    rows = asyncio.run(go())
    with Redis.from_url(embedded.redis_url, decode_responses=True) as redis:
        return rows, redis.lrange("queue", 0, -1)


def test_start_answer_stop_leave_nothing_and_keep_data(servers: EmbeddedServers) -> None:
    data_dir = servers.data_dir
    servers.start()
    servers.start()  # idempotent
    assert servers.database_url is not None and servers.database_url.startswith("postgresql://")
    assert servers.redis_url == f"unix://{data_dir}/redis/redis.sock"

    async def select_one() -> int:
        conn = await asyncpg.connect(servers.database_url)
        try:
            return await conn.fetchval("SELECT 1")
        finally:
            await conn.close()

    assert asyncio.run(select_one()) == 1
    with Redis.from_url(servers.redis_url) as redis:
        assert redis.ping()
    write(servers, "one")

    servers.stop()
    assert servers.database_url is None and servers.redis_url is None
    assert leftovers(data_dir) == []
    assert redis_children(data_dir) == []
    servers.stop()  # twice is fine

    servers.start()
    assert read(servers) == (["one"], ["one"])


def test_sqlalchemy_asyncpg_dialect_accepts_the_url(servers: EmbeddedServers) -> None:
    from sqlalchemy import text

    from db.engine import make_engine

    servers.start()
    assert servers.database_url is not None

    async def go() -> str:
        engine = make_engine(servers.database_url, pool_size=1)
        try:
            async with engine.connect() as conn:
                return (await conn.execute(text("SELECT current_user"))).scalar_one()
        finally:
            await engine.dispose()

    assert asyncio.run(go()) == "postgres"


def test_second_owner_of_a_dir_in_use_is_refused(servers: EmbeddedServers) -> None:
    servers.start()
    other = EmbeddedServers(servers.data_dir)
    with pytest.raises(EmbeddedServersBusy, match=str(os.getpid())):
        other.start()
    other.stop()  # never started: a no-op
    assert len(redis_children(servers.data_dir)) == 1
    with Redis.from_url(servers.redis_url) as redis:
        assert redis.ping()


def test_only_what_is_asked_for(data_dir: Path) -> None:
    with EmbeddedServers(data_dir, postgres=False) as embedded:
        assert embedded.database_url is None
        with Redis.from_url(embedded.redis_url) as redis:
            assert redis.ping()
    assert not (data_dir / "pg").exists()
    assert leftovers(data_dir) == []


def test_servers_of_a_crashed_owner_are_taken_over(data_dir: Path) -> None:
    """A SIGKILLed owner leaves both servers running; the next owner stops them for good."""
    home = data_dir / ".hotline"
    script = textwrap.dedent(
        f"""
        import os, signal
        from pathlib import Path
        from dispatch.ops.embedded import EmbeddedServers
        e = EmbeddedServers(Path({str(home)!r}))
        e.start()
        from redis import Redis
        Redis.from_url(e.redis_url).rpush("queue", "before crash")
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    crashed = subprocess.run([sys.executable, "-c", script], cwd=ROOT, timeout=180)
    assert crashed.returncode == -signal.SIGKILL
    stale = leftovers(home)
    assert {p.name().split()[0] for p in stale} >= {"postgres", "redis-server"}

    with EmbeddedServers(home) as embedded:
        with Redis.from_url(embedded.redis_url, decode_responses=True) as redis:
            assert redis.lrange("queue", 0, -1) == ["before crash"]
        running = [p for p in leftovers(home) if p.name().startswith("redis-server")]
        assert [p.pid for p in running] == [p.pid for p in redis_children(home)]
    assert leftovers(home) == []


OWNER = """
import signal, sys, time
from pathlib import Path
from dispatch.ops.embedded import EmbeddedServers

def raise_exit(signum, frame):
    raise SystemExit(128 + signum)

signal.signal(signal.SIGTERM, raise_exit)  # as `hotline up` does
embedded = EmbeddedServers(Path(sys.argv[1]))
embedded.start()
print("ready", flush=True)
if sys.argv[2] == "atexit":
    sys.exit(0)  # no stop(): the atexit hook must do it
try:
    time.sleep(60)
finally:
    embedded.stop()
"""


@pytest.mark.parametrize("ending", ["atexit", "ctrl-c", "sigterm"])
def test_every_way_out_stops_both_servers(data_dir: Path, ending: str) -> None:
    """Ctrl-C reaches the whole foreground process group; Redis runs in a session of its
    own so that it is shut down by us, in order, rather than by the terminal's SIGINT."""
    home = data_dir / ".hotline"
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER, str(home), ending],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert owner.stdout is not None
        assert owner.stdout.readline().strip() == "ready"
        if ending == "ctrl-c":
            os.killpg(owner.pid, signal.SIGINT)
        elif ending == "sigterm":
            owner.send_signal(signal.SIGTERM)
        owner.wait(timeout=180)  # a deadline for a hang (a busy host stops PostgreSQL slowly)
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
    assert leftovers(home) == []
    log = (home / "redis" / "redis.log").read_text()
    assert "User requested shutdown" in log and "Received SIGINT" not in log


def test_long_data_dir_moves_sockets_elsewhere(data_dir: Path) -> None:
    home = data_dir / ("x" * 40) / ("y" * 40) / ".hotline"
    with EmbeddedServers(home) as embedded:
        assert embedded.redis_url is not None
        assert embedded.database_url is not None
        assert str(home) not in embedded.redis_url
        write(embedded, "long")
        assert read(embedded) == (["long"], ["long"])
    assert leftovers(home) == []


def test_longish_data_dir_keeps_sockets_inside(data_dir: Path) -> None:
    home = data_dir / ("x" * 16) / ".hotline"
    with EmbeddedServers(home) as embedded:
        password = (home / "pg_password").read_text().strip()
        assert embedded.database_url == (
            f"postgresql://postgres:{password}@/postgres?host={home}/pg"
        )
        assert embedded.redis_url == f"unix://{home}/redis/redis.sock"
        write(embedded, "ok")
    assert leftovers(home) == []


def test_postgres_stops_even_when_pgserver_declines_to(data_dir: Path) -> None:
    """pgserver's cleanup() stops the server only if no other live pid holds a handle."""
    embedded = EmbeddedServers(data_dir, redis=False)
    try:
        embedded.start()
        (data_dir / "pg" / ".handle_pids.json").write_text(f"[1, {os.getpid()}]")
    finally:
        embedded.stop()
    assert leftovers(data_dir) == []


def test_failed_start_says_why_and_undoes_everything(data_dir: Path) -> None:
    (data_dir / "redis" / "redis.sock").mkdir(parents=True)  # redis-server cannot bind
    embedded = EmbeddedServers(data_dir)
    with pytest.raises(EmbeddedServerError, match="(?s)redis-server exited.*Unix socket"):
        embedded.start()
    assert embedded.database_url is None
    assert leftovers(data_dir) == []
    assert redis_children(data_dir) == []


def test_embedded_postgresql_wants_its_password(servers: EmbeddedServers) -> None:
    """pgserver starts on trust (any local user is the superuser); ours asks a password."""
    servers.start()
    url = servers.database_url
    assert url is not None and "postgres:" in url
    without = url.replace(url[url.index("postgres:") : url.index("@")], "postgres")

    async def connect(to: str) -> str:
        return await raw_sql.fetchval(to, "SELECT current_user")

    with pytest.raises(asyncpg.PostgresError, match="password"):
        asyncio.run(connect(without))
    assert asyncio.run(connect(url)) == "postgres"
    assert (servers.data_dir / "pg_password").stat().st_mode & 0o777 == 0o600
    # Still so after a restart, with the same URL.
    servers.stop()
    servers.start()
    assert servers.database_url == url
    with pytest.raises(asyncpg.PostgresError, match="password"):
        asyncio.run(connect(without))
