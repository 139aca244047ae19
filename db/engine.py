"""Engine and sessions. One engine per process (per event loop in tests)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from db.settings import async_url

# The role the service's processes act as (dispatch.schema grants it): it reads and writes
# the tables but owns none, so it cannot alter the audit log, drop or disable its
# append-only trigger, or update, delete or truncate it. Migrations and the operator's
# commands act as the database owner.
APP_ROLE = "hotline_app"


def make_engine(
    database_url: str, *, pool_size: int = 10, role: str | None = None
) -> AsyncEngine:
    """asyncpg engine; jsonb comes back decoded through SQLAlchemy's own codec.

    Connections beyond `pool_size` are opened and closed per use, which under load costs
    more than the queries: size the pool for the concurrency you expect (the API: 32).
    With `role` every connection acts as that role from its start (no extra round trip).
    """
    # A server that does not answer is "down" within seconds (asyncpg waits 60 s by
    # default): callers and Twilio (15 s webhook timeout) get the degraded answer.
    # No JIT: our statements are short, and the few that cross its cost threshold (the
    # scorecard, statistics) spent ~110 ms compiling each time, more than JIT saved them.
    settings = {"jit": "off"}
    if role:
        settings["role"] = role
    connect_args: dict = {"timeout": 5, "server_settings": settings}
    return create_async_engine(
        async_url(database_url),
        pool_size=pool_size,
        max_overflow=pool_size // 2,
        pool_pre_ping=False,
        pool_timeout=10,
        # A failed statement's message names the SQL, never its values (phones, names).
        hide_parameters=True,
        connect_args=connect_args,
    )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def engine_of(sessions: async_sessionmaker[AsyncSession]) -> AsyncEngine:
    """The engine a sessionmaker is bound to (for `raw_connection` beside its sessions)."""
    return sessions.kw["bind"]


@asynccontextmanager
async def transaction(sm: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session inside one transaction: commit on success, roll back on any error."""
    async with sm() as session, session.begin():
        yield session


@asynccontextmanager
async def raw_connection(engine: AsyncEngine) -> AsyncIterator[Any]:
    """The pooled connection's own asyncpg connection, outside any transaction.

    For hot single statements (a token's user, a claim): no ORM, no BEGIN/ROLLBACK round
    trips around a lone read, prepared statements cached by asyncpg itself. A statement on
    it commits on its own (autocommit), so use it only for one-statement work.
    """
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        yield raw.driver_connection
