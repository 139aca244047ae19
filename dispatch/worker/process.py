"""`hotline worker`: an RQ worker on the center's queues and every office's queue, that does
not die with Redis.

A SimpleWorker runs jobs in its own process, keeping one event loop and connection pool for
its life (see `dispatch.worker.jobs`). Several workers can run side by side. RQ's worker leaves its
loop when Redis drops while it is busy (`ConnectionError … quitting`); here the loop is
started again, after a growing pause, until a signal asks the process to stop. Each run
registers under a new name (RQ refuses a name whose last run could not record its death), and
a heartbeat thread tells the reconciler and `/readyz` which worker names are alive.
"""

import asyncio
import logging
import signal
import threading
import time
import uuid

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, SimpleWorker
from sqlalchemy import select

from db.engine import make_engine, make_sessionmaker
from db.models import Office
from dispatch.worker.heartbeats import Heartbeat
from dispatch.worker.jobs import FIXED_QUEUES
from dispatch.worker.relay import relay_redis

log = logging.getLogger("hotline.worker")

FIRST_PAUSE, LONGEST_PAUSE = 0.5, 10.0


async def _office_ids(database_url: str) -> list[int]:
    engine = make_engine(database_url, pool_size=1)
    try:
        async with make_sessionmaker(engine)() as session:
            return list((await session.execute(select(Office.id).order_by(Office.id))).scalars())
    finally:
        await engine.dispose()


def queue_names(database_url: str) -> list[str]:
    offices = asyncio.run(_office_ids(database_url))
    return [FIXED_QUEUES[0], *(f"office-{i}" for i in offices), *FIXED_QUEUES[1:]]


class _Worker(SimpleWorker):
    """Remembers a stop request (RQ's idle path raises without recording it)."""

    stop_asked = False

    def request_stop(self, signum, frame) -> None:
        self.stop_asked = True
        super().request_stop(signum, frame)


def _name() -> str:
    return f"hotline-{uuid.uuid4().hex[:16]}"


def run_worker(database_url: str, redis_url: str, *, burst: bool = False) -> bool:
    """Work until asked to stop (or, with `burst`, until the queues are empty)."""
    names = queue_names(database_url)
    heartbeat = Heartbeat(relay_redis(redis_url), "worker", _name())
    heartbeat.start()
    pause = FIRST_PAUSE
    worked = False
    stopping = threading.Event()
    try:
        while not stopping.is_set():
            redis = Redis.from_url(redis_url, socket_connect_timeout=2)
            worker = _Worker(
                [Queue(name, connection=redis) for name in names],
                connection=redis,
                name=heartbeat.process,
            )
            started = time.monotonic()
            try:
                worked = worker.work(burst=burst, logging_level="WARNING") or worked
                if burst or worker.stop_asked:
                    return worked
                log.warning("worker %s left its loop; starting again", worker.name)
            except RedisError as exc:
                if worker.stop_asked:
                    return worked
                log.warning("redis unavailable (%s); retrying in %.1f s", type(exc).__name__, pause)
            finally:
                redis.close()
            if time.monotonic() - started > 30:
                pause = FIRST_PAUSE  # it ran fine for a while: this is a new outage
            # Between runs the signals are ours (RQ's handlers would call Redis).
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, lambda *_: stopping.set())
            if stopping.wait(pause):
                return worked
            pause = min(pause * 2, LONGEST_PAUSE)
            heartbeat.process = _name()
        return worked
    finally:
        heartbeat.close()
