"""Matching at scale, for bench_matching --scale: 100,000 cases, 150,000 children.

Fills an empty database with synthetic reports and children written the ways the labelled
set writes them (names drawn so that namesakes and same-sound names are common, estates and
buildings, villages and groups, a year and a half of dates), then times: building the
blocking keys of every report and child (`hotline children keys`), one `similar` call for
random cases (p50/p95/max, the same service function the API calls), and the ledger import.
"""

import asyncio
import csv
import io
import random
import secrets
import statistics
import time
from datetime import UTC, date, datetime, timedelta

import asyncpg
import psutil

from db.crypto import encrypt, name_index, seal_json
from db.engine import make_engine, make_sessionmaker
from db.models import Case
from dispatch.children import ledger, matching_service
from dispatch.ops import schema
from dispatch.staff.auth import Principal

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘"
GIVEN = "子梓浩宇轩涵欣怡佳琪思雨晨俊杰明华婷雪娜鑫磊强伟芳静丽敏军勇艳秀英玉兰"
# A city's worth of estates and villages (about 800 estates, 150 villages).
ESTATES = [a + b + c for a in "幸福光明和平阳光东湖南山青石金色翠锦绣春华秋实"
           for b in "安康泰瑞祥和" for c in ("里", "园", "苑", "城", "居", "湾")][:800]
VILLAGES = [a + b + "村" for a in "李张王刘陈杨赵吴周孙马朱胡郭" for b in "家庄湾岭坪塘桥坝山河"]
PLACES = ["990102001001", "990102001002", "990102002001", "990103001001", "990104001001"]
CATEGORIES = ["domestic_violence", "left_behind", "dropout", "poverty", "bullying",
              "guardianship_absent", "mental_crisis", "street_begging"]
CHANNELS = ["webform", "12345", "110", "sms", "12355", "voice"]


def _name(rng: random.Random) -> str | None:
    if rng.random() < 0.15:
        return None
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))


def _address(rng: random.Random) -> str:
    if rng.random() < 0.6:
        return f"{rng.choice(ESTATES)}小区{rng.randint(1, 30)}栋"
    return f"{rng.choice(VILLAGES)}{rng.randint(1, 12)}组"


async def fill(url: str, cases: int, children: int) -> None:
    rng = random.Random(12)
    conn = await asyncpg.connect(url)
    try:
        now = datetime.now(UTC)
        rows = []
        for _ in range(cases):
            at = now - timedelta(minutes=rng.randint(0, 540 * 24 * 60))
            rows.append((rng.choice(("reported", "assessing", "handling", "closed")),
                         [rng.choice(CATEGORIES)], rng.choice(PLACES), at, at, False, False))
        await conn.copy_records_to_table(
            "hcase", records=rows,
            columns=["state", "categories", "jurisdiction_code", "created_at", "updated_at",
                     "emergency", "mandatory"])
        ids = [r["id"] for r in await conn.fetch("SELECT id FROM hcase ORDER BY id")]
        reports = []
        for n, (case_id, row) in enumerate(zip(ids, rows, strict=True)):
            name = _name(rng)
            child = {"name": name, "age": rng.randint(2, 17), "gender": rng.choice(
                ("male", "female"))} if name else {}
            channel = rng.choice(CHANNELS)
            reports.append((
                channel, f"bench-{n}", secrets.token_hex(6).upper(), case_id,
                f"+86138{rng.randint(0, 99_999_999):08d}", row[1],
                seal_json(child), name_index(name), row[2], _address(rng),
                "群众反映孩子无人照看，经常挨打。", row[3], False))
        await conn.copy_records_to_table(
            "report", records=reports,
            columns=["channel", "external_id", "receipt_code", "case_id", "reporter_phone",
                     "categories", "child", "name_index", "jurisdiction_code", "address",
                     "description",
                     "created_at", "in_danger_now"])
        kids = []
        for _ in range(children):
            kid = _name(rng) or "无名"
            kids.append((encrypt(kid), name_index(kid), rng.choice(("male", "female")),
                         rng.randint(2, 17), now.date(), _address(rng), rng.choice(PLACES)))
        await conn.copy_records_to_table(
            "child", records=kids,
            columns=["name", "name_index", "gender", "age", "age_given_on", "address",
                     "jurisdiction_code"])
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def measure(url: str, cases: int, children: int, *, keyed: bool = False) -> None:
    engine = make_engine(url, pool_size=2)
    sessions = make_sessionmaker(engine)
    if not keyed:
        await build_keys(sessions)
    await similar_latency(url, sessions, cases, children)
    await engine.dispose()


async def build_keys(sessions) -> None:
    started = time.perf_counter()
    async with sessions() as session, session.begin():
        n = await matching_service.backfill_keys(session)
    reports_s = time.perf_counter() - started
    started = time.perf_counter()
    async with sessions() as session, session.begin():
        m = await matching_service.backfill_child_keys(session)
    children_s = time.perf_counter() - started
    print(f"blocking keys: {n} reports in {reports_s:.1f} s ({n / reports_s:.0f}/s), "
          f"{m} children in {children_s:.1f} s ({m / children_s:.0f}/s)")


