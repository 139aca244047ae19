"""Casework figures (issue 13) on a scratch database holding 100,000 cases (the console
bench's seed, bench.bench_console.seed): how long the case page and "my cases" take.

1. the case page (console HTML, and GET /api/v1/cases/{id}) of a case carrying the casework
   panel: an owner and a pairing person, an adopted help plan, tasks, written assessments;
2. "my cases" (console and GET /api/v1/casework/mine) of a caseworker who owns one case in
   250 (400 cases), and of a village's 儿童主任 paired with the open cases of their community.

    python -m bench.bench_casework --admin-url postgresql://postgres@127.0.0.1:5432/test \\
        --redis-url redis://127.0.0.1:6379/8

The service is `hotline up` (API, worker, scheduler) on that database; load generator and
service share this machine's cores, so read p50 beside p95.
"""

import asyncio

import asyncpg

from bench.bench_console import PASSWORD, Figure, page_line, pages, seed, signed_in
from bench.common import bench_parser, print_figures, timed
from bench.service import redis_database, running_service, scratch_database
from dispatch.ops import schema
from dispatch.staff.auth import hash_password

COMMUNITY = "990102001001"

# The measured case is one of these: a small seed may have no open case among its ids % 250.
FIRST_OPEN = "SELECT min(id) FROM hcase WHERE state IN ('reported', 'assessing', 'handling')"
CASEWORK_SQL = [
    # The bench's people: a caseworker and a supervisor of the city center, a 儿童主任.
    """INSERT INTO app_user (username, password_hash, role, jurisdiction_code, active,
                             token_version, created_at)
       SELECT u, $1, r, j, true, 0, now()
         FROM (VALUES ('bench_caseworker', 'caseworker', '990100'),
                      ('bench_director', 'child_director', '"""
    + COMMUNITY
    + """')) v(u, r, j)""",
    # One case in 250 owned by the caseworker; the community's open cases paired with the
    # director; every other case in 3 owned by somebody else (so the index has to choose).
    """INSERT INTO app_user (username, password_hash, role, jurisdiction_code, active,
                             token_version, created_at)
       SELECT 'cw_' || g, $1, 'caseworker', '990100', true, 0, now()
         FROM generate_series(1, 20) g""",
    """INSERT INTO case_assignment (case_id, owner_id, pairing_id, updated_at)
       SELECT c.id,
              CASE WHEN c.id % 250 = 0 OR c.id = ("""
    + FIRST_OPEN
    + """)
                   THEN (SELECT id FROM app_user WHERE username = 'bench_caseworker')
                   ELSE (SELECT id FROM app_user WHERE username = 'cw_' || (1 + c.id % 20))
              END,
              CASE WHEN c.jurisdiction_code = '"""
    + COMMUNITY
    + """'
                        AND c.state NOT IN ('closed', 'invalid')
                   THEN (SELECT id FROM app_user WHERE username = 'bench_director') END,
              now()
         FROM hcase c
        WHERE c.id % 250 = 0 OR c.id % 3 = 0 OR c.id = ("""
    + FIRST_OPEN
    + """)
           OR (c.jurisdiction_code = '"""
    + COMMUNITY
    + """'
               AND c.state NOT IN ('closed', 'invalid'))""",
]


async def seed_casework(database_url: str) -> dict[str, int]:
    conn = await asyncpg.connect(database_url)
    try:
        password = hash_password(PASSWORD)
        async with conn.transaction():
            for statement in CASEWORK_SQL:
                await conn.execute(statement, *([password] if "$1" in statement else []))
        await conn.execute("ANALYZE")
        me = await conn.fetchval("SELECT id FROM app_user WHERE username = 'bench_caseworker'")
        director = await conn.fetchval("SELECT id FROM app_user WHERE username = 'bench_director'")
        return {
            "assignments": await conn.fetchval("SELECT count(*) FROM case_assignment"),
            "caseworker's cases": await conn.fetchval(
                "SELECT count(*) FROM case_assignment WHERE owner_id = $1", me
            ),
            "director's cases": await conn.fetchval(
                "SELECT count(*) FROM case_assignment WHERE pairing_id = $1", director
            ),
            "case": await conn.fetchval(
                "SELECT min(c.id) FROM hcase c JOIN case_assignment a ON a.case_id = c.id"
                " WHERE a.owner_id = $1 AND c.state IN ('reported', 'assessing', 'handling')",
                me,
            ),
        }
    finally:
        await conn.close()


