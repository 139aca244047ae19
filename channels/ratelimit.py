"""Failure-counting rate limits in Redis, for the doors a guesser leans on (receipt lookups,
logins). Only misses count, so people using the door rightly never meet the limit; once
`limit` misses fall in the current window, even right answers wait (429) until it ends.
If Redis is unreachable the door stays open: a reporter checking a receipt matters more
than the limit, and the outage shows on /readyz."""

import logging
import time

from fastapi import Request
from redis.exceptions import RedisError

from channels.errors import ApiError

log = logging.getLogger("hotline.ratelimit")


def now() -> float:
    """The clock the windows follow (tests hold it still)."""
    return time.time()


def _name(bucket: str, key: str, window: int) -> str:
    return f"hotline:rl:{bucket}:{key}:{int(now()) // window}"


async def refuse_if_over(request: Request, bucket: str, key: str, limit: int, window: int) -> None:
    try:
        count = await request.app.state.runtime.redis.get(_name(bucket, key, window))
    except RedisError:
        log.warning("rate limit %s not enforced: redis unavailable", bucket)
        return
    if count is not None and int(count) >= limit:
        retry = window - int(now()) % window
        raise ApiError(429, headers={"Retry-After": str(retry)})


async def record_miss(request: Request, bucket: str, key: str, window: int) -> None:
    name = _name(bucket, key, window)
    try:
        async with request.app.state.runtime.redis.pipeline(transaction=True) as pipe:
            await pipe.incr(name).expire(name, window).execute()
    except RedisError:
        log.warning("rate limit %s not counted: redis unavailable", bucket)
