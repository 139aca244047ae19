"""The outbox under a Redis outage, exactly-once relay, and a worker killed mid-job."""

import asyncio
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from redis import Redis
from rq import Queue
from rq.job import Job
from rq.registry import StartedJobRegistry
from sqlalchemy import func, select

from db.models import AppUser, Notification, Outbox
from dispatch.relay import relay_once, relay_redis
from tests.test_case_lifecycle import report


def _dead_redis() -> Redis:
    """A Redis client pointed at a port nobody listens on: what an outage looks like."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return relay_redis(f"redis://127.0.0.1:{port}/0")


async def _pending(sessions) -> list[Outbox]:
    async with sessions() as session:
        return list((await session.execute(
            select(Outbox).where(Outbox.relayed_at.is_(None)).order_by(Outbox.id)
        )).scalars())


async def test_reports_keep_arriving_while_redis_is_down_and_go_out_once(
    client, sessions, redis_client, pump, make_user, login
):
    await pump()  # start from a quiet outbox
    dead = _dead_redis()
    receipts = []
    for _ in range(5):
        response = await client.post("/api/v1/reports", json=report())
        assert response.status_code == 201  # intake never waits for Redis
        receipts.append(response.json())
        assert await relay_once(sessions, dead) == 0
    pending = await _pending(sessions)
    assert len(pending) == 5
    assert all(row.attempts >= 1 and row.last_error.startswith("redis") for row in pending)
    supervisor = await login(await make_user("supervisor"))
    status = (await client.get("/api/v1/dispatch/status", headers=supervisor)).json()
    assert status["outbox_pending"] == 5 and status["outbox_with_errors"] == 5
    caseworker = await login(await make_user("caseworker"))
    assert (await client.get("/api/v1/dispatch/status", headers=caseworker)).status_code == 403

    # Redis is back: after the backoff every row is relayed, each exactly once.
    async with sessions() as session, session.begin():
        for row in await _pending(sessions):
            (await session.get(Outbox, row.id)).available_at = func.now()
    assert await relay_once(sessions, redis_client) == 5
    assert await relay_once(sessions, redis_client) == 0
    queued = Queue("center", connection=redis_client).get_job_ids()
    for row in pending:
        assert queued.count(f"outbox-{row.id}") == 1


async def test_a_row_enqueued_before_a_crash_is_not_enqueued_twice(sessions, redis_client, pump):
    from dispatch.relay import enqueue

    await pump()
    async with sessions() as session, session.begin():
        row = Outbox(topic="case.status", payload={"case_id": 0, "state": "x", "event": "x"})
        session.add(row)
    # The relay enqueued it, then died before marking the row...
    enqueue(redis_client, row)
    # ...so the next pass finds it again: RQ already has it and nothing is added.
    assert await relay_once(sessions, redis_client) == 1
    queue = Queue("center", connection=redis_client)
    assert queue.get_job_ids().count(f"outbox-{row.id}") == 1
    await pump()


class _SlowTwilio(BaseHTTPRequestHandler):
    """A fake Twilio API whose first message request hangs until released."""

    release = threading.Event()
    arrived = threading.Event()
    received: list[bytes] = []

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        type(self).received.append(body)
        type(self).arrived.set()
        if len(type(self).received) == 1:
            type(self).release.wait(30)
        payload = b'{"sid": "SM' + secrets.token_hex(16).encode() + b'", "status": "queued"}'
        self.send_response(201)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args) -> None:
        pass


async def test_worker_killed_mid_job_the_job_comes_back_and_completes(
    sessions, redis_client, redis_url, database_url, make_user, pump
):
    await pump()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SlowTwilio)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    user = await make_user("supervisor", phone="+8613900000099")
    async with sessions() as session, session.begin():
        note = Notification(user_id=user.id, kind="escalated", text="案件#1 督办测试")
        session.add(note)
        await session.flush()
        session.add(Outbox(topic="notify.send", payload={"notification_id": note.id}))
    assert await relay_once(sessions, redis_client) == 1

    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
        "TWILIO_AUTH_TOKEN": "token",
        "TWILIO_FROM_NUMBER": "+15005550006",
        "TWILIO_API_BASE_URL": f"http://127.0.0.1:{server.server_port}",
    }
    command = [sys.executable, "-m", "dispatch.cli", "worker", "--burst"]
    worker = await asyncio.to_thread(
        subprocess.Popen, command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        reached = await asyncio.to_thread(_SlowTwilio.arrived.wait, 30)
        assert reached, "the worker never reached the SMS API"
        worker.send_signal(signal.SIGKILL)  # mid-job: the request is in flight
        await asyncio.to_thread(worker.wait, 10)
    finally:
        if worker.poll() is None:
            worker.kill()
    queue = Queue("notify", connection=redis_client)
    registry = StartedJobRegistry(queue=queue)
    assert registry.get_job_ids(), "the interrupted job is still marked as started"
    # Time passes beyond the job's heartbeat: RQ's maintenance finds it abandoned and, as
    # it has retries left, puts it back (the clock is moved, nothing sleeps).
    registry.cleanup(timestamp=time.time() + 3600)
    retry_at = queue.scheduled_job_registry
    due = retry_at.get_job_ids()
    assert due, "the abandoned job was scheduled for a retry"
    for job_id in due:  # the retry interval has passed: what RQ's scheduler does then
        job = Job.fetch(job_id, connection=redis_client)
        retry_at.remove(job)
        queue.enqueue_job(job)
    _SlowTwilio.release.set()
    rerun = await asyncio.to_thread(
        subprocess.run, command, env=env, capture_output=True, timeout=60
    )
    assert rerun.returncode == 0
    async with sessions() as session:
        stored = await session.get(Notification, note.id)
        phone = await session.scalar(select(AppUser.phone).where(AppUser.id == user.id))
    assert stored.status == "sent" and stored.channel == "sms"
    assert len(_SlowTwilio.received) == 2  # the interrupted attempt and the one that finished
    assert phone.encode()[1:] in _SlowTwilio.received[-1].replace(b"%2B", b"+")
    server.shutdown()
