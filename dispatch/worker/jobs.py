"""Background jobs: one RQ entry point for every outbox topic.

The relay enqueues `run_topic(topic, payload, outbox_id)` under the job id
`outbox-<row id>-<attempt>`; the worker runs the topic's async handler on a loop and engine it
keeps for its life, so a job costs a query, not a new connection pool. Handlers are
idempotent: the reconciler enqueues a row again when it is not done in time (Redis lost the
job, a worker died mid-job), and a second run must then change nothing twice. A row already
done is not run again, only acknowledged.
"""

import asyncio
import os
import time
import traceback
from pathlib import Path
from typing import Any

import structlog
from rq import get_current_job

from db.engine import APP_ROLE, make_engine, make_sessionmaker
from db.handlers import Handler, JobContext
from db.metrics import JOB_FAILURES, JOB_SECONDS
from db.outbox_repository import is_done, mark_done
from db.settings import get_settings

# Queues a worker listens on besides the per-office ones, most urgent first. Matching a
# case to a child's file is last: it costs more than routing, acknowledging and delivering
# the case together, and under a burst it waits until they are out instead of halving
# their pace (the operator's "same child?" hint may come a minute late; a referral may not).
FIXED_QUEUES = ("center", "notify", "partner", "sms", "match")


def queue_for(topic: str, payload: dict[str, Any]) -> str:
    """One queue per department office for referrals; fixed queues for everything else."""
    if topic == "referral.dispatch":
        return f"office-{payload['office_id']}"
    if topic.startswith("notify"):
        return "notify"
    if topic.startswith("partner"):
        return "partner"
    if topic.startswith("sms"):
        return "sms"
    if topic == "case.match":
        return "match"
    return "center"


def handlers() -> dict[str, Handler]:
    """Topic → handler. Imported lazily so the API process does not load worker code."""
    from channels.partners import callbacks as partner_callbacks
    from channels.sms import outbound as sms_outbound
    from dispatch.children import tasks as children_tasks
    from dispatch.referrals import tasks as routing_jobs

    return {
        "case.intake": routing_jobs.process_intake,
        "referral.dispatch": routing_jobs.deliver_referral,
        "notify.send": routing_jobs.send_notification,
        "case.status": routing_jobs.case_status,
        children_tasks.TOPIC: children_tasks.match_case,
        sms_outbound.TOPIC: sms_outbound.send_reply,
        partner_callbacks.TOPIC: partner_callbacks.deliver,
    }


async def run_job(
    base: JobContext,
    table: dict[str, Handler],
    topic: str,
    payload: dict[str, Any],
    outbox_id: int | None = None,
) -> bool:
    """Run one row's handler unless the row is already done; then the row is done.

    Returns whether the handler ran. Handlers that mark the row in their own transaction
    (`db.handlers.finish`) save the runner's closing update.
    """
    handler = table.get(topic)
    if handler is None:
        raise LookupError(f"no handler for topic {topic}")
    ctx = base.for_row(outbox_id)
    if outbox_id is not None and await is_done(base.sessions, outbox_id):
        return False
    started = time.perf_counter()
    try:
        await handler(ctx, payload)
    except Exception:
        JOB_FAILURES.labels(topic).inc()
        raise
    finally:
        JOB_SECONDS.labels(topic).observe(time.perf_counter() - started)
    if outbox_id is not None and not ctx.finished:
        await mark_done(base.sessions, outbox_id)
    return True


class _Worker:
    """Per-process state of a worker: its event loop, engine and handler table."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        settings = get_settings()
        url = settings.database_url or os.environ["DATABASE_URL"]
        engine = make_engine(url, pool_size=2, role=APP_ROLE)
        self.context = JobContext(make_sessionmaker(engine), settings)
        self.handlers = handlers()


_state: _Worker | None = None


class JobFailed(RuntimeError):
    """A job's failure as RQ records it (exc_info in Redis, the worker's log): the topic,
    the row, the exception's type and where it was raised — never its message, which can
    carry what the job read (a database error's DETAIL names the values, a KeyError its
    key)."""

    @classmethod
    def of(cls, topic: str, outbox_id: int | None, exc: BaseException) -> "JobFailed":
        where = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
        at = f" at {Path(where[0].filename).name}:{where[0].lineno}" if where else ""
        return cls(f"{topic} (outbox {outbox_id}) failed: {type(exc).__name__}{at}")


def run_topic(topic: str, payload: dict[str, Any], outbox_id: int | None = None) -> None:
    """The RQ job function."""
    global _state
    if _state is None:
        _state = _Worker()
    job = get_current_job()
    with structlog.contextvars.bound_contextvars(job_id=job.id if job else None, topic=topic):
        try:
            _state.loop.run_until_complete(
                run_job(_state.context, _state.handlers, topic, payload, outbox_id)
            )
        except Exception as exc:
            # `from None`: the original exception, message and chain, stays out of the record.
            raise JobFailed.of(topic, outbox_id, exc) from None
