"""Password-guessing limits for every sign-in (the API token and the console, which calls it).

Each attempt takes its place in the limits *before* the password is checked (increment, then
check, in one Redis script of the `limits` library), so parallel guesses cannot all slip
under the limit. Two limits, neither of them a lock:

- per account, a ladder of moving windows: a few misses are free, then each further miss
  waits longer (a minute, a quarter hour, an hour). The right password after the wait
  signs in, so a guesser can slow the police liaison down but not shut them out; a
  successful sign-in clears the account's ladder.
- per address (the real client, see `channels.proxies`), a ceiling on misses across all
  accounts, against one machine trying many names. A success gives its place back.

If Redis does not answer, the same limits are kept in this process's memory: a Redis outage
must not open the door to unlimited guessing.
"""

import hashlib
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from limits import RateLimitItem, RateLimitItemPerHour, RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import (
    MovingWindowRateLimiter,
    RateLimiter,
    SlidingWindowCounterRateLimiter,
)
from limits.errors import StorageError
from redis.exceptions import RedisError

from channels.errors import ApiError
from channels.web import client_ip

log = logging.getLogger("hotline.login_limits")

# Misses per account: 5 in any minute, 10 in any quarter hour, 20 in any hour.
ACCOUNT_LADDER: tuple[RateLimitItem, ...] = (
    RateLimitItemPerMinute(5),
    RateLimitItemPerMinute(10, 15),
    RateLimitItemPerHour(20),
)
# Misses per client address, whatever the names tried.
ADDRESS_LIMITS: tuple[RateLimitItem, ...] = (
    RateLimitItemPerMinute(30),
    RateLimitItemPerHour(100),
)


@dataclass
class _Limiters:
    account: RateLimiter
    address: RateLimiter
    account_local: RateLimiter
    address_local: RateLimiter


def _limiters_for(app: Any) -> _Limiters:
    """Built once per app, on the runtime's own Redis connection pool."""
    state = app.state
    found = getattr(state, "login_limiters", None)
    if found is None:
        shared = RedisStorage(
            "async+redis://",
            implementation="redispy",
            wrap_exceptions=True,
            connection_pool=state.runtime.redis.connection_pool,
            key_prefix="hotline:login",
        )
        local = MemoryStorage()
        found = _Limiters(
            MovingWindowRateLimiter(shared),
            SlidingWindowCounterRateLimiter(shared),
            MovingWindowRateLimiter(local),
            SlidingWindowCounterRateLimiter(local),
        )
        state.login_limiters = found
    return found


def _hashed(text: str) -> str:
    """Keys are hashed: no user name or address is stored in Redis (as channels.ratelimit)."""
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _account(username: str) -> str:
    """The key of a user name (known or not: both are limited alike, so 429 tells nothing)."""
    return _hashed(username.strip().lower())


def _address(request: Request) -> tuple[str, str]:
    return ("login-ip", _hashed(client_ip(request) or "-"))


async def _call(
    shared: RateLimiter, local: RateLimiter, method: str, *args: Any, **kwargs: Any
) -> Any:
    try:
        return await getattr(shared, method)(*args, **kwargs)
    except (StorageError, RedisError):
        log.warning("login limits kept in process memory: redis unavailable")
        return await getattr(local, method)(*args, **kwargs)


def wait_text(seconds: int) -> str:
    """How long to wait, as a person reads it."""
    if seconds < 60:
        return f"{seconds} 秒"
    return f"{math.ceil(seconds / 60)} 分钟"


async def _refuse(
    shared: RateLimiter, local: RateLimiter, items: Sequence[RateLimitItem], *ids: str
) -> ApiError:
    """429 naming the wait until every refusing limit has room again."""
    seconds = 1
    for item in items:
        stats = await _call(shared, local, "get_window_stats", item, *ids)
        seconds = max(seconds, math.ceil(stats.reset_time - time.time()))
    return ApiError(
        429,
        "too_many_requests",
        f"登录尝试过于频繁，请 {wait_text(seconds)}后再试",
        headers={"Retry-After": str(seconds)},
    )


async def _take(
    shared: RateLimiter, local: RateLimiter, items: Sequence[RateLimitItem], *ids: str
) -> tuple[list[RateLimitItem], list[RateLimitItem]]:
    """Hit each item (atomic in Redis): the items that refuse, and those already taken.
    A look first (`test`) turns a guesser away from a full limit without taking anything
    and finds every full one (the wait is the longest); the hit is what holds in a race."""
    full = [item for item in items if not await _call(shared, local, "test", item, *ids)]
    if full:
        return full, []
    taken: list[RateLimitItem] = []
    for item in items:
        if not await _call(shared, local, "hit", item, *ids):
            return [item], taken
        taken.append(item)
    return [], taken


async def admit(request: Request, username: str) -> None:
    """Take this attempt's place in the address's and the account's limits, or refuse it
    (429 with Retry-After and the wait in words) before any password is checked."""
    lim = _limiters_for(request.app)
    address = _address(request)
    refused, taken = await _take(lim.address, lim.address_local, ADDRESS_LIMITS, *address)
    if refused:
        await _give_back(lim, address, taken)
        raise await _refuse(lim.address, lim.address_local, refused, *address)
    account = ("login-user", _account(username))
    refused, _ = await _take(lim.account, lim.account_local, ACCOUNT_LADDER, *account)
    if refused:
        await _give_back(lim, address, taken)  # turned away by the account: no address miss
        raise await _refuse(lim.account, lim.account_local, refused, *account)


async def _give_back(
    lim: _Limiters, address: tuple[str, str], items: Sequence[RateLimitItem] | None = None
) -> None:
    """Return places taken in the address's sliding windows (a hit of cost -1)."""
    for item in ADDRESS_LIMITS if items is None else items:
        await _call(lim.address, lim.address_local, "hit", item, *address, cost=-1)


async def succeeded(request: Request, username: str) -> None:
    """The right password: the account starts afresh and the address gets its place back."""
    lim = _limiters_for(request.app)
    await _give_back(lim, _address(request))
    for item in ACCOUNT_LADDER:
        await _call(lim.account, lim.account_local, "clear", item, "login-user", _account(username))
