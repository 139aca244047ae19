"""Nothing lost, whatever Redis and the workers do: real processes, a real Redis killed.

- A Redis of the test's own that does not persist is killed while reports arrive (the worker
  busy with a job at that moment) and restarted empty: in the end every case is routed and
  every referral delivered, none twice, and the busy worker is still the same process.
- The worker is SIGKILLed: /readyz names it, and a report made meanwhile is routed within
  seconds of a new worker starting.
- Under `hotline up`, five worker kills in a row: the supervisor restarts the worker each
  time and every police copy is out within a minute of the last kill.
Nothing here sleeps for timing: every wait polls for an outcome, with a deadline.
"""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from http.server import ThreadingHTTPServer
from pathlib import Path

import httpx
import psutil
import pytest
from sqlalchemy import delete, func, select

from db.engine import make_engine, make_sessionmaker
from db.models import AppUser, Case, Notification, Outbox, Referral
from tests.fixtures.processes import PrivateRedis
from tests.fixtures.reports import report
from tests.fixtures.twilio_fake import slow_twilio

POLL = 0.2  # seconds between looks; never a measure of anything


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def until(what: str, check: Callable[[], Awaitable[bool]], seconds: float) -> float:
    """Poll `check` until it holds; returns the seconds it took. Fails after `seconds`."""
    started = time.monotonic()
    while not await check():
        assert time.monotonic() - started < seconds, f"not within {seconds:.0f} s: {what}"
        await asyncio.sleep(POLL)
    return time.monotonic() - started


_SlowTwilio = slow_twilio(hold_seconds=60)


def _process(kind: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "dispatch.ops.cli", kind], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def _stop(*procs: subprocess.Popen) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def _routed(sessions, case_ids: list[int]) -> bool:
    """Every case registered (routed to its departments, police included), every one of its
    referrals delivered to its office's queue and every liaison told."""
    async with sessions() as session:
        states = (await session.execute(
            select(Case.state).where(Case.id.in_(case_ids))
        )).scalars().all()
        police = await session.scalar(select(func.count(func.distinct(Referral.case_id))).where(
            Referral.case_id.in_(case_ids), Referral.department_code == "police",
            Referral.delivered_at.is_not(None),
        ))
        undelivered = await session.scalar(select(func.count()).where(
            Referral.case_id.in_(case_ids), Referral.delivered_at.is_(None),
            Referral.status == "queued",
        ))
        untold = await session.scalar(select(func.count()).where(
            Notification.case_id.in_(case_ids), Notification.status.not_in(("sent", "logged"))
        ))
    return (len(states) == len(case_ids) and all(s != "discovered" for s in states)
            and police == len(case_ids) and undelivered == 0 and untold == 0)


async def _none_twice(sessions, case_ids: list[int]) -> None:
    async with sessions() as session:
        per_department = (await session.execute(
            select(Referral.case_id, Referral.department_code, func.count())
            .where(Referral.case_id.in_(case_ids))
            .group_by(Referral.case_id, Referral.department_code)
        )).all()
        per_referral = (await session.execute(
            select(Notification.referral_id, Notification.user_id, func.count())
            .where(Notification.case_id.in_(case_ids))
            .group_by(Notification.referral_id, Notification.user_id)
        )).all()
        unsent = await session.scalar(select(func.count()).where(
            Notification.case_id.in_(case_ids), Notification.status.not_in(("sent", "logged"))
        ))
    assert per_department and all(n == 1 for *_, n in per_department), per_department
    assert per_referral and all(n == 1 for *_, n in per_referral), per_referral
    assert unsent == 0


@pytest.fixture
async def retire(sessions) -> AsyncIterator[list[int]]:
    """Cases a test made by the dozen: their referrals (and notifications) are removed
    afterwards, so they do not crowd later tests' first pages of referrals."""
    cases: list[int] = []
    yield cases
    async with sessions() as session, session.begin():
        await session.execute(delete(Notification).where(Notification.case_id.in_(cases)))
        await session.execute(delete(Referral).where(Referral.case_id.in_(cases)))


