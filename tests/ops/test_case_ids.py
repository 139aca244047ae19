"""Case and report ids by time (0035): old rows keep theirs, every column holding one is
bigint, the permutation's key is the database's own and hidden from the service's role."""

import asyncio

import asyncpg
import pytest

from db.engine import APP_ROLE
from dispatch.ops import schema


async def _run(url: str, *statements: str) -> list:
    conn = await asyncpg.connect(url)
    try:
        return [await conn.fetch(sql) for sql in statements]
    finally:
        await conn.close()


def run(url: str, *statements: str) -> list:
    return asyncio.run(_run(url, *statements))


_OLD_ROWS = (
    "INSERT INTO hcase (state, emergency, mandatory) VALUES ('reported', false, false), "
    "('reported', false, false) RETURNING id",
    "UPDATE hcase SET merged_into_id = (SELECT min(id) FROM hcase) "
    "WHERE id = (SELECT max(id) FROM hcase)",
    "INSERT INTO report (channel, external_id, receipt_code, case_id, description, "
    "in_danger_now) SELECT 'web', 'x' || id, 'R' || id, id, 'old', false FROM hcase "
    "RETURNING id, case_id",
    "INSERT INTO case_event (case_id, event, actor) SELECT id, 'intake', 'test' FROM hcase",
    "INSERT INTO report_no_contact (report_id, reason, marked_by) "
    "SELECT id, 'test', 'test' FROM report",
)

_FOREIGN_KEYS = """
    SELECT c.conrelid::regclass::text AS tbl, a.attname AS col,
           format_type(a.atttypid, a.atttypmod) AS type, c.confrelid::regclass::text AS target
    FROM pg_constraint c
    JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey)
    WHERE c.contype = 'f' AND c.confrelid IN ('hcase'::regclass, 'report'::regclass)
    ORDER BY 1, 2
"""


def test_old_rows_keep_their_ids_and_links_up_and_down(fresh_database):
    url = fresh_database()
    schema.upgrade(url, "0034")
    cases, _, reports, _, _ = run(url, *_OLD_ROWS)
    old_cases = sorted(r["id"] for r in cases)
    old_reports = sorted((r["id"], r["case_id"]) for r in reports)
    keys_before = run(url, _FOREIGN_KEYS)[0]
    assert {r["type"] for r in keys_before} == {"integer"}

    schema.upgrade(url)
    keys = run(url, _FOREIGN_KEYS)[0]
    # every column holding a case or report id is bigint, and every foreign key is still there
    assert [(r["tbl"], r["col"]) for r in keys] == [(r["tbl"], r["col"]) for r in keys_before]
    assert {r["type"] for r in keys} == {"bigint"}
    ids, = run(url, "SELECT table_name, data_type, column_default FROM "
                    "information_schema.columns WHERE column_name = 'id' "
                    "AND table_name IN ('hcase', 'report')")
    assert {r["data_type"] for r in ids} == {"bigint"}
    assert all("hotline_next_id" in r["column_default"] for r in ids)
    cases, reports, merged = run(
        url, "SELECT id FROM hcase ORDER BY id", "SELECT id, case_id FROM report ORDER BY id",
        "SELECT merged_into_id FROM hcase WHERE merged_into_id IS NOT NULL",
    )
    assert [r["id"] for r in cases] == old_cases
    assert sorted((r["id"], r["case_id"]) for r in reports) == old_reports
    assert [r["merged_into_id"] for r in merged] == [old_cases[0]]

    new, = run(url, "INSERT INTO hcase (state, emergency, mandatory) "
                    "VALUES ('reported', false, false) RETURNING id")
    assert new[0]["id"] > 2**40 > old_cases[-1]
    assert new[0]["id"] < 2**53  # safe in JavaScript
    with pytest.raises(Exception, match="time-based ids"):  # noqa: B017 (alembic wraps it)
        schema.downgrade(url, "0034")
    run(url, f"DELETE FROM hcase WHERE id = {new[0]['id']}")

    schema.downgrade(url, "0034")
    keys = run(url, _FOREIGN_KEYS)[0]
    assert {r["type"] for r in keys} == {"integer"}
    assert len(keys) == len(keys_before)
    cases, reports = run(url, "SELECT id FROM hcase ORDER BY id",
                         "SELECT id, case_id FROM report ORDER BY id")
    assert [r["id"] for r in cases] == old_cases
    assert sorted((r["id"], r["case_id"]) for r in reports) == old_reports
    again, = run(url, "INSERT INTO hcase (state, emergency, mandatory) "
                      "VALUES ('reported', false, false) RETURNING id")
    assert old_cases[-1] < again[0]["id"] < 2**31
    schema.upgrade(url)


def test_the_permutation_is_keyed_per_database_and_a_bijection(database_url, fresh_database):
    other = fresh_database()
    schema.upgrade(other)
    sql = "SELECT array_agg(hotline_permute12(x) ORDER BY x) AS p FROM generate_series(0, 4095) x"
    ours, = run(database_url, sql)[0]
    theirs, = run(other, sql)[0]
    assert sorted(ours["p"]) == list(range(4096))
    assert ours["p"] != theirs["p"]  # the key is made by the migration, not in code


def test_the_service_role_reads_no_key_but_makes_ids(database_url):
    as_app = f"SET ROLE {APP_ROLE}"
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        run(database_url, as_app, "SELECT rounds FROM id_key")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        run(database_url, as_app, "SELECT hotline_permute12(1)")
    _, first, _, second = run(
        database_url, as_app, "SELECT hotline_next_id('hcase_id_seq') AS id",
        "SELECT pg_sleep(0.002)", "SELECT hotline_next_id('hcase_id_seq') AS id",
    )
    assert second[0]["id"] > first[0]["id"] > 2**40


async def test_rows_added_together_get_their_own_ids(database_url):
    """Ids grow only by the millisecond: SQLAlchemy must not match RETURNING's ids to the rows of
    one flush by sorting them, as it does for serials (db.columns.time_id)."""
    from sqlalchemy import select

    from db.engine import make_engine, make_sessionmaker, transaction
    from db.models import Case

    engine = make_engine(database_url, pool_size=1)
    try:
        sessions = make_sessionmaker(engine)
        async with transaction(sessions) as session:
            cases = [Case(state="reported", legal_hold_reason=f"batch-{n}") for n in range(40)]
            session.add_all(cases)
            await session.flush()
            given = {c.id: c.legal_hold_reason for c in cases}
        async with sessions() as session:
            stored = dict((await session.execute(
                select(Case.id, Case.legal_hold_reason).where(Case.id.in_(given))
            )).all())
        assert stored == given
    finally:
        await engine.dispose()
