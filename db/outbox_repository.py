"""The outbox's two hot statements, as its jobs run: "is this row already done?" before a
job, and "this row is done" after it (`dispatch.worker.jobs.run_job`, `db.handlers.finish`).

Each is one SQL statement. Outside a transaction they go on the pooled asyncpg connection
itself: through an ORM session each cost three round trips (BEGIN, the statement, COMMIT
or ROLLBACK), six of every job's few (measured: `bench/bench_jobs.py`).
"""

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.engine import engine_of, raw_connection

_DONE = "SELECT done_at IS NOT NULL FROM outbox WHERE id = $1"
_MARK_DONE = "UPDATE outbox SET done_at = now() WHERE id = $1 AND done_at IS NULL"
_MARK_DONE_IN = text("UPDATE outbox SET done_at = now() WHERE id = :id AND done_at IS NULL")


async def is_done(sessions: async_sessionmaker[AsyncSession], outbox_id: int) -> bool:
    """Whether the row's job has done its work already (a row gone counts as not done: the
    handler then decides, as it always did)."""
    async with raw_connection(engine_of(sessions)) as conn:
        return bool(await conn.fetchval(_DONE, outbox_id))


async def mark_done(sessions: async_sessionmaker[AsyncSession], outbox_id: int) -> None:
    """Mark the row done on its own (its job's effect is committed already)."""
    async with raw_connection(engine_of(sessions)) as conn:
        await conn.execute(_MARK_DONE, outbox_id)


async def mark_done_in(session: AsyncSession, outbox_id: int) -> None:
    """Mark the row done in the caller's transaction, with the job's effect."""
    await session.execute(_MARK_DONE_IN, {"id": outbox_id})
