"""The shape of a background job handler, shared by `dispatch` (which runs them) and
`channels` (which provides the senders), so neither has to import the other's internals.

A job works on one outbox row (`JobContext.outbox_id`). The row is done only when the job's
effect is committed: a handler that can, calls `finish(session, ctx)` inside the transaction
of its effect; for the others the runner marks the row done once the handler has returned.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import Outbox
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
        await session.execute(
            update(Outbox)
            .where(Outbox.id == ctx.outbox_id, Outbox.done_at.is_(None))
            .values(done_at=datetime.now(UTC))
        )
    ctx.finished = True


Handler = Callable[[JobContext, dict[str, Any]], Awaitable[None]]
