"""The outbox under a Redis outage, exactly-once relay, and a worker killed mid-job."""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import ThreadingHTTPServer

from redis import Redis
from rq import Queue
from rq.registry import StartedJobRegistry
from sqlalchemy import delete, func, select

from db.handlers import JobContext
from db.models import AppUser, Notification, Outbox, Referral
from db.settings import get_settings
from dispatch.worker.reconcile import Grace, reconcile_once
from dispatch.worker.relay import relay_once, relay_redis
from tests.fixtures.reports import report
from tests.fixtures.twilio_fake import slow_twilio

pytest_plugins = ("tests.fixtures.console",)


async def _relayed_status_row(sessions, redis_client, pump) -> Outbox:
    """A case.status outbox row, relayed: its job waits in the center queue."""
    await pump()
    async with sessions() as session, session.begin():
        row = Outbox(topic="case.status", payload={"case_id": 0, "state": "x", "event": "x"})
        session.add(row)
    assert await relay_once(sessions, redis_client) == 1
    return row


def _dead_redis() -> Redis:
    """A Redis client pointed at a port nobody listens on: what an outage looks like."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return relay_redis(f"redis://127.0.0.1:{port}/0")


async def _pending(sessions) -> list[Outbox]:
    """Work still to relay, as the relay and the dispatch status see it (a row whose work
    is done needs no relay, even if it never went out)."""
    async with sessions() as session:
        return list((await session.execute(
            select(Outbox)
            .where(Outbox.relayed_at.is_(None), Outbox.done_at.is_(None))
            .order_by(Outbox.id)
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
        assert queued.count(f"outbox-{row.id}-1") == 1


async def _row(sessions, row_id: int) -> Outbox:
    async with sessions() as session:
        return await session.get(Outbox, row_id)


async def _intake_row(sessions, case_id: int) -> Outbox:
    async with sessions() as session:
        return await session.scalar(
            select(Outbox).where(
                Outbox.topic == "case.intake",
                Outbox.payload["case_id"].as_string() == str(case_id),
            )
        )


async def test_work_redis_lost_is_enqueued_again_and_done_once(
    client, sessions, redis_client, pump, app
):
    """Enqueued is not done: Redis forgets the job (restarted without persistence), the
    reconciler enqueues the row again as attempt 2, and the work happens once."""
    await pump()
    made = (await client.post("/api/v1/reports", json=report())).json()
    assert await relay_once(sessions, redis_client) >= 1
    row = await _intake_row(sessions, made["case_id"])
    assert row.relayed_at is not None and row.done_at is None and row.enqueues == 1
    redis_client.flushdb()  # Redis lost everything it held
    grace = Grace.of(app.state.runtime.settings)
    later = datetime.now(UTC) + timedelta(seconds=5)
    assert await reconcile_once(sessions, redis_client, grace, now=later) >= 1
    assert f"outbox-{row.id}-2" in Queue("center", connection=redis_client).get_job_ids()
    await pump()
    row = await _row(sessions, row.id)
    assert row.done_at is not None and row.enqueues == 2
    async with sessions() as session:
        departments = list((await session.execute(
            select(Referral.department_code).where(Referral.case_id == made["case_id"])
        )).scalars())
    assert departments.count("police") == 1 and len(departments) == len(set(departments))
    # Done work is left alone.
    await reconcile_once(sessions, redis_client, grace, now=later)
    assert (await _row(sessions, row.id)).enqueues == 2


async def test_a_job_that_finds_its_work_done_only_marks_it(client, sessions, redis_client, pump):
    from dispatch.worker.jobs import handlers, run_job

    await pump()
    made = (await client.post("/api/v1/reports", json=report())).json()
    await pump()
    row = await _intake_row(sessions, made["case_id"])
    context = JobContext(sessions, get_settings())
    # A second run of the same row (a slow job enqueued again) does nothing.
    assert await run_job(context, handlers(), row.topic, row.payload, row.id) is False
    # The same work under a new row (say the row was written twice) changes nothing twice.
    async with sessions() as session, session.begin():
        twin = Outbox(topic="case.intake", payload=row.payload)
        session.add(twin)
    assert await run_job(context, handlers(), twin.topic, twin.payload, twin.id) is True
    assert (await _row(sessions, twin.id)).done_at is not None
    async with sessions() as session:
        referrals = await session.scalar(
            select(func.count()).where(Referral.case_id == made["case_id"])
        )
        notes = (await session.execute(
            select(Notification.referral_id, func.count())
            .where(Notification.case_id == made["case_id"])
            .group_by(Notification.referral_id, Notification.user_id)
        )).all()
    assert referrals >= 1 and all(count == 1 for _, count in notes)


async def test_one_intake_is_one_job_before_its_referrals_reach_their_offices(
    client, sessions, pump, make_user
):
    """Routing, referrals, their delivery and every liaison's notification in the intake job;
    the notifications go out in one job."""
    await pump()
    await make_user("liaison", "police", "990102001")
    await make_user("liaison", "education", "990102")
    made = (await client.post("/api/v1/reports", json=report())).json()
    ran = await pump()
    mine = [t for t, p in ran if p.get("case_id") == made["case_id"] or t == "notify.send"]
    assert mine.count("case.intake") == 1 and "referral.dispatch" not in mine
    assert mine.count("notify.send") == 1
    async with sessions() as session:
        referrals = list((await session.execute(
            select(Referral).where(Referral.case_id == made["case_id"])
        )).scalars())
        notes = list((await session.execute(
            select(Notification).where(Notification.case_id == made["case_id"])
        )).scalars())
    assert referrals and all(r.delivered_at is not None for r in referrals)
    assert notes and all(n.status == "logged" for n in notes)


async def test_done_rows_are_pruned_after_the_retention(sessions, pump):
    from dispatch.worker.reconcile import prune

    await pump()
    async with sessions() as session, session.begin():
        old = Outbox(topic="case.status", payload={}, done_at=datetime.now(UTC) - timedelta(days=9))
        fresh = Outbox(topic="case.status", payload={}, done_at=datetime.now(UTC))
        waiting = Outbox(topic="case.status", payload={}, available_at=datetime.now(UTC)
                         + timedelta(days=30), created_at=datetime.now(UTC) - timedelta(days=9))
        session.add_all([old, fresh, waiting])
    assert await prune(sessions, timedelta(days=7)) >= 1
    assert await _row(sessions, old.id) is None
    assert await _row(sessions, fresh.id) is not None
    assert await _row(sessions, waiting.id) is not None
    async with sessions() as session, session.begin():
        await session.execute(delete(Outbox).where(Outbox.id.in_([fresh.id, waiting.id])))


_SlowTwilio = slow_twilio(hold_seconds=30)


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
    command = [sys.executable, "-m", "dispatch.ops.cli", "worker", "--burst"]
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
    registry = StartedJobRegistry(queue=Queue("notify", connection=redis_client))
    assert registry.get_job_ids(), "the interrupted job is still marked as started"
    # Its worker no longer beats: within seconds the reconciler takes the job as lost and
    # enqueues the row again (attempt 2), instead of RQ's maintenance ten minutes later.
    grace = Grace.of(get_settings())
    deadline = time.monotonic() + 30
    while not await reconcile_once(sessions, redis_client, grace):
        assert time.monotonic() < deadline, "the interrupted job was not enqueued again"
        await asyncio.sleep(0.2)  # polling, not timing
    async with sessions() as session:
        row = await session.scalar(select(Outbox).where(
            Outbox.topic == "notify.send",
            Outbox.payload["notification_id"].as_integer() == note.id,
        ))
    assert row.enqueues == 2 and row.done_at is None
    _SlowTwilio.release.set()
    rerun = await asyncio.to_thread(
        subprocess.run, command, env=env, capture_output=True, timeout=60
    )
    assert rerun.returncode == 0
    async with sessions() as session:
        stored = await session.get(Notification, note.id)
        phone = await session.scalar(select(AppUser.phone).where(AppUser.id == user.id))
    assert stored.status == "sent" and stored.channel == "sms"
    assert (await _row(sessions, row.id)).done_at is not None
    assert len(_SlowTwilio.received) == 2  # the interrupted attempt and the one that finished
    assert phone.encode()[1:] in _SlowTwilio.received[-1].replace(b"%2B", b"+")
    server.shutdown()


async def test_stuck_work_turns_the_dispatch_status_red_with_reasons(
    client, sessions, pump, make_user, login, console_client
):
    """A case whose routing is not done past its grace time is shown as stuck, on the API and
    on the console's status page, until its work is done."""
    from sqlalchemy import update

    await pump()
    supervisor = await login(await make_user("supervisor"))
    made = (await client.post("/api/v1/reports", json=report())).json()
    async with sessions() as session, session.begin():
        await session.execute(
            update(Outbox)
            .where(Outbox.topic == "case.intake",
                   Outbox.payload["case_id"].as_string() == str(made["case_id"]))
            .values(created_at=func.now() - timedelta(minutes=5))
        )
    status = (await client.get("/api/v1/dispatch/status", headers=supervisor)).json()
    assert status["healthy"] is False and status["cases_unrouted"] == 1
    assert any("未完成分派" in reason for reason in status["reasons"])
    assert status["work_oldest_undone_seconds"] >= 300
    admin = await make_user("admin")
    page = await (await console_client(admin)).get("/console/admin")
    assert "调度异常" in page.text and "1 个案件超过宽限时间仍未完成分派" in page.text

    await pump()
    status = (await client.get("/api/v1/dispatch/status", headers=supervisor)).json()
    assert status["cases_unrouted"] == 0
    assert not any("未完成分派" in reason for reason in status["reasons"])


