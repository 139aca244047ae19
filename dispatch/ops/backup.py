"""`hotline backup` and `hotline restore`: pg_dump / pg_restore, custom format.

The embedded default is dumped with the pgserver wheel's own binaries (the same PostgreSQL
version as the server) over its unix socket; an external server with the client tools on
PATH (or `HOTLINE_PG_BIN`), falling back to pgserver's when installed. A dump is written
under a temporary name and renamed when complete, readable by its owner only (it holds
personal data), and only the newest `keep` dumps in the folder are kept.

A restore goes into an empty database, or with `force` replaces what is there (dropping
the objects the dump holds first), in one transaction: a failed restore changes nothing.
"""

import importlib.util
import os
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

PREFIX = "hotline-"
SUFFIX = ".dump"


class BackupError(RuntimeError):
    """A dump or restore failed, or was refused; the message says why (in Chinese)."""


def pgserver_bin() -> Path | None:
    """pgserver/pginstall/bin, found without importing pgserver (which starts nothing,
    but warns about XDG_RUNTIME_DIR at import)."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    return folder if folder.is_dir() else None


def tool(name: str, server_major: int, *, embedded: bool, pg_bin: str | None = None) -> str:
    """The pg_dump / pg_restore to run: the first candidate at least as new as the server
    (an older pg_dump refuses a newer server): HOTLINE_PG_BIN; for the embedded server
    pgserver's own; else the one on PATH, then pgserver's."""
    folders: list[Path | None] = [Path(pg_bin)] if pg_bin else []
    if embedded:
        folders.append(pgserver_bin())
    else:
        on_path = shutil.which(name)
        folders += [Path(on_path).parent if on_path else None, pgserver_bin()]
    found = []
    for folder in folders:
        if folder is None or not (folder / name).is_file():
            continue
        version = subprocess.run(
            [str(folder / name), "--version"], capture_output=True, text=True
        ).stdout
        match = re.search(r"(\d+)(?:\.\d+)?", version)
        major = int(match.group(1)) if match else 0
        if major >= server_major:
            return str(folder / name)
        found.append(f"{folder / name} ({major})")
    raise BackupError(
        f"找不到适用于 PostgreSQL {server_major} 的 {name}"
        + (f"（已有：{'、'.join(found)}）" if found else "")
        + "：请安装对应版本的客户端工具，或设置 HOTLINE_PG_BIN"
    )


def libpq_url(database_url: str) -> str:
    """libpq reads postgresql:// URIs (host=/socket/dir in the query too), not SQLAlchemy's."""
    for prefix in ("postgresql+asyncpg://", "postgres://"):
        if database_url.startswith(prefix):
            return "postgresql://" + database_url[len(prefix) :]
    return database_url


def _run(command: list[str]) -> None:
    """Run a client tool; its stderr can name tables and server paths but no row data,
    and only its last lines are shown."""
    done = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise BackupError(f"{Path(command[0]).name} 失败（退出码 {done.returncode}）：{tail}")


def backup_name(now: datetime | None = None) -> str:
    return f"{PREFIX}{(now or datetime.now(UTC)).strftime('%Y%m%dT%H%M%S%fZ')}{SUFFIX}"


def backup(
    database_url: str,
    folder: Path,
    *,
    keep: int,
    embedded: bool,
    pg_bin: str | None = None,
) -> tuple[Path, list[Path]]:
    """Dump to `folder`; returns the new file and the old ones retention removed."""
    server_major, _ = inspect(database_url)
    pg_dump = tool("pg_dump", server_major, embedded=embedded, pg_bin=pg_bin)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    target = folder / backup_name()
    partial = target.with_name(target.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.close(fd)
    try:
        _run(
            [
                pg_dump,
                "--format=custom",
                "--no-owner",
                "--no-privileges",
                f"--file={partial}",
                f"--dbname={libpq_url(database_url)}",
            ]
        )
        partial.rename(target)
    finally:
        partial.unlink(missing_ok=True)
    return target, prune(folder, keep)


def backups_in(folder: Path) -> list[Path]:
    """This command's dumps in the folder, newest first (the name sorts by time)."""
    return sorted(folder.glob(f"{PREFIX}*{SUFFIX}"), reverse=True)


def prune(folder: Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` dumps (never another file in the folder)."""
    if keep < 1:
        raise BackupError("至少保留 1 个备份")
    removed = backups_in(folder)[keep:]
    for old in removed:
        old.unlink()
    return removed


def inspect(database_url: str) -> tuple[int, bool]:
    """The server's major version, and whether the database has no tables outside the
    system schemas (nothing a restore could overwrite)."""
    import asyncio

    import asyncpg

    async def ask() -> tuple[int, bool]:
        conn = await asyncpg.connect(libpq_url(database_url))
        try:
            version = int(await conn.fetchval("SHOW server_version_num"))
            tables = await conn.fetchval(
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog',"
                " 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'"
            )
        finally:
            await conn.close()
        return version // 10000, tables == 0

    try:
        return asyncio.run(ask())
    except (OSError, asyncpg.PostgresError) as exc:
        raise BackupError(f"无法连接数据库（{type(exc).__name__}）") from None


def restore(
    database_url: str,
    dump: Path,
    *,
    force: bool,
    embedded: bool,
    pg_bin: str | None = None,
) -> None:
    """Restore a dump; refused into a database that has tables unless `force`."""
    if not dump.is_file():
        raise BackupError(f"找不到备份文件 {dump}")
    server_major, empty = inspect(database_url)
    replace = not empty
    if replace and not force:
        raise BackupError("目标数据库不是空的；确认要用备份覆盖它时请加 --force（先停止服务）")
    command = [
        tool("pg_restore", server_major, embedded=embedded, pg_bin=pg_bin),
        "--no-owner",
        "--no-privileges",
        "--exit-on-error",
        "--single-transaction",
        f"--dbname={libpq_url(database_url)}",
    ]
    if replace:
        command += ["--clean", "--if-exists"]
    _run([*command, str(dump)])
