"""Console figures (issue 6) on a scratch database holding 100,000 cases:

1. page render time (p50/p95/max over sequential requests, signed in) of the operator's
   incoming list, the supervisor's deadline board (goal: p95 under 200 ms) and the
   statistics page, all for the city center's staff (at the root: they see everything);
2. the quarterly export of all those cases, as CSV and as XLSX: total time, size, and the
   API process's peak RSS while it runs (it must stream: memory flat at any size).

    python -m bench.bench_console --admin-url postgresql://postgres@127.0.0.1:5432/test \\
        --redis-url redis://127.0.0.1:6379/8

The cases are written by SQL (generate_series), not through the API: one report each, two
or three referrals in every state (some overdue, some escalated or flagged), planned visits
for the cases being followed up (some overdue), all inside the current quarter. The
service is `hotline up` (API, worker, scheduler) on that database; load generator and
service share this machine's cores.
"""

import argparse
import asyncio
import json
import os
import re
import statistics
import time
from dataclasses import dataclass

import asyncpg
import httpx
import psutil

from bench.common import percentile, process_on_port
from bench.service import running_service, scratch_database
from dispatch.console import periods
from dispatch.ops import schema
from dispatch.staff.auth import hash_password

# One data key for the seeding and the service (reporters' phones are ciphertext at rest).
os.environ.setdefault("HOTLINE_DATA_KEY", "bench-console-" + "k" * 20)

PASSWORD = "bench-console-password"
PHONE = "+8613800138000"
JURISDICTIONS = [
    "990100", "990102", "990103", "990104", "990102001", "990102002", "990103001",
    "990104001", "990102001001", "990102001002", "990102002001", "990103001001",
    "990104001001",
]  # fmt: skip
CATEGORIES = [
    "street_begging", "guardianship_absent", "left_behind", "domestic_violence",
    "sexual_abuse", "trafficking", "illness_disability", "poverty", "dropout",
    "juvenile_offending", "bullying", "mental_crisis", "other",
]  # fmt: skip
DEPARTMENTS = ["police", "civil_affairs", "education", "health", "women_federation"]