async def test_a_job_waiting_in_its_queue_is_not_enqueued_again_while_it_waits(
    sessions, redis_client, pump, app
):
    """A backlog is not a loss: a job Redis still holds is left alone for ten grace times;
    a failed one is tried again after one (and later attempts wait longer)."""
    from dispatch.worker.reconcile import WAITING_FACTOR

    row = await _relayed_status_row(sessions, redis_client, pump)
    grace = Grace.of(app.state.runtime.settings)
    soon = datetime.now(UTC) + grace.normal * 2
    assert await reconcile_once(sessions, redis_client, grace, now=soon) == 0
    later = datetime.now(UTC) + grace.normal * (WAITING_FACTOR + 1)
    assert await reconcile_once(sessions, redis_client, grace, now=later) == 1
    # Attempt 2 fails: enqueued again only once its (doubled) grace time has passed.
    queue = Queue("center", connection=redis_client)
    job = queue.fetch_job(f"outbox-{row.id}-2")
    queue.remove(job)
    job.set_status("failed")
    enqueued = (await _row(sessions, row.id)).relayed_at
    early = enqueued + grace.normal * 1.5
    assert await reconcile_once(sessions, redis_client, grace, now=early) == 0
    again = enqueued + grace.normal * 3
    assert await reconcile_once(sessions, redis_client, grace, now=again) == 1
    await pump()
    assert (await _row(sessions, row.id)).done_at is not None


