"""The outbox relay: rows written with a change become RQ jobs, in batches.

The relay only enqueues: `relayed_at` is when a row was last enqueued, and it is the job that
marks the row done, in the transaction of its effect. Attempt n of row i runs under the job
id `outbox-<i>-<n>` (`enqueues` counts them), so the reconciler can enqueue a row again
after Redis lost it without RQ's uniqueness guard refusing, and a handler that runs twice
changes nothing twice. A batch goes to Redis in one pipeline. While Redis is down rows stay
unrelayed, with the error and a growing backoff recorded on them, and go out when it returns.
"""

import asyncio
import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from redis import Redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry
from rq import Queue
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.engine import transaction
from db.models import Outbox
from dispatch.worker.jobs import queue_for, run_topic

log = logging.getLogger("hotline.relay")

RESULT_TTL = 24 * 3600  # the reconciler reads a job's state while its row is not done
FAILURE_TTL = 7 * 24 * 3600
JOB_TIMEOUT = 120
BATCH = 500


def relay_redis(url: str) -> Redis:
    """The relay's Redis client: fails fast (the relay backs off itself, row by row), so an
    outage never stalls the scheduler for redis-py's own retry sleeps."""
    return Redis.from_url(
        url, socket_timeout=2, socket_connect_timeout=2, retry=Retry(NoBackoff(), 1)
    )


def job_id(row_id: int, attempt: int) -> str:
    return f"outbox-{row_id}-{attempt}"


def enqueue_rows(redis: Redis, rows: Sequence[Outbox]) -> None:
    """Enqueue each row's next attempt, all in one Redis pipeline (blocking; run in a thread).

    The rows' `enqueues` are not changed here: the caller bumps them once this returned."""
    by_queue: dict[str, list] = defaultdict(list)
    for row in rows:
        by_queue[queue_for(row.topic, row.payload)].append(
            Queue.prepare_data(
                run_topic,
                args=(row.topic, row.payload, row.id),
                job_id=job_id(row.id, row.enqueues + 1),
                result_ttl=RESULT_TTL,
                failure_ttl=FAILURE_TTL,
                timeout=JOB_TIMEOUT,
                description=f"{row.topic} #{row.id}",
            )
        )
    with redis.pipeline() as pipe:
        for name, datas in by_queue.items():
            Queue(name, connection=redis).enqueue_many(datas, pipeline=pipe)
        pipe.execute()


def _backoff(attempts: int) -> timedelta:
    """Short on purpose: when Redis is back, what waited (emergencies too) goes within
    seconds; while it is down a pass costs one failed connect."""
    return timedelta(seconds=min(5, 2 ** min(attempts, 3)))


async def send(redis: Redis, rows: Sequence[Outbox]) -> bool:
    """Enqueue the (locked) rows and record it on them; on a Redis error, record the error
    and back the rows off instead. Returns whether they went out."""
    now = datetime.now(UTC)
    try:
        await asyncio.to_thread(enqueue_rows, redis, rows)
    except RedisError as exc:
        for row in rows:
            row.attempts += 1
            row.last_error = f"redis: {type(exc).__name__}"
            row.available_at = now + _backoff(row.attempts)
        log.warning("redis unavailable; %d outbox rows wait", len(rows))
        return False
    for row in rows:
        row.relayed_at = now
        row.enqueues += 1
    return True


async def relay_once(
    sessions: async_sessionmaker[AsyncSession], redis: Redis, limit: int = BATCH
) -> int:
    """Relay what is due now; returns how many rows went out."""
    async with transaction(sessions) as session:
        rows = (
            (
                await session.execute(
                    select(Outbox)
                    .where(
                        Outbox.relayed_at.is_(None),
                        Outbox.available_at <= datetime.now(UTC),
                        Outbox.done_at.is_(None),
                    )
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
        return len(rows) if await send(redis, rows) else 0