# Each referral's status, by (case id × 7 + its number) % 20 for cases still open.
SEED_SQL = """
CREATE TEMP TABLE seed_case AS
SELECT g AS n,
       $1::timestamptz + (g::float8 / $3::int) * ($2::timestamptz - $1::timestamptz) AS at
  FROM generate_series(1, $3::int) AS g;

INSERT INTO hcase (state, risk_level, categories, emergency, mandatory, jurisdiction_code,
                   created_at, updated_at)
SELECT (ARRAY['reported','assessing','handling','handling','following_up',
              'closed','closed','closed','closed','invalid'])[1 + n % 10],
       (ARRAY[NULL,'red','orange','yellow','blue'])[1 + n % 5],
       CASE WHEN n % 4 = 0
            THEN ARRAY[($4::text[])[1 + n % 13], ($4::text[])[1 + (n / 13) % 13]]
            ELSE ARRAY[($4::text[])[1 + n % 13]] END,
       n % 53 = 0, n % 3 = 0,
       ($5::text[])[1 + (n * 7) % 13],
       at, at + interval '1 hour'
  FROM seed_case ORDER BY n;

INSERT INTO report (channel, external_id, receipt_code, case_id, reporter, reporter_phone,
                    situations, categories, child, jurisdiction_code, address, description,
                    in_danger_now, fingerprint, created_at)
SELECT (ARRAY['webform','webform','sms','voice','110','12345','12355'])[1 + c.id % 7],
       'bench-' || c.id, 'B' || lpad((c.id % 10000000000)::text, 10, '0'), c.id,
       jsonb_build_object('name', '李老师', 'unit', '东湖第一小学', 'role', 'teacher',
                          'phone', '+86138' || lpad((c.id % 100000000)::text, 8, '0')),
       NULL, '{4}', c.categories,
       jsonb_build_object('name', '王小明' || c.id, 'age', 3 + c.id % 15, 'gender', 'male',
                          'address', '幸福里小区' || (c.id % 40) || '栋'),
       c.jurisdiction_code, '幸福里小区' || (c.id % 40) || '栋',
       '学生身上多处淤青，称父亲酒后殴打，已持续数周。班主任多次联系家长未果，'
         || '孩子近来常在校门口徘徊到天黑才回家。编号' || c.id,
       c.id % 53 = 0, md5('bench' || c.id), c.created_at
  FROM hcase c ORDER BY c.id;

CREATE TEMP TABLE seed_share AS
SELECT c.id AS case_id, k, c.state, c.created_at, c.jurisdiction_code,
       ($6::text[])[1 + (c.id + k) % 5] AS department,
       CASE WHEN c.state IN ('closed', 'invalid') THEN 'completed'
            -- Waiting for the center to route (re-)route: 1 in 200 returned, 1 in 1000
            -- with no office (the demo network has a city office for every department).
            WHEN (c.id * 7 + k) % 200 = 17 THEN 'returned'
            WHEN (c.id * 7 + k) % 1000 = 3 THEN 'unrouted'
            ELSE (ARRAY['queued','queued','queued','queued','queued','queued','queued',
                        'claimed','claimed','claimed','in_progress','in_progress',
                        'in_progress','in_progress','completed','completed','completed',
                        'completed','completed','queued'])[1 + (c.id * 7 + k) % 20]
       END AS status,
       (c.id * 13 + k * 5) % 400 AS spread
  FROM hcase c CROSS JOIN generate_series(0, 2) AS k
 WHERE k < 2 OR c.id % 3 = 0;

INSERT INTO referral (case_id, department_code, office_id, jurisdiction_code, role, status,
                      claimed_at, last_activity_at, claim_due_at, action_due_at,
                      delivered_at, escalation, next_check_at, outcome, return_reason,
                      created_at, updated_at)
SELECT s.case_id, s.department,
       CASE WHEN s.status = 'unrouted' THEN NULL ELSE o.id END,
       CASE WHEN s.status = 'unrouted' THEN NULL ELSE o.jurisdiction_code END,
       CASE WHEN s.k = 0 THEN 'lead' ELSE 'cooperating' END,
       s.status,
       CASE WHEN s.status IN ('claimed','in_progress','completed') THEN s.created_at END,
       s.created_at,
       -- Queued: due from 12 hours ago to 388 hours ahead (3% overdue, 1% due within 4 h).
       CASE WHEN s.status = 'queued' THEN $2::timestamptz + (s.spread - 12) * interval '1 hour'
            ELSE s.created_at + interval '1 day' END,
       CASE WHEN s.status = 'claimed' THEN $2::timestamptz + (s.spread - 12) * interval '1 hour'
            WHEN s.status IN ('in_progress', 'completed') THEN s.created_at + interval '3 days'
       END,
       s.created_at,
       CASE WHEN s.status IN ('queued','claimed') AND s.spread < 12
            THEN (ARRAY[2, 2, 3])[1 + s.spread % 3]
            WHEN s.status IN ('queued','claimed') AND s.spread < 16 THEN 1
            ELSE 0 END,
       NULL,  -- nothing for the scheduler's sweep: the bench measures pages, not escalation
       CASE WHEN s.status = 'completed' THEN '已对监护人训诫，儿童暂由亲属照料' END,
       CASE WHEN s.status = 'returned' THEN '不属于本辖区，请重新指派' END,
       s.created_at, s.created_at + interval '2 hours'
  FROM seed_share s
  LEFT JOIN LATERAL (
        SELECT o.id, o.jurisdiction_code
          FROM office o
          JOIN jurisdiction oj ON oj.code = o.jurisdiction_code
          JOIN jurisdiction cj ON cj.code = s.jurisdiction_code
         WHERE o.department_code = s.department AND cj.path LIKE oj.path || '%'
         ORDER BY length(oj.path) DESC
         LIMIT 1) o ON true
 ORDER BY s.case_id, s.k;

INSERT INTO visit (case_id, due_at, risk_before, created_at)
SELECT c.id, $2::timestamptz + ((c.id % 60) - 3) * interval '1 day', c.risk_level, c.created_at
  FROM hcase c WHERE c.state = 'following_up';
"""


