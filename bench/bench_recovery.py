"""Recovery and job economy (issue 16), on `hotline up` with a scratch database:

1. jobs per intake: outbox rows (= RQ jobs) written per intake now, and what the design
   before (one job per referral and one per notification) would have written for the same
   cases, derived from the same run's referrals and notifications;
2. memory (RSS) of each process of `hotline up`'s tree during a burst of intakes;
3. recovery: the worker SIGKILLed `--kills` times in a row while mandatory reports arrive;
   time from the last kill to the last police copy delivered.

    python -m bench.bench_recovery --admin-url postgresql://postgres@127.0.0.1:5432/test \\
        --redis-url redis://127.0.0.1:6379/0
"""

import asyncio
import secrets
import threading
import time
from collections import defaultdict

import asyncpg
import httpx
import psutil

from bench.common import bench_parser
from bench.service import redis_database, running_tree, scratch_database
from dispatch.staff.auth import hash_password

REPORT = {
    "reporter": {"role": "teacher", "name": "张老师", "phone": "13800138000"},
    "situations": [4],  # a mandatory report: police at once
    "categories": ["domestic_violence"],
    "jurisdiction": "990102001001",
    "description": "学生称父亲酒后殴打",
}
LIAISONS = [("police", "990102001"), ("civil_affairs", "990102"), ("education", "990102")]


def _kind(proc: psutil.Process) -> str:
    args = proc.cmdline()
    # RQ renames a worker "rq:worker:…" (setproctitle) once it has started.
    if args[-1:] == ["worker"] or (args[:1] and args[0].startswith("rq:worker")):
        return "worker"
    if args[-1:] == ["scheduler"]:
        return "scheduler"
    if "multiprocessing" in " ".join(args):
        return "api (uvicorn process)" if "spawn_main" in " ".join(args) else "mp tracker"
    return "hotline up (supervisor + api)"


class MemorySampler(threading.Thread):
    """Largest RSS seen per process kind while running."""

    def __init__(self, root: int) -> None:
        super().__init__(daemon=True)
        self.root, self.halt = psutil.Process(root), threading.Event()
        self.peak: dict[str, float] = defaultdict(float)

    def run(self) -> None:
        while not self.halt.wait(0.2):
            for proc in [self.root, *self.root.children()]:
                try:
                    mb = proc.memory_info().rss / 2**20
                    kind = _kind(proc)
                    self.peak[kind] = max(self.peak[kind], mb)
                except psutil.Error:
                    pass


async def _post(client: httpx.AsyncClient, n: int, concurrency: int = 16) -> list[int]:
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> int:
        async with gate:
            body = {**REPORT, "description": f"{REPORT['description']} {secrets.token_hex(4)} {i}"}
            response = await client.post("/api/v1/reports", json=body)
            assert response.status_code == 201, response.text
            return response.json()["case_id"]

    return list(await asyncio.gather(*(one(i) for i in range(n))))


async def _wait_police(conn: asyncpg.Connection, cases: list[int], seconds: float) -> float:
    started = time.monotonic()
    while True:
        done = await conn.fetchval(
            "SELECT count(DISTINCT case_id) FROM referral WHERE case_id = ANY($1)"
            " AND department_code = 'police' AND delivered_at IS NOT NULL",
            cases,
        )
        if done == len(cases):
            return time.monotonic() - started
        if time.monotonic() - started > seconds:
            raise RuntimeError(f"only {done}/{len(cases)} police copies after {seconds:.0f} s")
        await asyncio.sleep(0.1)


