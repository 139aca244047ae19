"""Is dispatch keeping up? What waits in the outbox, what sits or failed in each RQ queue,
which notifications could not be sent: failures are shown, not swallowed."""

import asyncio
from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue
from sqlalchemy import func, select

from channels.web import sessions
from db.models import Notification, Outbox
from dispatch.auth import require

router = APIRouter(prefix="/api/v1/dispatch", tags=["dispatch"])


class QueueStatus(BaseModel):
    name: str
    queued: int
    started: int
    failed: int


class DispatchStatus(BaseModel):
    outbox_pending: int
    outbox_oldest_pending_seconds: float | None
    outbox_with_errors: int
    notifications_failed: int
    redis_reachable: bool
    queues: list[QueueStatus]


def _queues(redis_url: str) -> list[QueueStatus]:
    redis = Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
    try:
        return [
            QueueStatus(
                name=q.name,
                queued=q.count,
                started=q.started_job_registry.count,
                failed=q.failed_job_registry.count,
            )
            for q in sorted(Queue.all(connection=redis), key=lambda q: q.name)
        ]
    finally:
        redis.close()


@router.get(
    "/status",
    response_model=DispatchStatus,
    dependencies=[Depends(require("supervisor", "admin"))],  # figures only, no case data
)
async def dispatch_status(request: Request) -> DispatchStatus:
    runtime = request.app.state.runtime
    async with sessions(request)() as session:
        pending, oldest, errored = (
            await session.execute(
                select(
                    func.count(),
                    func.min(Outbox.created_at),
                    func.count().filter(Outbox.last_error.is_not(None)),
                ).where(Outbox.relayed_at.is_(None))
            )
        ).one()
        failed_notes = await session.scalar(
            select(func.count()).where(Notification.status == "failed")
        )
    try:
        queues = await asyncio.to_thread(_queues, runtime.redis_url)
        reachable = True
    except RedisError:
        queues, reachable = [], False
    age = (datetime.now(UTC) - oldest).total_seconds() if oldest else None
    return DispatchStatus(
        outbox_pending=pending,
        outbox_oldest_pending_seconds=age,
        outbox_with_errors=errored,
        notifications_failed=failed_notes or 0,
        redis_reachable=reachable,
        queues=queues,
    )
