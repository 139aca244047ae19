"""Migrations and reference data: what `hotline migrate` and `hotline up` run first."""

import asyncio
from pathlib import Path

import asyncpg
from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from db.engine import APP_ROLE, make_engine, make_sessionmaker, transaction
from db.models import Category, Department, Jurisdiction, Office
from dispatch.ops import index_key
from workflows.reference import jurisdictions, reference


def _root() -> Path:
    """The source tree (editable install) or the working dir (the image copies it to /app)."""
    for candidate in (Path(__file__).resolve().parents[2], Path.cwd()):
        if (candidate / "alembic.ini").exists():
            return candidate
    raise FileNotFoundError("alembic.ini not found beside the package or in the working dir")


def alembic_config(database_url: str) -> Config:
    root = _root()
    cfg = Config(str(root / "alembic.ini"))
    cfg.set_main_option("script_location", str(root / "alembic"))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(database_url), revision)


async def _upsert(session: AsyncSession, model: type, rows: list[dict], key: list[str]) -> None:
    if not rows:
        return
    stmt = insert(model).values(rows)
    update = {c: stmt.excluded[c] for c in rows[0] if c not in key}
    stmt = (
        stmt.on_conflict_do_update(index_elements=key, set_=update)
        if update
        else (stmt.on_conflict_do_nothing(index_elements=key))
    )
    await session.execute(stmt)


async def load_reference_data(session: AsyncSession) -> None:
    """Upsert departments, categories, the jurisdiction tree and offices from config.

    Idempotent: running it again changes nothing; editing the config and running it again
    updates names and adds new rows (rows removed from config are left, since cases point
    at them).
    """
    await session.execute(text("SELECT pg_advisory_xact_lock(7246001)"))
    ref = reference()
    await _upsert(
        session,
        Department,
        [{"code": c, "name": n} for c, n in ref["departments"].items()],
        ["code"],
    )
    await _upsert(
        session,
        Category,
        [
            {"code": c, "name": n, "lead_department": lead, "cooperating": coop}
            for c, (n, lead, coop) in ref["categories"].items()
        ],
        ["code"],
    )
    paths: dict[str, str] = {}
    rows = []
    for code, name, level, parent in jurisdictions():
        paths[code] = (paths[parent] if parent else "") + code + "/"
        rows.append(
            {"code": code, "name": name, "level": level, "parent_code": parent, "path": paths[code]}
        )
    await _upsert(session, Jurisdiction, rows, ["code"])
    names = {c: n for c, n, _, _ in jurisdictions()}
    dept_names = ref["departments"]
    await _upsert(
        session,
        Office,
        [
            {"department_code": d, "jurisdiction_code": j, "name": f"{names[j]}{dept_names[d]}"}
            for j, depts in ref["offices"].items()
            for d in depts
        ],
        ["department_code", "jurisdiction_code"],
    )


async def _load(database_url: str) -> None:
    engine = make_engine(database_url, pool_size=1)
    try:
        async with transaction(make_sessionmaker(engine)) as session:
            await load_reference_data(session)
    finally:
        await engine.dispose()


# The service's role (db.engine.APP_ROLE): rows in, rows out; the audit log append-only by
# privilege as well as by trigger; owner of nothing, so no DDL (the trigger stays). The
# key of the case ids' permutation (0035) is read only by the id function, as the owner.
_GRANTS = f"""
DO $$ BEGIN CREATE ROLE {APP_ROLE} NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$;
DO $$ BEGIN GRANT {APP_ROLE} TO CURRENT_USER;
EXCEPTION WHEN insufficient_privilege THEN NULL; END $$;
GRANT USAGE ON SCHEMA public TO {APP_ROLE};
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {APP_ROLE};
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {APP_ROLE};
REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM {APP_ROLE};
REVOKE INSERT, UPDATE, DELETE ON alembic_version FROM {APP_ROLE};
REVOKE ALL ON id_key FROM {APP_ROLE};
REVOKE UPDATE, DELETE, TRUNCATE ON index_key FROM {APP_ROLE};
"""


async def grant_app_role(database_url: str) -> None:
    """Create the service's role if missing and give it the tables as they are now."""
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        # Roles are shared by every database of the server: two migrations at once.
        await conn.execute("SELECT pg_advisory_lock(hashtext('hotline-app-role'))")
        await conn.execute(_GRANTS)
    finally:
        await conn.close()


def migrate(database_url: str) -> None:
    """Bring the schema to head, grant the service's role, record (or check) the blind
    indexes' key, load reference data (safe to run any number of times)."""
    upgrade(database_url)
    asyncio.run(grant_app_role(database_url))
    index_key.ensure(database_url)  # refuses a ring without the indexes' key (IndexKeyMismatch)
    asyncio.run(_load(database_url))