async def _seal_children(conn: asyncpg.Connection) -> None:
    """Each report's reporter and child sealed on their own (db.crypto.seal_json, a nonce
    each), as intake stores them, and the child's age and sex in plain on the case (one
    report per case here), as intake keeps them for the periodic report
    (workflows.supervision.child_figures)."""
    from db.crypto import seal_json
    from workflows.supervision import child_figures

    rows = await conn.fetch("SELECT id, case_id, reporter, child FROM report")
    sealed = []
    for r in rows:
        child = json.loads(r["child"]) if r["child"] else None
        reporter = seal_json(json.loads(r["reporter"])) if r["reporter"] else None
        child_text = seal_json(child) if child else None
        sealed.append((r["id"], r["case_id"], reporter, child_text, *child_figures(child)))
    await conn.execute(
        "CREATE TEMP TABLE sealed_report (id bigint PRIMARY KEY, case_id bigint, reporter text,"
        " child text, age smallint, sex text)"
    )
    await conn.copy_records_to_table("sealed_report", records=sealed)
    await conn.execute(
        "UPDATE report r SET reporter = s.reporter, child = s.child FROM sealed_report s"
        " WHERE s.id = r.id"
    )
    await conn.execute(
        "UPDATE hcase c SET child_age = s.age, child_sex = s.sex FROM sealed_report s"
        " WHERE s.case_id = c.id AND s.child IS NOT NULL"
    )
    await conn.execute("DROP TABLE sealed_report")


async def seed(database_url: str, cases: int, *, days: int | None = None) -> dict[str, int]:
    """The cases, reports, referrals and visits, then the staff who sign in: over the
    current quarter up to an hour ago, or over the last `days` days (a test that needs
    closed days whatever the date)."""
    conn = await asyncpg.connect(database_url)
    try:
        now = time.time()
        period = periods.quarter(periods.current_quarter())
        start = period.start.timestamp() if days is None else now - days * 86400
        async with conn.transaction():
            for statement in SEED_SQL.split(";\n\n"):
                await conn.execute(
                    _bind(statement),
                    *_args(statement, start, now - 3600, cases),
                )
            # Sealed as the service stores it (db.crypto): one number, its blind index.
            from db.crypto import encrypt, phone_index

            await conn.execute(
                "UPDATE report SET reporter_phone = $1, phone_index = $2",
                encrypt(PHONE),
                phone_index(PHONE),
            )
            await _seal_children(conn)
            password = hash_password(PASSWORD)
            for role in ("operator", "supervisor"):
                await conn.execute(
                    "INSERT INTO app_user (username, password_hash, role, jurisdiction_code,"
                    " active, token_version, created_at) VALUES ($1, $2, $3, '990100', true, 0,"
                    " now())",
                    f"bench_{role}",
                    password,
                    role,
                )
        await conn.execute("ANALYZE")
        counts = {}
        for table in ("hcase", "report", "referral", "visit"):
            counts[table] = await conn.fetchval(f"SELECT count(*) FROM {table}")  # noqa: S608
        counts["to route"] = await conn.fetchval(
            "SELECT count(*) FROM referral WHERE status IN ('unrouted', 'returned')"
        )
        counts["overdue or flagged"] = await conn.fetchval(
            "SELECT count(*) FROM referral WHERE status IN ('queued','claimed')"
            " AND (escalation > 0 OR CASE WHEN status = 'queued' THEN claim_due_at"
            " ELSE action_due_at END <= now())"
        )
        return counts
    finally:
        await conn.close()


_PARAMS = re.compile(r"\$(\d)")


def _bind(statement: str) -> str:
    """asyncpg numbers parameters from $1 per statement: keep only the ones it uses, in order."""
    used = sorted({int(n) for n in _PARAMS.findall(statement)})
    return _PARAMS.sub(lambda m: f"${used.index(int(m.group(1))) + 1}", statement)


def _args(statement: str, start: float, end: float, cases: int) -> list:
    from datetime import UTC, datetime

    values = {
        1: datetime.fromtimestamp(start, UTC),
        2: datetime.fromtimestamp(end, UTC),
        3: cases,
        4: CATEGORIES,
        5: JURISDICTIONS,
        6: DEPARTMENTS,
    }
    return [values[n] for n in sorted({int(n) for n in _PARAMS.findall(statement)})]


async def signed_in(url: str, username: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=url, timeout=120)
    page = await client.get("/console/login")
    token = re.search(r'name="login_token" value="([^"]+)"', page.text).group(1)
    answer = await client.post(
        "/console/login",
        data={"username": username, "password": PASSWORD, "login_token": token},
    )
    assert answer.status_code == 303, answer.text
    return client


@dataclass
class Figure:
    name: str
    value: str


