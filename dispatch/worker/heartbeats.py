"""Process heartbeats in Redis: workers and schedulers say every few seconds that they live.

`/readyz` names a kind with no live process; the reconciler takes a job whose worker
stopped beating as interrupted. One sorted set per kind (member: process name, score: the
last beat), so a reader needs one command and no key scan.
"""

import logging
import threading
import time

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import RedisError

log = logging.getLogger("hotline.heartbeat")

INTERVAL = 2.0
DEAD_AFTER = 6.0  # three missed beats
KINDS = ("worker", "scheduler")


def _key(kind: str) -> str:
    return f"hotline:alive:{kind}"


def beat(redis: Redis, kind: str, name: str) -> None:
    now = time.time()
    with redis.pipeline() as pipe:
        pipe.zadd(_key(kind), {name: now})
        pipe.zremrangebyscore(_key(kind), "-inf", now - 10 * DEAD_AFTER)
        pipe.execute()


def living(redis: Redis, kind: str) -> set[str]:
    """Names of the processes of this kind that beat within DEAD_AFTER."""
    return _names(redis.zrangebyscore(_key(kind), time.time() - DEAD_AFTER, "+inf"))


async def living_async(redis: AsyncRedis, kind: str) -> set[str]:
    """`living` for the API's asyncio client."""
    return _names(await redis.zrangebyscore(_key(kind), time.time() - DEAD_AFTER, "+inf"))


def _names(raw: list) -> set[str]:
    return {n.decode() if isinstance(n, bytes) else n for n in raw}


def stop(redis: Redis, kind: str, name: str) -> None:
    """A clean exit says so at once (a crash is noticed after DEAD_AFTER)."""
    redis.zrem(_key(kind), name)


class Heartbeat(threading.Thread):
    """Beats from a daemon thread, so a worker busy with a long job still counts as alive;
    a Redis outage is ridden out (the next beat after it lands)."""

    def __init__(self, redis: Redis, kind: str, name: str) -> None:
        super().__init__(name=f"heartbeat-{kind}", daemon=True)
        self.redis, self.kind, self.process = redis, kind, name
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            try:
                beat(self.redis, self.kind, self.process)
            except RedisError:
                pass
            self.halt.wait(INTERVAL)

    def close(self) -> None:
        self.halt.set()
        try:
            stop(self.redis, self.kind, self.process)
        except RedisError:
            pass