async def _settled(conn: asyncpg.Connection, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while await conn.fetchval(
        "SELECT count(*) FROM outbox WHERE done_at IS NULL AND available_at <= now()"
    ):
        if time.monotonic() > deadline:
            raise RuntimeError("outbox did not settle")
        await asyncio.sleep(0.2)


def _workers(root: int) -> list[psutil.Process]:
    found = []
    for child in psutil.Process(root).children():
        try:
            if child.status() != psutil.STATUS_ZOMBIE and _kind(child) == "worker":
                found.append(child)
        except psutil.Error:
            pass
    return found


async def run(url: str, root: int, database_url: str, burst: int, kills: int, per: int) -> None:
    conn = await asyncpg.connect(database_url)
    password = hash_password("bench-password")
    await conn.executemany(
        "INSERT INTO app_user (username, password_hash, role, department_code,"
        " jurisdiction_code, active, token_version) VALUES ($1, $2, 'liaison', $3, $4, true, 0)",
        [(f"bench_{d}_{i}", password, d, j) for d, j in LIAISONS for i in range(2)],
    )
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        # 1 + 2: a burst, its jobs and the processes' memory.
        sampler = MemorySampler(root)
        sampler.start()
        first = await conn.fetchval("SELECT coalesce(max(id), 0) FROM outbox")
        started = time.monotonic()
        cases = await _post(client, burst)
        accepted = time.monotonic() - started
        await _wait_police(conn, cases, 300)
        await _settled(conn)
        routed = time.monotonic() - started
        sampler.halt.set()
        jobs = await conn.fetch(
            "SELECT topic, count(*) AS n FROM outbox WHERE id > $1 GROUP BY topic ORDER BY 1",
            first,
        )
        referrals = await conn.fetchval(
            "SELECT count(*) FROM referral WHERE case_id = ANY($1)", cases
        )
        notes = await conn.fetchval(
            "SELECT count(*) FROM notification WHERE case_id = ANY($1)", cases
        )
        now_jobs = sum(r["n"] for r in jobs)
        # Before: case.intake + one referral.dispatch per referral + one notify.send per
        # notification + case.status, for the same cases.
        before = burst * 2 + referrals + notes
        print(
            f"burst of {burst} mandatory reports (c=16): accepted in {accepted:.1f} s, "
            f"all routed and notified after {routed:.1f} s (ratio {accepted / routed:.2f})"
        )
        print("jobs by topic: " + ", ".join(f"{r['topic']} {r['n']}" for r in jobs))
        print(
            f"jobs per intake: now {now_jobs / burst:.2f} (1 before its referrals sit in "
            f"their queues); before {before / burst:.2f} (derived: {referrals / burst:.1f} "
            f"referrals and {notes / burst:.1f} notifications per intake); "
            f"ratio {now_jobs / before:.2f}"
        )
        for kind, mb in sorted(sampler.peak.items()):
            print(f"peak RSS during the burst, {kind}: {mb:.0f} MB")

        # 3: kills in a row.
        cases = []
        last_kill = 0.0
        for _ in range(kills):
            cases += await _post(client, per)
            victims = _workers(root)
            for victim in victims:
                victim.kill()
            last_kill = time.monotonic()
            old = {v.pid for v in victims}
            deadline = time.monotonic() + 60
            while not [w for w in _workers(root) if w.pid not in old]:
                if time.monotonic() > deadline:
                    raise RuntimeError("no worker restarted")
                await asyncio.sleep(0.05)
        waited = await _wait_police(conn, cases, 120)
        since = time.monotonic() - last_kill
        print(
            f"{kills} worker kills in a row ({per} mandatory reports before each): last police "
            f"copy {since:.1f} s after the last kill (polled {waited:.1f} s after the restart)"
        )
    await conn.close()


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--burst", type=int, default=300)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--per-kill", type=int, default=10)
    parser.add_argument("--workers", default="", help="HOTLINE_WORKERS (default: one per core)")
    args = parser.parse_args()
    env = {"HOTLINE_WORKERS": args.workers} if args.workers else {}
    with scratch_database(args.admin_url) as database_url, redis_database(args.redis_url) as redis:
        with running_tree(database_url, redis, **env) as (url, root):
            asyncio.run(run(url, root, database_url, args.burst, args.kills, args.per_kill))


if __name__ == "__main__":
    main()
