"""What the background jobs of one signed 12345 forward cost, in process and by topic
(issue 16): round trips to PostgreSQL, statements that write, and the worker's CPU.

The app takes N forwards (the burst's orders, `dispatch.ops.simulate.work_order`) with no
worker running; then this process runs the outbox's rows itself, wave by wave in id order,
through the worker's own runner (`dispatch.worker.jobs.run_job`: the "already done?" check,
the handler, the "done" mark), with the partner's callback endpoint simulated here. No
Redis or relay in between: what is counted is the jobs' own work.

    python -m bench.bench_jobs --admin-url postgresql://postgres@127.0.0.1:5432/test \\
        --redis-url redis://127.0.0.1:6379 [--orders 200] [--liaisons]

Counts, unlike rates, do not depend on the machine's load: they are the stable figure to
compare; CPU is process time of this process (PostgreSQL's own is not in it).
"""

import asyncio
import json
import os
import random
import re
import secrets
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
from sqlalchemy import event

from bench.bench_forwards import SECRET, add_partner
from bench.common import bench_parser, in_process_settings
from bench.service import CallbackServer, redis_database, scratch_database
from channels.partners.signature import signed_headers
from db.engine import APP_ROLE, engine_of, make_engine, make_sessionmaker
from db.handlers import JobContext
from dispatch.ops import schema
from dispatch.ops.simulate import work_order

# An UPDATE's table may carry an alias (`UPDATE notification AS n SET`).
_WRITE = re.compile(
    r"\b(INSERT\s+INTO|UPDATE\s+\w+(?:\s+(?:AS\s+)?\w+)?\s+SET|DELETE\s+FROM)\b", re.IGNORECASE
)


@dataclass
class Tally:
    """Round trips (each message exchange with the server), the statements that write and
    the writes in them (an INSERT, UPDATE or DELETE, a statement's CTEs each counted)."""

    round_trips: int = 0
    writes: int = 0
    writing: int = 0
    statements: list[str] = field(default_factory=list)

    def saw(self, query: str) -> None:
        self.round_trips += 1
        self.statements.append(" ".join(query.split())[:160])
        found = len(_WRITE.findall(query))
        self.writes += found
        self.writing += found > 0


TALLY = Tally()


class _Counted:
    """asyncpg's protocol object, counting what goes to the server: every path (SQLAlchemy's
    prepared statements, raw fetches, BEGIN/COMMIT) goes through one of these methods."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def query(self, query: str, *args: Any, **kwargs: Any) -> Any:
        TALLY.saw(query)
        return self._inner.query(query, *args, **kwargs)

    def prepare(self, name: Any, query: str, *args: Any, **kwargs: Any) -> Any:
        TALLY.round_trips += 1
        return self._inner.prepare(name, query, *args, **kwargs)

    def bind_execute(self, state: Any, *args: Any, **kwargs: Any) -> Any:
        TALLY.saw(state.query)
        return self._inner.bind_execute(state, *args, **kwargs)

    def bind_execute_many(self, state: Any, *args: Any, **kwargs: Any) -> Any:
        TALLY.saw(state.query)
        return self._inner.bind_execute_many(state, *args, **kwargs)

    def bind(self, state: Any, *args: Any, **kwargs: Any) -> Any:
        TALLY.saw(state.query)
        return self._inner.bind(state, *args, **kwargs)


class CountedConnection(asyncpg.Connection):
    def __init__(self, protocol: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(protocol, *args, **kwargs)
        self._protocol = _Counted(self._protocol)


def counted_context(database_url: str) -> JobContext:
    """The worker's context (`dispatch.worker.jobs._Worker`), on counted connections."""
    from db.settings import get_settings

    engine = make_engine(database_url, pool_size=2, role=APP_ROLE)

    @event.listens_for(engine.sync_engine, "do_connect")
    def _counted(dialect, record, cargs, cparams) -> None:  # noqa: ANN001
        cparams["connection_class"] = CountedConnection

    return JobContext(make_sessionmaker(engine), get_settings())


