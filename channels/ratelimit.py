"""Rate limits in Redis, one mechanism for every public door: the `limits` library's moving
windows, whose Lua scripts check and count in one atomic step (no window edge to burst
across, no check-then-count race between processes).

Two ways to use it:
- failure counting, for the doors a guesser leans on (receipt lookups, logins): only misses
  count (`record_miss`), so people using the door rightly never meet the limit; once `limit`
  misses fall in the last `window` seconds, even right answers wait (429, `refuse_if_over`);
- use counting, for public intake (`take`): every report counts, against several windows.

If Redis is unreachable the door stays open and the log says so (the bucket's name only,
never the key): a reporter checking a receipt or a child's report getting through matters
more than the limit, and the outage shows on /readyz. Keys are hashed before they reach
Redis, so addresses and user names are not stored there.
"""

import hashlib
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from fastapi import Request
from limits import RateLimitItem, RateLimitItemPerSecond, parse_many
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.exceptions import RedisError

from channels.errors import ApiError

log = logging.getLogger("hotline.ratelimit")


def now() -> float:
    """The clock Retry-After is counted on (the windows themselves are the library's)."""
    return time.time()


def items(notation: str) -> list[RateLimitItem]:
    """Limits in the `limits` notation ("10/minute;50/hour"); empty: none."""
    return parse_many(notation) if notation.strip() else []


# After Redis fails, this many seconds pass before it is asked again: an unreachable server
# costs each report a connect timeout otherwise, and the log a line per request.
RETRY_REDIS_SECONDS = 5.0


@dataclass
class Limiter:
    """The process's limiter, and until when Redis is taken to be down."""

    strategy: MovingWindowRateLimiter
    down_until: float = 0.0

    def available(self) -> bool:
        return now() >= self.down_until

    def failed(self, bucket: str, what: str) -> None:
        self.down_until = now() + RETRY_REDIS_SECONDS
        log.warning(
            "rate limit %s not %s: redis unavailable (limits open for %.0f s)",
            bucket, what, RETRY_REDIS_SECONDS,
        )


def limiter(request: Request) -> Limiter:
    """Built on first use on the runtime's own Redis connection pool, kept on the runtime."""
    runtime = request.app.state.runtime
    built = getattr(runtime, "rate_limiter", None)
    if built is None:
        storage = RedisStorage(
            "async+redis://",
            implementation="redispy",
            connection_pool=runtime.redis.connection_pool,
            key_prefix="hotline:rl",
        )
        built = Limiter(MovingWindowRateLimiter(storage))
        runtime.rate_limiter = built
    return built


def _key(key: str) -> str:
    return hashlib.blake2b(key.encode(), digest_size=12).hexdigest()


async def _retry_after(
    strategy: MovingWindowRateLimiter, item: RateLimitItem, bucket: str, key: str
) -> int:
    """Whole seconds until the window has room again (at least 1)."""
    try:
        stats = await strategy.get_window_stats(item, bucket, key)
    except (RedisError, OSError):
        return item.get_expiry()
    return max(1, math.ceil(stats.reset_time - now()))


async def take(
    request: Request, bucket: str, key: str, limits: Sequence[RateLimitItem]
) -> int | None:
    """Count one use of `key` against each limit in turn: None while all have room, else
    the seconds to wait (Retry-After). Fails open, logged, when Redis is down."""
    rl = limiter(request)
    if not limits or not rl.available():
        return None
    hashed = _key(key)
    try:
        for item in limits:
            if not await rl.strategy.hit(item, bucket, hashed):
                return await _retry_after(rl.strategy, item, bucket, hashed)
    except (RedisError, OSError):
        rl.failed(bucket, "enforced")
    return None


async def refuse_if_over(request: Request, bucket: str, key: str, limit: int, window: int) -> None:
    """429 once `limit` misses fall in the last `window` seconds."""
    rl = limiter(request)
    if not rl.available():
        return
    item, hashed = RateLimitItemPerSecond(limit, window), _key(key)
    try:
        room = await rl.strategy.test(item, bucket, hashed)
    except (RedisError, OSError):
        rl.failed(bucket, "enforced")
        return
    if not room:
        retry = await _retry_after(rl.strategy, item, bucket, hashed)
        raise ApiError(429, headers={"Retry-After": str(retry)})


async def record_miss(request: Request, bucket: str, key: str, limit: int, window: int) -> None:
    """Count a miss (the same `limit` and `window` as `refuse_if_over`'s: they name the
    window's counter)."""
    rl = limiter(request)
    if not rl.available():
        return
    try:
        await rl.strategy.hit(RateLimitItemPerSecond(limit, window), bucket, _key(key))
    except (RedisError, OSError):
        rl.failed(bucket, "counted")


async def first_use(request: Request, bucket: str, key: str, seconds: int) -> bool:
    """Whether `key` is seen for the first time in `seconds` (single-use tokens such as a
    proof of work's nonce). True when Redis is down: the limits it would relax are open then."""
    rl = limiter(request)
    if not rl.available():
        return True
    try:
        stored = await request.app.state.runtime.redis.set(
            f"hotline:once:{bucket}:{_key(key)}", "1", nx=True, ex=seconds
        )
    except (RedisError, OSError):
        rl.failed(bucket, "checked")
        return True
    return bool(stored)
