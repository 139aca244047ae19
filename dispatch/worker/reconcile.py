"""The reconciler: PostgreSQL owns the work, so what Redis lost or a dead worker dropped is
enqueued again, from the outbox rows that are enqueued but not done.

A row is looked at once it has been enqueued for `LOOK_AFTER` seconds, emergencies first
(the intake of an emergency or mandatory case). Its current job's state in Redis decides:
- gone (Redis lost it, e.g. restarted without persistence): enqueue again at once;
- started by a worker that no longer beats (killed mid-job), or taken from its queue but
  never started (killed in between: marked queued, yet in no queue's list; RQ's own cleanup
  of that comes minutes later, or never): enqueue again at once;
- failed (or finished without marking its row) past the row's grace time
  (`HOTLINE_RECONCILE_URGENT_SECONDS` / `HOTLINE_RECONCILE_SECONDS`, doubled with each
  attempt up to 64×, so failing work backs off): enqueue again;
- still waiting in its queue (a backlog) or running on a live worker: only far later
  (10 grace times; the job timeout plus the grace time), as a safety net.
A re-enqueue is a new attempt with its own job id; handlers are idempotent, so a job that
was only slow and now runs twice changes nothing twice.
"""

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from redis import Redis
from rq import Queue
from rq.job import Job, JobStatus
from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.engine import transaction
from db.models import Outbox
from db.settings import Settings
from dispatch.worker import heartbeats
from dispatch.worker.jobs import queue_for
from dispatch.worker.relay import JOB_TIMEOUT, job_id, send

log = logging.getLogger("hotline.reconcile")

LOOK_AFTER = timedelta(seconds=3)
BATCH = 500
MAX_FACTOR = 64
# A job Redis still holds in its queue is not lost, only waiting behind a backlog: enqueuing
# it again would only add load. After this many grace times it is, in case nothing listens.
WAITING_FACTOR = 10

# Enqueued, not done, for a while; urgent ones first. Urgent: the intake of a case that is
# an emergency or a mandatory report.
_STALE = text(
    """
    SELECT o.id, COALESCE(c.emergency OR c.mandatory, false) AS urgent
    FROM outbox o
    LEFT JOIN hcase c
      ON o.topic = 'case.intake' AND c.id = (o.payload->>'case_id')::bigint
    WHERE o.done_at IS NULL AND o.relayed_at IS NOT NULL AND o.relayed_at < :before
    ORDER BY urgent DESC, o.relayed_at, o.id
    LIMIT :limit
    FOR UPDATE OF o SKIP LOCKED
    """
)


@dataclass(frozen=True)
class Grace:
    urgent: timedelta
    normal: timedelta

    @classmethod
    def of(cls, settings: Settings) -> "Grace":
        return cls(
            timedelta(seconds=settings.hotline_reconcile_urgent_seconds),
            timedelta(seconds=settings.hotline_reconcile_seconds),
        )

    def for_row(self, urgent: bool, enqueues: int) -> timedelta:
        base = self.urgent if urgent else self.normal
        return base * min(2 ** max(enqueues - 1, 0), MAX_FACTOR)


def _jobs(redis: Redis, rows: list[Outbox]) -> tuple[list[Job | None], set[str], set[str]]:
    """The rows' current jobs, the living workers, and which of the jobs are still in their
    queue's list (where a job waits until a worker takes it)."""
    ids = [job_id(row.id, row.enqueues) for row in rows]
    with redis.pipeline(transaction=False) as pipe:
        for row, id_ in zip(rows, ids, strict=True):
            pipe.lpos(Queue(queue_for(row.topic, row.payload), connection=redis).key, id_)
        waiting = {id_ for id_, at in zip(ids, pipe.execute(), strict=True) if at is not None}
    return Job.fetch_many(ids, connection=redis), heartbeats.living(redis, "worker"), waiting


def lost(job: Job | None, alive: set[str], waiting: set[str]) -> bool:
    """Redis no longer has the job; its worker died while running it; or it is marked queued
    but is no longer in its queue's list: a worker took it and died before starting it (a
    worker on several queues takes with BLPOP, which leaves no trace; one on a single queue
    moves it to an intermediate list that RQ cleans only minutes later)."""
    if job is None:
        return True
    status = job.get_status(refresh=False)
    if status == JobStatus.STARTED:
        return bool(job.worker_name) and job.worker_name not in alive
    return status == JobStatus.QUEUED and job.id not in waiting


WAITING = (JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.SCHEDULED)


def due_again(
    job: Job | None,
    alive: set[str],
    age: timedelta,
    grace: timedelta,
    waiting: set[str],
) -> bool:
    """Whether a row whose current job is `job`, enqueued `age` ago, is enqueued again."""
    if lost(job, alive, waiting):
        return True
    status = job.get_status(refresh=False)
    if status == JobStatus.STARTED:  # a live worker runs it: only if far past its timeout
        return age > timedelta(seconds=JOB_TIMEOUT) + grace
    if status in WAITING:  # still in its queue (a backlog): a safety net only
        return age > grace * WAITING_FACTOR
    return age > grace  # failed, stopped, or finished without marking the row


async def reconcile_once(
    sessions: async_sessionmaker[AsyncSession],
    redis: Redis,
    grace: Grace,
    now: datetime | None = None,
) -> int:
    """Enqueue again what was lost or is overdue; returns how many rows."""
    now = now or datetime.now(UTC)
    async with transaction(sessions) as session:
        found = (await session.execute(_STALE, {"before": now - LOOK_AFTER, "limit": BATCH})).all()
        if not found:
            return 0
        urgent = {r.id: r.urgent for r in found}
        rows = list(
            (
                await session.execute(
                    select(Outbox).where(Outbox.id.in_(urgent)).order_by(Outbox.id)
                )
            ).scalars()
        )
        jobs, alive, waiting = await asyncio.to_thread(_jobs, redis, rows)
        again = [
            row
            for row, job in zip(rows, jobs, strict=True)
            if due_again(
                job,
                alive,
                now - row.relayed_at,
                grace.for_row(urgent[row.id], row.enqueues),
                waiting,
            )
        ]
        again.sort(key=lambda r: (not urgent[r.id], r.id))
        if again and await send(redis, again):
            log.warning("re-enqueued %d outbox rows not done in time", len(again))
            return len(again)
        return 0


async def prune(
    sessions: async_sessionmaker[AsyncSession], retention: timedelta, limit: int = 5000
) -> int:
    """Delete done rows older than the retention period, a batch at a time."""
    async with transaction(sessions) as session:
        old = (
            select(Outbox.id)
            .where(Outbox.done_at < datetime.now(UTC) - retention)
            .limit(limit)
            .scalar_subquery()
        )
        result = await session.execute(delete(Outbox).where(Outbox.id.in_(old)))
        return result.rowcount or 0
