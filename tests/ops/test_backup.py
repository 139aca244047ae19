"""Backups: a dump restored into a fresh database holds the same rows; a restore does not
overwrite a database with tables unless forced; only the newest dumps are kept; and the
embedded default is dumped and restored with pgserver's own tools by the commands."""

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import asyncpg
import pytest

from dispatch.ops import backup, schema
from tests.fixtures.processes import leftovers
from tests.fixtures.reports import _report


async def _tables(url: str) -> dict[str, tuple[int, str]]:
    """Every table's row count and a digest of its rows, in a stable order."""
    conn = await asyncpg.connect(backup.libpq_url(url))
    try:
        names = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
        )
        out = {}
        for (name,) in names:
            row = await conn.fetchrow(
                f'SELECT count(*) AS n, md5(coalesce(string_agg(t::text, \'|\' ORDER BY t::text),'
                f' \'\')) AS digest FROM "{name}" t'
            )
            out[name] = (row["n"], row["digest"])
        return out
    finally:
        await conn.close()


async def test_round_trip_into_a_fresh_database_has_the_same_rows(
    client, database_url, fresh_database, tmp_path
):
    created = await client.post("/api/v1/reports", json=_report())
    assert created.status_code == 201
    dump, removed = await asyncio.to_thread(
        backup.backup, database_url, tmp_path, keep=3, embedded=False
    )
    assert dump.stat().st_mode & 0o077 == 0  # personal data: the owner's only
    assert removed == [] and not list(tmp_path.glob("*.partial"))

    target = await asyncio.to_thread(fresh_database)
    await asyncio.to_thread(backup.restore, target, dump, force=False, embedded=False)
    before, after = await _tables(database_url), await _tables(target)
    assert before == after
    assert before["report"][0] >= 1 and before["audit_log"][0] >= 1  # not vacuous

    # The restored database is a working one: migrations find it at head.
    await asyncio.to_thread(schema.upgrade, target)


async def test_restore_refuses_a_database_with_tables_unless_forced(
    client, database_url, fresh_database, tmp_path
):
    await client.post("/api/v1/reports", json=_report())
    dump, _ = await asyncio.to_thread(
        backup.backup, database_url, tmp_path, keep=3, embedded=False
    )
    target = await asyncio.to_thread(fresh_database)
    await asyncio.to_thread(schema.migrate, target)  # has tables (and reference rows)
    with pytest.raises(backup.BackupError, match="--force"):
        await asyncio.to_thread(backup.restore, target, dump, force=False, embedded=False)
    await asyncio.to_thread(backup.restore, target, dump, force=True, embedded=False)
    assert await _tables(target) == await _tables(database_url)


def test_retention_keeps_the_newest_dumps_and_nothing_else_is_touched(tmp_path):
    names = [f"hotline-2026120{d}T000000000000Z.dump" for d in range(1, 6)]
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("mine")
    removed = backup.prune(tmp_path, 2)
    assert sorted(p.name for p in removed) == names[:3]
    assert sorted(p.name for p in tmp_path.iterdir()) == [*names[3:], "notes.txt"]
    with pytest.raises(backup.BackupError):
        backup.prune(tmp_path, 0)


def _hotline(*args: str, data_dir: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(HOTLINE_DATA_DIR=str(data_dir), HOTLINE_BACKUP_KEEP="2")
    return subprocess.run([sys.executable, "-m", "dispatch.ops.cli", *args], env=env,
                          capture_output=True, text=True, timeout=180)


def _count(embedded_dir: Path, sql: str) -> int:
    from dispatch.ops.embedded import EmbeddedServers

    with EmbeddedServers(embedded_dir, redis=False) as servers:
        schema.migrate(servers.database_url)

        async def run() -> int:
            conn = await asyncpg.connect(servers.database_url)
            try:
                return await conn.fetchval(sql)
            finally:
                await conn.close()

        return asyncio.run(run())


def test_embedded_backup_and_restore_commands():
    data_dir = Path(tempfile.mkdtemp(prefix="hb", dir="/tmp"))  # short: socket paths
    try:
        add = ("INSERT INTO department (code, name) VALUES ('demo_' || md5(random()::text),"
               " 'x') RETURNING (SELECT count(*) FROM department) + 1")
        at_backup = _count(data_dir, add)
        made = _hotline("backup", data_dir=data_dir)
        assert made.returncode == 0, made.stderr
        dumps = sorted((data_dir / "backups").glob("hotline-*.dump"))
        assert len(dumps) == 1 and str(dumps[0]) in made.stdout
        assert _count(data_dir, add) == at_backup + 1  # changed after the backup

        refused = _hotline("restore", str(dumps[0]), data_dir=data_dir)
        assert refused.returncode == 1 and "--force" in refused.stderr
        forced = _hotline("restore", "--force", str(dumps[0]), data_dir=data_dir)
        assert forced.returncode == 0, forced.stderr
        assert _count(data_dir, "SELECT count(*) FROM department") == at_backup

        for _ in range(2):  # retention from HOTLINE_BACKUP_KEEP
            assert _hotline("backup", data_dir=data_dir).returncode == 0
        assert len(list((data_dir / "backups").glob("hotline-*.dump"))) == 2
    finally:
        for proc in leftovers(data_dir):
            proc.kill()
        shutil.rmtree(data_dir, ignore_errors=True)