async def test_a_job_taken_from_its_queue_by_a_worker_that_died_is_enqueued_again(
    sessions, redis_client, pump, app
):
    """Killed between taking a job and starting it, a worker leaves it in RQ's intermediate
    list (cleaned by RQ minutes later): the reconciler sees it within seconds."""
    row = await _relayed_status_row(sessions, redis_client, pump)
    queue = Queue("center", connection=redis_client)
    redis_client.lmove(queue.key, queue.intermediate_queue_key, "RIGHT", "LEFT")  # as RQ does
    grace = Grace.of(app.state.runtime.settings)
    soon = datetime.now(UTC) + timedelta(seconds=5)
    assert await reconcile_once(sessions, redis_client, grace, now=soon) == 1
    assert queue.get_job_ids() == [f"outbox-{row.id}-2"]
    redis_client.delete(queue.intermediate_queue_key)
    await pump()
    assert (await _row(sessions, row.id)).done_at is not None


async def test_a_job_popped_by_a_worker_on_several_queues_that_died_is_enqueued_again(
    sessions, redis_client, pump, app
):
    """A worker listening to several queues takes a job with BLPOP, which leaves it in no
    list at all, still marked queued; killed before starting it, the job would wait for the
    ten-grace-times safety net (100 s for an emergency). The reconciler sees it in seconds."""
    row = await _relayed_status_row(sessions, redis_client, pump)
    queue = Queue("center", connection=redis_client)
    assert redis_client.blpop([queue.key, "rq:queue:notify"], 1)  # as RQ's worker does
    grace = Grace.of(app.state.runtime.settings)
    soon = datetime.now(UTC) + timedelta(seconds=5)
    assert await reconcile_once(sessions, redis_client, grace, now=soon) == 1
    assert queue.get_job_ids() == [f"outbox-{row.id}-2"]
    await pump()
    assert (await _row(sessions, row.id)).done_at is not None


