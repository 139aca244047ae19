"""A failed background job as RQ records it: nothing of what the job was handling."""

import asyncio
import secrets

from redis import Redis
from rq import Queue, SimpleWorker

from db.handlers import JobContext
from dispatch.worker import jobs


def _leaky_handler(phone: str):
    async def handle(ctx, payload) -> None:
        # What a database error or a KeyError on a row looks like: the values in the message.
        raise ValueError(f'Key (phone)=({phone}) already exists; child "王小红"')

    return handle


def test_a_failed_job_keeps_no_personal_data_in_redis(redis_url, settings):
    redis = Redis.from_url(redis_url)
    phone = "+86139" + str(secrets.randbelow(10**8)).zfill(8)
    state = jobs._Worker.__new__(jobs._Worker)
    state.loop = asyncio.new_event_loop()
    state.context = JobContext(None, settings)
    state.handlers = {"test.leak": _leaky_handler(phone)}
    saved, jobs._state = jobs._state, state
    queue = Queue("privacy-" + secrets.token_hex(4), connection=redis)
    try:
        job = queue.enqueue(jobs.run_topic, "test.leak", {"case_id": 1})
        SimpleWorker([queue], connection=redis).work(burst=True)
        job.refresh()
        assert job.is_failed
        record = job.latest_result().exc_string
        assert "test.leak" in record and "ValueError" in record  # still says what failed
        stored = b"".join(
            redis.dump(key) or b"" for key in redis.scan_iter(match=f"*{job.id}*")
        ) + (redis.dump(f"rq:job:{job.id}") or b"")
        for plain in (phone, phone[3:], "王小红".encode().decode()):
            assert plain not in record
            assert plain.encode() not in stored
    finally:
        jobs._state = saved
        state.loop.close()
        queue.delete(delete_jobs=True)
