"""`hotline worker`: an RQ worker on the center's queues and every office's queue.

A SimpleWorker runs jobs in its own process, keeping one event loop and connection pool for
its life (see `dispatch.jobs`); `--with-scheduler` semantics are on, so retries with
intervals come back. Several workers can run side by side.
"""

import asyncio
import logging

from redis import Redis
from rq import Queue, SimpleWorker
from sqlalchemy import select

from db.engine import make_engine, make_sessionmaker
from db.models import Office
from dispatch.jobs import FIXED_QUEUES


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


def run_worker(database_url: str, redis_url: str, *, burst: bool = False) -> bool:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    redis = Redis.from_url(redis_url)
    queues = [Queue(name, connection=redis) for name in queue_names(database_url)]
    worker = SimpleWorker(queues, connection=redis)
    return worker.work(with_scheduler=True, burst=burst, logging_level="WARNING")
