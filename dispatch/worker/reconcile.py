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
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

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
# an emergency or a mandatory report. Read without locks: the workers mark these very rows
# done, and a lock held while Redis is asked (a backlog's worth of jobs) made every worker's
# `finish` wait for the whole pass (bench_burst: one worker routed ~6 cases/s).
_STALE = text(
    """
    SELECT o.id, o.topic, o.payload, o.enqueues, o.relayed_at,
           COALESCE(c.emergency OR c.mandatory, false) AS urgent
    FROM outbox o
    LEFT JOIN hcase c
      ON o.topic = 'case.intake' AND c.id = (o.payload->>'case_id')::bigint
    WHERE o.done_at IS NULL AND o.relayed_at IS NOT NULL AND o.relayed_at < :before
    ORDER BY urgent DESC, o.relayed_at, o.id
    LIMIT :limit
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


def _waiting(redis: Redis, rows: Sequence[Any]) -> set[str]:
    """The rows' job ids still in their queue's list (where a job waits until a worker takes
    it): each queue read once, not searched once per row (LPOS is linear in the backlog)."""
    queues = sorted({queue_for(row.topic, row.payload) for row in rows})
    with redis.pipeline(transaction=False) as pipe:
        for name in queues:
            pipe.lrange(Queue(name, connection=redis).key, 0, -1)
        listed = pipe.execute()
    return {id_.decode() for ids in listed for id_ in ids}


def _jobs(redis: Redis, rows: Sequence[Any]) -> dict[str, Job | None]:
    """The current jobs of the rows, by job id (None: Redis no longer has it)."""
    ids = [job_id(row.id, row.enqueues) for row in rows]
    return dict(zip(ids, Job.fetch_many(ids, connection=redis), strict=True))


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


def _overdue(
    redis: Redis, rows: Sequence[Any], urgent: dict[int, bool], grace: Grace, now: datetime
) -> list[Any]:
    """The rows (as `_STALE` reads them) to enqueue again; blocking Redis reads, run in a
    thread. A job still in its queue is not lost: it is enqueued again only past the safety
    net, with no read of its own, so a backlog costs one list read per queue, not a job
    read per row."""
    waiting = _waiting(redis, rows)
    alive = heartbeats.living(redis, "worker")
    looked = [row for row in rows if job_id(row.id, row.enqueues) not in waiting]
    jobs = _jobs(redis, looked)
    again = []
    for row in rows:
        id_ = job_id(row.id, row.enqueues)
        row_grace = grace.for_row(urgent[row.id], row.enqueues)
        age = now - row.relayed_at
        if id_ in waiting:
            if age > row_grace * WAITING_FACTOR:
                again.append(row)
        elif due_again(jobs[id_], alive, age, row_grace, waiting):
            again.append(row)
    return again


async def reconcile_once(
    sessions: async_sessionmaker[AsyncSession],
    redis: Redis,
    grace: Grace,
    now: datetime | None = None,
) -> int:
    """Enqueue again what was lost or is overdue; returns how many rows.

    Rows are read and judged with no lock held; the few found due are then locked (SKIP
    LOCKED) only if still as judged (not done, not enqueued again by another scheduler
    meanwhile), enqueued and recorded in one short transaction."""
    now = now or datetime.now(UTC)
    async with transaction(sessions) as session:
        rows = (await session.execute(_STALE, {"before": now - LOOK_AFTER, "limit": BATCH})).all()
    if not rows:
        return 0
    urgent = {r.id: r.urgent for r in rows}
    seen = await asyncio.to_thread(_overdue, redis, rows, urgent, grace, now)
    if not seen:
        return 0
    async with transaction(sessions) as session:
        locked = (
            await session.execute(
                select(Outbox)
                .where(Outbox.id.in_([row.id for row in seen]), Outbox.done_at.is_(None))
                .with_for_update(skip_locked=True)
            )
        ).scalars()
        judged = {row.id: row.enqueues for row in seen}
        again = [row for row in locked if row.enqueues == judged[row.id]]
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