async def test_a_worker_marks_its_row_done_while_the_reconciler_asks_redis(
    sessions, redis_client, pump, app, database_url, monkeypatch
):
    """The reconciler holds no lock on the rows it judges while it asks Redis about their
    jobs (a backlog's worth): a worker finishing one of them must not wait for the pass.
    Under a burst the lock made every worker's `finish` wait (one worker routed ~6 cases/s)."""
    import asyncpg

    from dispatch.worker import reconcile

    row = await _relayed_status_row(sessions, redis_client, pump)
    judged = reconcile._overdue
    finished: list[str] = []

    async def worker_finishes() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute("SET lock_timeout = '2s'")
            status = await conn.execute(
                "UPDATE outbox SET done_at = now() WHERE id = $1 AND done_at IS NULL", row.id
            )
            finished.append(status)
        finally:
            await conn.close()

    def asking_redis(*args):
        asyncio.run(worker_finishes())  # the worker, meanwhile, on its own connection
        return judged(*args)

    monkeypatch.setattr(reconcile, "_overdue", asking_redis)
    grace = Grace.of(app.state.runtime.settings)
    later = datetime.now(UTC) + grace.normal * 100  # long past every safety net
    # The row was done meanwhile: it is not enqueued again, and the worker did not wait.
    assert await reconcile_once(sessions, redis_client, grace, now=later) == 0
    assert finished == ["UPDATE 1"]


async def test_under_a_backlog_a_worker_routes_before_it_matches(
    client, sessions, redis_client, redis_url, database_url, pump
):
    """Matching waits behind routing: a case.match queued first still runs after a new
    report's intake job, so a burst's referrals are not held back by matching."""
    await pump()
    earlier = (await client.post("/api/v1/reports", json=report())).json()
    await pump()
    async with sessions() as session, session.begin():
        match = Outbox(topic="case.match", payload={"case_id": earlier["case_id"]})
        session.add(match)
    later = (await client.post("/api/v1/reports", json=report())).json()
    assert await relay_once(sessions, redis_client) == 2
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url}
    command = [sys.executable, "-m", "dispatch.ops.cli", "worker", "--burst"]
    done = await asyncio.to_thread(subprocess.run, command, env=env, capture_output=True,
                                   timeout=120)
    assert done.returncode == 0
    intake = await _intake_row(sessions, later["case_id"])
    matched = await _row(sessions, match.id)
    assert intake.id > match.id and intake.done_at and matched.done_at
    assert intake.done_at < matched.done_at
    await pump()