@pytest.fixture
async def private_app(settings, database_url) -> AsyncIterator:
    """The API on a Redis of this test's own (started and killed by the test)."""
    from dispatch.app import create_app

    folder = Path(tempfile.mkdtemp(prefix="hr", dir="/tmp"))
    redis = PrivateRedis(folder)
    redis.start()
    application = create_app(settings, database_url=database_url, redis_url=redis.url)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, client=("203.0.113.9", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c, redis
    if redis.proc is not None and redis.proc.poll() is None:
        redis.kill()


async def test_redis_killed_and_restarted_empty_loses_nothing_and_a_killed_worker_is_named(
    private_app, settings, database_url, sessions, make_user, pump, retire
):
    client, redis = private_app
    await pump()  # the shared outbox starts quiet
    twilio = ThreadingHTTPServer(("127.0.0.1", 0), _SlowTwilio)
    threading.Thread(target=twilio.serve_forever, daemon=True).start()
    liaison = await make_user("liaison", "police", "990102001", phone="+8613900000123")
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis.url,
        "HOTLINE_SECRET_KEY": settings.hotline_secret_key,
        "HOTLINE_DATA_DIR": str(redis.folder),
        "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
        "TWILIO_AUTH_TOKEN": "token",
        "TWILIO_FROM_NUMBER": "+15005550006",
        "TWILIO_API_BASE_URL": f"http://127.0.0.1:{twilio.server_port}",
    }
    worker, scheduler = _process("worker", env), _process("scheduler", env)
    cases = retire

    async def intake(n: int) -> None:
        for _ in range(n):
            made = await client.post("/api/v1/reports", json=report())
            assert made.status_code == 201  # accepted, whatever Redis is doing
            cases.append(made.json()["case_id"])

    async def ready() -> bool:
        answer = await client.get("/readyz")
        return answer.status_code == 200 and answer.json()["missing"] == []

    try:
        await until("worker and scheduler ready", ready, 30)
        # The first case's notification keeps the worker busy inside Twilio's API...
        await intake(1)
        assert await asyncio.to_thread(_SlowTwilio.arrived.wait, 30), "worker never got busy"
        await intake(10)
        redis.kill()  # ...when Redis dies, and everything it held is gone.
        await intake(10)
        _SlowTwilio.release.set()  # the busy job ends while Redis is away
        redis.start()
        await intake(10)
        await until("every case routed", lambda: _routed(sessions, cases), 60)
        await _none_twice(sessions, cases)
        assert worker.poll() is None, "the busy worker exited with Redis"
        async with sessions() as session:
            sent = await session.scalar(select(func.count()).where(
                Notification.case_id.in_(cases), Notification.status == "sent"))
            mine = await session.scalar(select(func.count()).where(
                Notification.user_id == liaison.id, Notification.status == "sent"))
        assert mine == len(cases) and len(_SlowTwilio.received) == sent  # each SMS sent once

        # The worker is killed: /readyz names it; a report made meanwhile waits, and is
        # routed within seconds once a worker runs again.
        worker.kill()
        worker.wait(10)

        async def named() -> bool:
            answer = await client.get("/readyz")
            return answer.status_code == 200 and answer.json()["missing"] == ["worker"]

        await until("/readyz names the missing worker", named, 20)
        waiting = len(cases)
        await intake(1)
        worker = _process("worker", env)
        await until("the report made meanwhile routed", lambda: _routed(sessions, cases), 30)
        assert cases[waiting:] and await ready()
    finally:
        _SlowTwilio.release.set()
        _stop(worker, scheduler)
        twilio.shutdown()


def _workers(up: subprocess.Popen) -> list[psutil.Process]:
    """`hotline up`'s living worker children (a killed one is a zombie until reaped)."""
    found = []
    for child in psutil.Process(up.pid).children():
        try:
            cmdline = child.cmdline()  # RQ renames a worker "rq:worker:…" with setproctitle
            is_worker = cmdline[-1:] == ["worker"] or cmdline[:1] and cmdline[0].startswith(
                "rq:worker"
            )
            if child.status() != psutil.STATUS_ZOMBIE and is_worker:
                found.append(child)
        except psutil.Error:
            pass
    return found


async def test_five_worker_kills_under_hotline_up_every_police_copy_out_within_a_minute(
    settings, fresh_database
):
    """On a database and a Redis of its own, so nothing other tests left behind is in the
    worker's way."""
    database_url = await asyncio.to_thread(fresh_database)  # `hotline up` migrates it
    redis = PrivateRedis(Path(tempfile.mkdtemp(prefix="hk", dir="/tmp")))
    redis.start()
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis.url,
        "HOTLINE_SECRET_KEY": settings.hotline_secret_key,
        "HOTLINE_DATA_DIR": str(redis.folder),
        "HOTLINE_PORT": str(port),
        "HOTLINE_WORKERS": "1",
        "HOTLINE_API_WORKERS": "1",
    }
    hotline = str(Path(sys.executable).with_name("hotline"))
    up = await asyncio.to_thread(
        subprocess.Popen, [hotline, "up"], env=env, cwd=redis.folder, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    engine = make_engine(database_url, pool_size=2)
    sessions = make_sessionmaker(engine)
    cases: list[int] = []
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:

            async def ready() -> bool:
                assert up.poll() is None, "hotline up exited"
                try:
                    answer = await http.get("/readyz")
                    return answer.status_code == 200 and answer.json()["missing"] == []
                except httpx.TransportError:
                    return False

            await until("hotline up ready", ready, 60)
            async with sessions() as session, session.begin():  # told of every police copy
                session.add(AppUser(username="police_liaison", password_hash="-", role="liaison",
                                    department_code="police", jurisdiction_code="990102001"))
            for _ in range(5):
                for _ in range(2):
                    made = await http.post("/api/v1/reports", json=report())
                    assert made.status_code == 201
                    cases.append(made.json()["case_id"])
                (victim,) = _workers(up)
                victim.send_signal(signal.SIGKILL)  # jobs in flight are interrupted

                async def replaced(old: int = victim.pid) -> bool:
                    return [p.pid for p in _workers(up)] not in ([], [old])

                await until("the supervisor restarts the worker", replaced, 30)
            # Within a minute of the last kill every police copy is out.
            took = await until("every police copy out", lambda: _routed(sessions, cases), 60)
            print(f"every police copy out {took:.1f} s after the last restart")
        await _none_twice(sessions, cases)
        async with sessions() as session:
            undone = await session.scalar(select(func.count()).where(
                Outbox.done_at.is_(None), Outbox.topic == "case.intake",
            ))
        assert undone == 0
    finally:
        up.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(up.wait, 60)
        except subprocess.TimeoutExpired:
            os.killpg(up.pid, signal.SIGKILL)
        await engine.dispose()
        redis.kill()
