"""The outbox relay: rows written with a change become RQ jobs, each exactly once.

A row is enqueued under the job id `outbox-<id>` with `unique=True`, then marked relayed in
the same PostgreSQL transaction that locked it. If the process dies between the two, the
next pass tries again and RQ answers DuplicateJobError: the job is already there, so the
row is marked and nothing runs twice. While Redis is down rows stay unrelayed, with the
error and a growing backoff recorded on them, and go out when it returns.
"""

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from redis import Redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry
from rq import Queue
from rq import Retry as JobRetry
from rq.exceptions import DuplicateJobError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.engine import transaction
from db.models import Outbox
from dispatch.jobs import queue_for, run_topic

log = logging.getLogger("hotline.relay")

RETRY = JobRetry(max=8, interval=[5, 15, 60, 300, 900, 1800, 3600, 3600])
RESULT_TTL = 7 * 24 * 3600  # keeps the job key, and so the uniqueness check, for a week
FAILURE_TTL = 30 * 24 * 3600
JOB_TIMEOUT = 120


def relay_redis(url: str) -> Redis:
    """The relay's Redis client: fails fast (the relay backs off itself, row by row), so an
    outage never stalls the scheduler for redis-py's own retry sleeps."""
    return Redis.from_url(
        url, socket_timeout=2, socket_connect_timeout=2, retry=Retry(NoBackoff(), 1)
    )


def enqueue(redis: Redis, row: Outbox) -> None:
    queue = Queue(queue_for(row.topic, row.payload), connection=redis)
    try:
        queue.enqueue(
            run_topic,
            row.topic,
            row.payload,
            job_id=f"outbox-{row.id}",
            unique=True,
            retry=RETRY,
            result_ttl=RESULT_TTL,
            failure_ttl=FAILURE_TTL,
            job_timeout=JOB_TIMEOUT,
            description=f"{row.topic} #{row.id}",
        )
    except DuplicateJobError:
        log.info("outbox row %s was already enqueued", row.id)


def _backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(60, 2 ** min(attempts, 6)))


async def relay_once(
    sessions: async_sessionmaker[AsyncSession], redis: Redis, limit: int = 200
) -> int:
    """Relay what is due now; returns how many rows went out."""
    async with transaction(sessions) as session:
        rows = (
            (
                await session.execute(
                    select(Outbox)
                    .where(Outbox.relayed_at.is_(None), Outbox.available_at <= datetime.now(UTC))
                    .order_by(Outbox.id)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
            )
            .scalars()
            .all()
        )
        if not rows:
            return 0
        sent = 0
        try:
            for row in rows:
                await asyncio.to_thread(enqueue, redis, row)
                row.relayed_at = datetime.now(UTC)
                sent += 1
        except RedisError as exc:
            now = datetime.now(UTC)
            for row in rows[sent:]:
                row.attempts += 1
                row.last_error = f"redis: {type(exc).__name__}"
                row.available_at = now + _backoff(row.attempts)
            log.warning("redis unavailable; %d outbox rows wait", len(rows) - sent)
        return sent