async def dress_case(url: str, case_id: int) -> None:
    """A plan, tasks and a written assessment on the measured case, through the API."""
    import httpx

    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        token = (
            await client.post(
                "/api/v1/auth/token", data={"username": "bench_caseworker", "password": PASSWORD}
            )
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        calm = {
            "guardian_duty": "weak",
            "other_carer": "yes",
            "current_harm": "safe",
            "health": "good",
            "schooling": "dropped",
            "living": "adequate",
        }
        answers = await client.post(
            f"/api/v1/cases/{case_id}/assessments",
            headers=headers,
            json={"answers": calm, "summary": "压测评估"},
        )
        assert answers.status_code == 201, answers.text
        plan = await client.post(
            f"/api/v1/cases/{case_id}/plan",
            headers=headers,
            json={"needs": ["教育救助", "生活救助"]},
        )
        assert plan.status_code == 200, plan.text
        for i in range(5):
            made = await client.post(
                f"/api/v1/cases/{case_id}/tasks",
                headers=headers,
                json={"department": "education", "title": f"压测任务{i}", "due": "5wd"},
            )
            assert made.status_code == 201, made.text


async def measure(url: str, case_id: int, requests: int) -> list[Figure]:
    await dress_case(url, case_id)
    caseworker = await signed_in(url, "bench_caseworker")
    director = await signed_in(url, "bench_director")
    token = (
        await caseworker.post(
            "/api/v1/auth/token", data={"username": "bench_caseworker", "password": PASSWORD}
        )
    ).json()["access_token"]
    api = {"Authorization": f"Bearer {token}"}
    figures = []
    try:
        ms = await pages(caseworker, f"/console/cases/{case_id}", 'id="plan"', requests)
        figures.append(page_line("case page (console, with the casework panel)", ms, None))
        caseworker.headers.update(api)
        ms = await pages(caseworker, f"/api/v1/cases/{case_id}", '"owner"', requests)
        figures.append(page_line("case (GET /api/v1/cases/{id})", ms, None))
        ms = await pages(caseworker, "/api/v1/casework/mine?limit=200", '"items"', requests)
        figures.append(page_line("caseworker: my cases (API, 200 rows)", ms, None))
        del caseworker.headers["Authorization"]
        ms = await pages(caseworker, "/console/casework/mine", 'id="my-cases"', requests)
        figures.append(page_line("caseworker: my cases (console)", ms, None))
        ms = await pages(director, "/console/casework/mine", 'id="my-cases"', requests)
        figures.append(page_line("儿童主任: my cases (console)", ms, None))
    finally:
        await caseworker.aclose()
        await director.aclose()
    return figures


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=100)
    args = parser.parse_args()
    with scratch_database(args.admin_url) as database_url, redis_database(args.redis_url) as redis:
        schema.migrate(database_url)

        def seeded() -> dict:
            counts = asyncio.run(seed(database_url, args.cases))
            return counts | asyncio.run(seed_casework(database_url))

        counts, took = timed(seeded)
        rows = [Figure("seeded", f"{counts} in {took:.0f} s")]
        # One API process: on a shared, busy machine a second one only adds noise.
        with running_service(database_url, redis, HOTLINE_API_WORKERS="1") as url:
            rows += asyncio.run(measure(url, counts["case"], args.requests))
    print_figures(rows)


if __name__ == "__main__":
    main()