async def pages(client: httpx.AsyncClient, path: str, marker: str, count: int) -> list[float]:
    for _ in range(5):  # warm-up: connections, caches, plans
        await client.get(path)
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        response = await client.get(path)
        latencies.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200 and marker in response.text, (path, response.text[:300])
    return latencies


def page_line(name: str, ms: list[float], goal: float | None) -> Figure:
    p95 = percentile(ms, 95)
    verdict = "" if goal is None else (" ✓" if p95 < goal else f" ✗ (goal {goal:.0f} ms)")
    return Figure(
        name,
        f"p50 {statistics.median(ms):.0f} ms, p95 {p95:.0f} ms, max {max(ms):.0f} ms "
        f"({len(ms)} requests){verdict}",
    )


async def export(
    client: httpx.AsyncClient, path: str, process: psutil.Process | None
) -> tuple[float, float, int, int, int]:
    """(seconds to the first byte, total seconds, bytes, peak RSS, RSS before)."""
    before = process.memory_info().rss if process else 0
    peak = before
    done = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not done.is_set():
            if process:
                peak = max(peak, process.memory_info().rss)
            await asyncio.sleep(0.02)

    sampler = asyncio.create_task(sample())
    started = time.perf_counter()
    first = None
    size = 0
    async with client.stream("GET", path) as response:
        assert response.status_code == 200, path
        async for chunk in response.aiter_bytes():
            first = first or time.perf_counter() - started
            size += len(chunk)
    total = time.perf_counter() - started
    done.set()
    await sampler
    return first or total, total, size, peak, before


