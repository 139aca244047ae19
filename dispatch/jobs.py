"""Background jobs: one RQ entry point for every outbox topic.

The relay enqueues `run_topic(topic, payload)` under the job id `outbox-<row id>`; the
worker runs the topic's async handler on a loop and engine it keeps for its life, so a job
costs a query, not a new connection pool. Handlers are idempotent: a job may run again after
a worker dies mid-job, and must then change nothing twice.
"""

import asyncio
import os
from typing import Any

from db.engine import make_engine, make_sessionmaker
from db.handlers import Handler, JobContext
from db.settings import get_settings

# Queues a worker listens on besides the per-office ones, most urgent first.
FIXED_QUEUES = ("center", "notify", "partner", "sms")


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
    return "center"


def handlers() -> dict[str, Handler]:
    """Topic → handler. Imported lazily so the API process does not load worker code."""
    from channels import partner_callbacks, sms_outbound
    from dispatch import routing_jobs

    return {
        "case.intake": routing_jobs.process_intake,
        "referral.dispatch": routing_jobs.deliver_referral,
        "notify.send": routing_jobs.send_notification,
        "case.status": routing_jobs.case_status,
        sms_outbound.TOPIC: sms_outbound.send_reply,
        partner_callbacks.TOPIC: partner_callbacks.deliver,
    }


class _Worker:
    """Per-process state of a worker: its event loop, engine and handler table."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        settings = get_settings()
        url = settings.database_url or os.environ["DATABASE_URL"]
        engine = make_engine(url, pool_size=2)
        self.context = JobContext(make_sessionmaker(engine), settings)
        self.handlers = handlers()


_state: _Worker | None = None


def run_topic(topic: str, payload: dict[str, Any]) -> None:
    """The RQ job function."""
    global _state
    if _state is None:
        _state = _Worker()
    handler = _state.handlers.get(topic)
    if handler is None:
        raise LookupError(f"no handler for topic {topic}")
    _state.loop.run_until_complete(handler(_state.context, payload))