async def post_forwards(database_url: str, redis_url: str, key: str, n: int) -> None:
    from dispatch.app import create_app

    settings = in_process_settings().model_copy(update={"hotline_secret_key": key})
    app = create_app(settings, database_url=database_url, redis_url=redis_url)
    rng = random.Random(1)
    run = secrets.token_hex(3)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            for i in range(n):
                order = work_order("12345", f"J-{run}-{i}", rng)
                raw = json.dumps(order, ensure_ascii=False).encode()
                headers = {"content-type": "application/json", **signed_headers(SECRET, raw)}
                answer = await c.post("/api/v1/forwards/12345", content=raw, headers=headers)
                assert answer.status_code == 202, answer.text


async def add_liaisons(database_url: str) -> int:
    """One active liaison per office, so routing has someone to notify."""
    conn = await asyncpg.connect(database_url)
    try:
        return len(
            await conn.fetch(
                "INSERT INTO app_user (username, role, department_code,"
                " jurisdiction_code, active, password_hash, token_version)"
                " SELECT 'liaison-' || o.id, 'liaison', o.department_code,"
                " o.jurisdiction_code, true, 'x', 0 FROM office o RETURNING id"
            )
        )
    finally:
        await conn.close()


async def run_outbox(
    database_url: str, show: bool = False
) -> dict[str, tuple[int, int, int, int, float]]:
    """Run every outbox row until none is left; per topic (jobs, round trips, writing
    statements, writes, CPU s)."""
    from dispatch.worker.jobs import handlers, run_job

    ctx = counted_context(database_url)
    table = handlers()
    figures: dict[str, list] = defaultdict(lambda: [0, 0, 0, 0, 0.0])
    conn = await asyncpg.connect(database_url)
    try:
        while True:
            rows = await conn.fetch(
                "SELECT id, topic, payload::text AS payload FROM outbox"
                " WHERE done_at IS NULL AND available_at <= now() ORDER BY id"
            )
            if not rows:
                break
            for row in rows:
                TALLY.round_trips = TALLY.writes = TALLY.writing = 0
                TALLY.statements = []
                started = time.process_time()
                await run_job(ctx, table, row["topic"], json.loads(row["payload"]), row["id"])
                spent = time.process_time() - started
                mine = figures[row["topic"]]
                if show and not mine[0]:
                    print(
                        f"{row['topic']}: {TALLY.round_trips} round trips",
                        *TALLY.statements,
                        sep="\n  ",
                    )
                mine[0] += 1
                mine[1] += TALLY.round_trips
                mine[2] += TALLY.writing
                mine[3] += TALLY.writes
                mine[4] += spent
    finally:
        await conn.close()
        await engine_of(ctx.sessions).dispose()
    return {topic: tuple(v) for topic, v in figures.items()}


def main() -> None:
    parser = bench_parser(__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--show", action="store_true", help="print each topic's first job's SQL")
    parser.add_argument("--liaisons", action="store_true", help="one liaison per office")
    args = parser.parse_args()
    with (
        scratch_database(args.admin_url) as database_url,
        redis_database(args.redis_url) as redis_url,
        CallbackServer(_ok) as partner,
    ):
        schema.migrate(database_url)
        # One key for the app (it opens the partner's secret to check signatures) and the
        # jobs (the delivery job signs with it): the jobs read it from the environment.
        os.environ["HOTLINE_SECRET_KEY"] = key = "bench-" + secrets.token_hex(8)
        asyncio.run(add_partner(database_url, key, f"http://127.0.0.1:{partner.port}/cb"))
        liaisons = asyncio.run(add_liaisons(database_url)) if args.liaisons else 0
        asyncio.run(post_forwards(database_url, redis_url, key, args.orders))
        figures = asyncio.run(run_outbox(database_url, args.show))
    n = args.orders
    print(f"{n} signed 12345 forwards, {liaisons} liaisons; per forward, by topic:")
    total = [0.0] * 5
    for topic, values in sorted(figures.items()):
        print(_line(topic, values, n))
        total = [t + v for t, v in zip(total, values, strict=True)]
    print(_line("all", total, n))


def _line(topic: str, values: tuple | list, n: int) -> str:
    jobs, trips, writing, writes, cpu = (v / n for v in values)
    return (
        f"  {topic:16} {jobs:5.2f} jobs {trips:6.1f} round trips {writing:5.1f} writing"
        f" statements ({writes:4.1f} writes) {1000 * cpu:6.2f} ms CPU"
    )


async def _ok(request: Any) -> Any:
    from starlette.responses import Response

    await request.body()
    return Response(status_code=200)


if __name__ == "__main__":
    main()
