"""Migrations on an empty database, reference data, the append-only audit log, the CLI."""

import asyncio
import os
import subprocess
import sys

import asyncpg
import pytest

from dispatch.ops import schema
from tests.fixtures import raw_sql
from workflows.reference import jurisdictions, reference


def fetch(url: str, sql: str):
    return asyncio.run(raw_sql.fetch(url, sql))


TABLES = {"jurisdiction", "department", "category", "office", "app_user", "hcase", "report",
          "case_event", "referral", "outbox", "audit_log", "visit"}


def _tables(url: str) -> set[str]:
    rows = fetch(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {r["tablename"] for r in rows} - {"alembic_version"}


def test_migrations_up_down_up_on_an_empty_database(fresh_database):
    url = fresh_database()
    schema.upgrade(url)
    assert TABLES <= _tables(url)
    schema.downgrade(url)
    assert _tables(url) == set()
    schema.upgrade(url)
    assert TABLES <= _tables(url)


def test_reference_data_loads_idempotently(fresh_database):
    url = fresh_database()
    schema.migrate(url)
    counts_sql = """SELECT (SELECT count(*) FROM department) d, (SELECT count(*) FROM category) c,
                           (SELECT count(*) FROM jurisdiction) j, (SELECT count(*) FROM office) o"""
    first = dict(fetch(url, counts_sql)[0])
    schema.migrate(url)
    schema.migrate(url)
    assert dict(fetch(url, counts_sql)[0]) == first
    ref = reference()
    assert first["d"] == len(ref["departments"])
    assert first["c"] == len(ref["categories"])
    assert first["j"] == len(jurisdictions())
    paths = {r["code"]: r["path"] for r in fetch(url, "SELECT code, path FROM jurisdiction")}
    assert paths["990102001001"] == "990100/990102/990102001/990102001001/"
    police = fetch(url, "SELECT lead_department FROM category WHERE code = 'domestic_violence'")
    assert police[0]["lead_department"] == "police"


def test_audit_log_cannot_be_changed(database_url):
    async def attempt() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute("INSERT INTO audit_log (actor, action, object_type) "
                               "VALUES ('t', 'test', 'case')")
            with pytest.raises(asyncpg.RaiseError):
                await conn.execute("UPDATE audit_log SET actor = 'x'")
            with pytest.raises(asyncpg.RaiseError):
                await conn.execute("DELETE FROM audit_log")
        finally:
            await conn.close()

    asyncio.run(attempt())


def _hotline(args: list[str], url: str, stdin: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": url}
    return subprocess.run([sys.executable, "-m", "dispatch.ops.cli", *args], input=stdin,
                          capture_output=True, text=True, env=env, timeout=60)


def test_cli_user_add_reads_the_password_from_stdin(database_url):
    ok = _hotline(["user", "add", "--username", "cli_liaison", "--role", "liaison",
                   "--department", "police", "--jurisdiction", "990102"], database_url,
                  "s3cret-password\n")
    assert ok.returncode == 0, ok.stderr
    rows = fetch(database_url, "SELECT role, department_code, password_hash FROM app_user "
                               "WHERE username = 'cli_liaison'")
    assert rows[0]["role"] == "liaison" and rows[0]["department_code"] == "police"
    assert rows[0]["password_hash"].startswith("$argon2")
    assert "s3cret-password" not in ok.stdout + ok.stderr

    again = _hotline(["user", "add", "--username", "cli_liaison", "--role", "liaison",
                      "--department", "police"], database_url, "s3cret-password\n")
    assert again.returncode != 0
    bad_role = _hotline(["user", "add", "--username", "x", "--role", "boss"], database_url,
                        "s3cret-password\n")
    assert bad_role.returncode != 0
    no_dept = _hotline(["user", "add", "--username", "y", "--role", "liaison"], database_url,
                       "s3cret-password\n")
    assert no_dept.returncode != 0