async def measure(url: str, requests: int) -> list[Figure]:
    figures = []
    operator = await signed_in(url, "bench_operator")
    supervisor = await signed_in(url, "bench_supervisor")
    try:
        ms = await pages(operator, "/console/operator", 'id="incoming"', requests)
        figures.append(page_line("operator: incoming list", ms, 200))
        ms = await pages(supervisor, "/console/board", 'id="flagged"', requests)
        figures.append(page_line("supervisor: deadline board", ms, 200))
        ms = await pages(supervisor, "/console/stats", 'id="case-total"', max(20, requests // 4))
        figures.append(page_line("supervisor: statistics (quarter)", ms, None))

        quarter = periods.current_quarter()
        process = process_on_port(httpx.URL(url).port)
        if process:
            # `hotline up` serves the API in its own process; the worker and scheduler are
            # its children and are not counted.
            process = psutil.Process(process.pid)
        for fmt in ("csv", "xlsx"):
            first, total, size, peak, before = await export(
                supervisor, f"/console/reports/quarterly.{fmt}?quarter={quarter}", process
            )
            figures.append(
                Figure(
                    f"quarterly export {quarter}, {fmt.upper()}",
                    f"{total:.1f} s total ({first:.1f} s to first byte), "
                    f"{size / 2**20:.1f} MiB; API RSS {before / 2**20:.0f} MiB before, "
                    f"{peak / 2**20:.0f} MiB peak (+{(peak - before) / 2**20:.0f} MiB)",
                )
            )
    finally:
        await operator.aclose()
        await supervisor.aclose()
    return figures


async def stats_scopes(
    database_url: str, requests: int, baseline: str | None = None
) -> list[Figure]:
    """The statistics figures (`dispatch.console.stats.figures`, the current quarter)
    timed in-process per scope, in rounds that interleave the ways of counting: live (the
    statement with no day counted: what the page ran before the tally), tallied (after the
    scheduler's passes have counted every closed day), and, with `baseline`, another
    checkout's stats.py (e.g. main's) loaded from that path, checked once to give the very
    figures the tallied read gives."""
    import importlib.util

    from sqlalchemy import text

    from db import clock
    from db.engine import make_engine, make_sessionmaker
    from dispatch.console import stats, stats_tally
    from dispatch.staff.auth import Principal

    engine = make_engine(database_url, pool_size=2)
    sessions = make_sessionmaker(engine)
    rows: list[Figure] = []
    try:
        started = time.perf_counter()
        passes = 0
        while await stats_tally.build(sessions, clock.now()):
            passes += 1
        async with engine.connect() as conn:  # what autovacuum does soon after a pass
            await conn.execute(text("ANALYZE stats_case_tally, stats_referral_tally, stats_day"))
            await conn.commit()
        rows.append(
            Figure(
                "stats tally: first count",
                f"{passes} passes, {time.perf_counter() - started:.1f} s",
            )
        )
        async with sessions() as session, session.begin():  # a late change to a closed day
            await session.execute(
                text(
                    "UPDATE hcase SET risk_level = CASE WHEN risk_level = 'red' THEN 'blue'"
                    " ELSE 'red' END WHERE id = (SELECT min(id) FROM hcase"
                    " WHERE created_at < now() - interval '2 days')"
                )
            )
        started = time.perf_counter()
        again = await stats_tally.build(sessions, clock.now())
        rows.append(
            Figure(
                "stats tally: a pass after a change",
                f"{len(again)} day counted again, {(time.perf_counter() - started) * 1000:.0f} ms",
            )
        )
        async with sessions() as session:
            paths = dict((await session.execute(text("SELECT code, path FROM jurisdiction"))).all())
        scopes = {
            "city center": Principal(1, "c", "supervisor", None, "990100", paths["990100"]),
            "district center": Principal(2, "d", "supervisor", None, "990102", paths["990102"]),
            "city police": Principal(3, "p", "supervisor", "police", "990100", paths["990100"]),
            "district police": Principal(4, "q", "supervisor", "police", "990102", paths["990102"]),
        }
        period = periods.quarter(periods.current_quarter())

        async def live(session, principal):
            await session.execute(text("SET LOCAL jit = off"))
            return (await session.execute(stats._figures_statement(principal, period, []))).all()

        ways = {"live": live, "tallied": lambda s, p: stats.figures(s, p, period)}
        if baseline:
            spec = importlib.util.spec_from_file_location("baseline_stats", baseline)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            ways["baseline"] = lambda s, p: module.figures(s, p, period)
        for name, principal in scopes.items():
            async with sessions() as session, session.begin():
                shown = {
                    w: await call(session, principal) for w, call in ways.items() if w != "live"
                }
            first = next(iter(shown.values()))
            assert all(_same(f, first) for f in shown.values()), name
            ms: dict[str, list[float]] = {w: [] for w in ways}
            for _ in range(requests + 2):  # the first two rounds warm up
                for way, call in ways.items():
                    async with sessions() as session, session.begin():
                        at = time.perf_counter()
                        await call(session, principal)
                        ms[way].append((time.perf_counter() - at) * 1000)
            for way, values in ms.items():
                values = values[2:]
                rows.append(
                    Figure(
                        f"stats {name}, {way}",
                        f"p50 {statistics.median(values):.0f} ms, p95 "
                        f"{percentile(values, 95):.0f} ms, max {max(values):.0f} ms "
                        f"({len(values)} calls); {first.cases} cases",
                    )
                )
    finally:
        await engine.dispose()
    return rows


def _same(a, b) -> bool:
    """Two Figures with the same counts (of whichever module's classes)."""

    def flat(f):
        return (
            f.cases,
            [(b.title, sorted((r.label, r.count) for r in b.rows)) for b in f.breakdowns],
            sorted((d.department, d.total, sorted(d.by_status.items())) for d in f.departments),
        )

    return flat(a) == flat(b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--admin-url", required=True, help="a PostgreSQL database to connect to")
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument(
        "--stats-scopes",
        type=int,
        metavar="N",
        default=0,
        help="instead of the pages: time the statistics figures in-process, N rounds per "
        "scope (city and district center, city and district police), live and tallied",
    )
    parser.add_argument(
        "--baseline-stats",
        metavar="PATH",
        help="with --stats-scopes: also time this stats.py's figures (e.g. main's checkout)",
    )
    args = parser.parse_args()
    with scratch_database(args.admin_url) as database_url:
        schema.migrate(database_url)
        started = time.perf_counter()
        counts = asyncio.run(seed(database_url, args.cases))
        seeded = time.perf_counter() - started
        rows = [Figure("seeded", f"{counts} in {seeded:.0f} s")]
        if args.stats_scopes:
            rows += asyncio.run(stats_scopes(database_url, args.stats_scopes, args.baseline_stats))
        else:
            with running_service(database_url, args.redis_url) as url:
                rows += asyncio.run(measure(url, args.requests))
    width = max(len(r.name) for r in rows)
    print(f"\n{'figure'.ljust(width)} | value")
    print(f"{'-' * width}-+-{'-' * 60}")
    for row in rows:
        print(f"{row.name.ljust(width)} | {row.value}")


if __name__ == "__main__":
    main()
