"""The shape of a background job handler, shared by `dispatch` (which runs them) and
`channels` (which provides the senders), so neither has to import the other's internals.

A job works on one outbox row (`JobContext.outbox_id`). The row is done only when the job's
effect is committed: a handler that can, calls `finish(session, ctx)` inside the transaction
of its effect; for the others the runner marks the row done once the handler has returned.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.outbox_repository import mark_done_in
from db.settings import Settings


@dataclass
class JobContext:
    sessions: async_sessionmaker[AsyncSession]
    settings: Settings
    outbox_id: int | None = None
    finished: bool = False  # set by `finish`: the row is marked in the effect's transaction

    def for_row(self, outbox_id: int | None) -> "JobContext":
        """A copy for one job's row."""
        return replace(self, outbox_id=outbox_id, finished=False)


async def finish(session: AsyncSession, ctx: JobContext) -> None:
    """Mark the job's outbox row done in the caller's transaction (with the effect)."""
    if ctx.outbox_id is not None:
        await mark_done_in(session, ctx.outbox_id)
    ctx.finished = True


Handler = Callable[[JobContext, dict[str, Any]], Awaitable[None]]