async def similar_latency(url: str, sessions, cases: int, children: int) -> None:
    raw = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    await raw.execute("VACUUM ANALYZE report")
    await raw.execute("VACUUM ANALYZE child")
    await raw.close()
    center = Principal(id=0, username="bench", role="caseworker", department=None,
                       jurisdiction="990100", scope_path="990100/")
    rng = random.Random(7)
    picks = [rng.randint(1, cases) for _ in range(300)]
    latencies, cpu, found = [], [], []
    for case_id in picks:
        async with sessions() as session, session.begin():
            case = await session.get(Case, case_id)
            t, c = time.perf_counter(), time.process_time()
            result = await matching_service.similar_cases(session, center, case)
            latencies.append((time.perf_counter() - t) * 1000)
            cpu.append((time.process_time() - c) * 1000)
            found.append(len(result))

    def p(values: list[float], q: float) -> float:
        ordered = sorted(values[20:])  # the first calls warm the caches
        return ordered[min(len(ordered) - 1, int(len(ordered) * q))]

    print(f"similar at {cases} cases / {children} children: p50 {p(latencies, 0.5):.1f} ms, "
          f"p95 {p(latencies, 0.95):.1f} ms, max {p(latencies, 1):.1f} ms (goal p95 < 50 ms; "
          f"load average {psutil.getloadavg()[0]:.1f} on {psutil.cpu_count()} cores); the "
          f"service's own CPU p50 {p(cpu, 0.5):.1f} ms, p95 {p(cpu, 0.95):.1f} ms (the rest is "
          f"PostgreSQL and waiting); {statistics.mean(found):.1f} suggestions per call")


def run(
    url: str | None, cases: int, children: int, ledger_rows: int, *, reuse: bool = False
) -> None:
    if not url:
        raise SystemExit("--scale needs --database-url of an empty database")
    if not reuse:
        schema.migrate(url)
        started = time.perf_counter()
        asyncio.run(fill(url.replace("postgresql+asyncpg://", "postgresql://"), cases, children))
        print(f"filled {cases} cases and {children} children in "
              f"{time.perf_counter() - started:.0f} s")
    asyncio.run(measure(url, cases, children, keyed=reuse))
    asyncio.run(ledger_import(url, ledger_rows))


def ledger_file(rows: int, seed: int = 20) -> bytes:
    """A district ledger of `rows` children: a tenth of them already on file (by name,
    birth date and address as the bench's children are written), the rest new."""
    rng = random.Random(seed)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["姓名", "身份证号", "性别", "出生日期", "户籍地", "现住址", "困境类型",
                     "监护人姓名", "监护人关系", "监护人电话", "监护状况", "学校", "辖区"])
    for n in range(rows):
        birth = date(2008, 1, 1) + timedelta(days=rng.randint(0, 365 * 16))
        writer.writerow([
            _name(rng) or "无名", f"990102{birth:%Y%m%d}{n % 10000:04d}", rng.choice("男女"),
            birth.isoformat(), "东湖市湖东区", _address(rng),
            rng.choice(("留守流动", "监护缺失", "家庭贫困")), "某某", "母亲",
            f"137{rng.randint(0, 99_999_999):08d}", rng.choice(("外出务工", "在家监护")),
            "东湖第一小学", "幸福街道幸福里社区",
        ])
    return out.getvalue().encode("utf-8-sig")


async def ledger_import(url: str, rows: int) -> None:
    """A dry run and an import of a `rows`-row ledger: time, and the process's peak RSS
    growth for a quarter of the rows and for all of them (flat: about the same)."""
    engine = make_engine(url, pool_size=2)
    sessions = make_sessionmaker(engine)
    center = Principal(id=0, username="bench", role="caseworker", department=None,
                       jurisdiction="990100", scope_path="990100/")
    process = psutil.Process()

    async def peak_rss(work) -> tuple[object, int]:
        """The work's result and the process's peak RSS growth while it ran."""
        before = process.memory_info().rss
        peak, done = [before], asyncio.Event()

        async def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], process.memory_info().rss)
                await asyncio.sleep(0.05)

        sampler = asyncio.create_task(sample())
        try:
            return await work, peak[0] - before
        finally:
            done.set()
            await sampler

    for count, dry in ((rows // 4, True), (rows, True), (rows, False)):
        content = ledger_file(count, seed=count + dry)
        started, cpu = time.perf_counter(), time.process_time()
        report, grown = await peak_rss(ledger.import_file(
            sessions, center, "bench.csv", content, dry_run=dry, jurisdiction="990102001001"))
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        print(f"ledger {'dry run' if dry else 'import'} of {count} rows: {elapsed:.1f} s "
              f"(process CPU {cpu:.1f} s; goal < 60 s), peak RSS +{grown / 2**20:.0f} MiB, "
              f"counts {report.counts}")
    await engine.dispose()
