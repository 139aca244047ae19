"""Is dispatch keeping up? What waits in the outbox, what sits or failed in each RQ queue,
which notifications could not be sent, and what is stuck: failures are shown, not swallowed.

Stuck means past the reconciler's grace time (`HOTLINE_RECONCILE_URGENT_SECONDS` for the
intake of emergencies and mandatory reports, `HOTLINE_RECONCILE_SECONDS` otherwise): cases
whose intake (routing) is not done, referrals not delivered to their office, notifications
not sent, work not done at all. Anything stuck, Redis unreachable, or no worker or scheduler
alive makes the status `healthy: false`, with the reasons in Chinese.
"""

import asyncio
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Notification, Outbox, Referral
from db.settings import Settings
from dispatch.worker import heartbeats


class QueueStatus(BaseModel):
    name: str
    queued: int
    started: int
    failed: int


class DispatchStatus(BaseModel):
    healthy: bool
    reasons: list[str]
    outbox_pending: int
    outbox_oldest_pending_seconds: float | None
    outbox_with_errors: int
    # Enqueued or not, not done yet; the oldest such row's age.
    work_undone: int
    work_oldest_undone_seconds: float | None
    cases_unrouted: int
    referrals_undelivered: int
    notifications_unsent: int
    notifications_failed: int
    redis_reachable: bool
    workers_alive: int
    schedulers_alive: int
    queues: list[QueueStatus]


# Cases whose intake job (police copy, registration, routing) is not done past its grace.
_UNROUTED = text(
    """
    SELECT count(DISTINCT c.id)
    FROM outbox o JOIN hcase c ON c.id = (o.payload->>'case_id')::bigint
    WHERE o.topic = 'case.intake' AND o.done_at IS NULL AND o.available_at <= now()
      AND o.created_at < now() - make_interval(secs =>
            CASE WHEN c.emergency OR c.mandatory THEN CAST(:urgent AS float8)
                 ELSE CAST(:normal AS float8) END)
    """
)


def _redis_side(redis_url: str) -> tuple[list[QueueStatus], int, int]:
    redis = Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
    try:
        queues = [
            QueueStatus(
                name=q.name,
                queued=q.count,
                started=q.started_job_registry.count,
                failed=q.failed_job_registry.count,
            )
            for q in sorted(Queue.all(connection=redis), key=lambda q: q.name)
        ]
        return (
            queues,
            len(heartbeats.living(redis, "worker")),
            len(heartbeats.living(redis, "scheduler")),
        )
    finally:
        redis.close()


async def dispatch_status(
    *, session: AsyncSession, settings: Settings, redis_url: str
) -> DispatchStatus:
    """Figures only, no case data: for supervisors and administrators."""
    urgent, normal = settings.hotline_reconcile_urgent_seconds, settings.hotline_reconcile_seconds
    now = datetime.now(UTC)
    stale = now - timedelta(seconds=normal)
    pending, oldest, errored = (
        await session.execute(
            select(
                func.count(),
                func.min(Outbox.created_at),
                func.count().filter(Outbox.last_error.is_not(None)),
            ).where(Outbox.relayed_at.is_(None), Outbox.done_at.is_(None))
        )
    ).one()
    undone, oldest_undone = (
        await session.execute(
            select(func.count(), func.min(Outbox.created_at)).where(
                Outbox.done_at.is_(None), Outbox.available_at <= now
            )
        )
    ).one()
    unrouted = await session.scalar(_UNROUTED, {"urgent": urgent, "normal": normal})
    undelivered = await session.scalar(
        select(func.count()).where(
            Referral.status == "queued",
            Referral.delivered_at.is_(None),
            Referral.created_at < stale,
        )
    )
    unsent, failed_notes = (
        await session.execute(
            select(
                func.count().filter(
                    Notification.status == "pending", Notification.created_at < stale
                ),
                func.count().filter(Notification.status == "failed"),
            )
        )
    ).one()
    try:
        queues, workers, schedulers = await asyncio.to_thread(_redis_side, redis_url)
        reachable = True
    except RedisError:
        queues, workers, schedulers, reachable = [], 0, 0, False

    def age(at: datetime | None) -> float | None:
        return (now - at).total_seconds() if at else None

    undone_age = age(oldest_undone)
    reasons = [
        reason
        for stuck, reason in (
            (not reachable, "Redis 无法连接，任务暂存于数据库，恢复后自动补发"),
            (reachable and not workers, "没有运行中的后台任务进程（worker）"),
            (reachable and not schedulers, "没有运行中的调度进程（scheduler）"),
            (unrouted, f"{unrouted} 个案件超过宽限时间仍未完成分派"),
            (undelivered, f"{undelivered} 条转介超过宽限时间仍未送达办理机构"),
            (unsent, f"{unsent} 条工作通知超过宽限时间仍未发出"),
            (failed_notes, f"{failed_notes} 条工作通知发送失败"),
            (
                undone_age is not None and undone_age > normal,
                f"最早的未完成任务已等待 {int(undone_age or 0)} 秒",
            ),
        )
        if stuck
    ]
    return DispatchStatus(
        healthy=not reasons,
        reasons=reasons,
        outbox_pending=pending,
        outbox_oldest_pending_seconds=age(oldest),
        outbox_with_errors=errored,
        work_undone=undone,
        work_oldest_undone_seconds=undone_age,
        cases_unrouted=unrouted or 0,
        referrals_undelivered=undelivered or 0,
        notifications_unsent=unsent or 0,
        notifications_failed=failed_notes or 0,
        redis_reachable=reachable,
        workers_alive=workers,
        schedulers_alive=schedulers,
        queues=queues,
    )
