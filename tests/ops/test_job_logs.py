"""A job's log lines carry its RQ job id and topic."""

import asyncio
import io
import json
import logging
from types import SimpleNamespace

from db.handlers import JobContext
from db.settings import Settings
from dispatch.ops.logs import make_formatter
from dispatch.worker import jobs


def test_a_jobs_log_lines_carry_its_job_id_and_topic(monkeypatch):
    async def handler(ctx, payload):
        logging.getLogger("hotline.test.job").warning("handled %s", payload["n"])

    loop = asyncio.new_event_loop()
    state = SimpleNamespace(loop=loop, context=JobContext(None, Settings()),
                            handlers={"case.status": handler})
    monkeypatch.setattr(jobs, "_state", state)
    monkeypatch.setattr(jobs, "get_current_job", lambda: SimpleNamespace(id="outbox-7-1"))
    out = io.StringIO()
    capture = logging.StreamHandler(out)
    capture.setFormatter(make_formatter(True, "worker"))
    logger = logging.getLogger("hotline.test.job")
    logger.addHandler(capture)
    try:
        jobs.run_topic("case.status", {"n": 1})
        logger.warning("after the job")
    finally:
        logger.removeHandler(capture)
        loop.close()
    during, after = (json.loads(line) for line in out.getvalue().splitlines())
    assert during["event"] == "handled 1" and during["job_id"] == "outbox-7-1"
    assert during["topic"] == "case.status" and during["process"] == "worker"
    assert "job_id" not in after  # unbound once the job is over
