"""Password guessing, as an attacker tries it: many guesses at once against one account, a
slow guesser, one machine trying many names; and the owner, who must still get in with the
right password once the wait is over."""

import asyncio
import re
import secrets

import httpx
import pytest
from limits import RateLimitItemPerMinute, RateLimitItemPerSecond
from sqlalchemy import func, select

from db.models import AuditLog
from dispatch.staff import login_limits
from tests.fixtures.servers import PASSWORD

TOKEN = "/api/v1/auth/token"


def _address() -> str:
    return f"198.18.{secrets.randbelow(250)}.{secrets.randbelow(250) + 1}"


@pytest.fixture
async def guesser(app):
    """A client from an address of its own (the per-address limit is shared)."""
    ip = _address()
    transport = httpx.ASGITransport(app=app, client=(ip, 1))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        c.ip = ip
        yield c


async def _try(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post(TOKEN, data={"username": username, "password": password})


async def test_forty_guesses_at_once_are_not_all_tried(make_user, guesser, sessions):
    user = await make_user("liaison", department="police")
    answers = await asyncio.gather(*(_try(guesser, user.username, f"g{i}") for i in range(40)))
    codes = [a.status_code for a in answers]
    first_rung = login_limits.ACCOUNT_LADDER[0].amount
    assert codes.count(401) == first_rung, codes
    assert codes.count(429) == 40 - first_rung
    async with sessions() as session:
        tried = await session.scalar(
            select(func.count()).where(
                AuditLog.action == "auth.login_failed", AuditLog.ip == guesser.ip
            )
        )
    assert tried == first_rung  # the password was checked only this many times


async def test_the_wait_is_said_in_chinese_with_retry_after(make_user, guesser):
    user = await make_user("operator")
    for i in range(login_limits.ACCOUNT_LADDER[0].amount):
        assert (await _try(guesser, user.username, f"g{i}")).status_code == 401
    slowed = await _try(guesser, user.username, PASSWORD)
    assert slowed.status_code == 429
    body = slowed.json()["error"]
    assert body["code"] == "too_many_requests"
    assert 0 < int(slowed.headers["Retry-After"]) <= 60
    assert re.fullmatch(r"登录尝试过于频繁，请 \d+ (秒|分钟)后再试", body["message"])


async def test_waits_grow_and_the_right_password_works_after_them(
    make_user, guesser, monkeypatch, limits_clock
):
    # The ladder in seconds rather than minutes: 2 misses in 2 s, 3 in 6 s.
    ladder = (RateLimitItemPerSecond(2, 2), RateLimitItemPerSecond(3, 6))
    monkeypatch.setattr(login_limits, "ACCOUNT_LADDER", ladder)
    user = await make_user("liaison", department="police")
    for guess in ("a", "b"):
        assert (await _try(guesser, user.username, guess)).status_code == 401
    first = await _try(guesser, user.username, PASSWORD)
    assert first.status_code == 429
    first_wait = int(first.headers["Retry-After"])
    limits_clock.advance(first_wait - 0.5)
    assert (await _try(guesser, user.username, PASSWORD)).status_code == 429  # not yet
    limits_clock.advance(0.6)
    assert (await _try(guesser, user.username, "c")).status_code == 401
    second = await _try(guesser, user.username, PASSWORD)
    assert second.status_code == 429
    second_wait = int(second.headers["Retry-After"])
    assert second_wait > first_wait
    limits_clock.advance(second_wait + 0.1)
    signed_in = await _try(guesser, user.username, PASSWORD)
    assert signed_in.status_code == 200, signed_in.text
    # A success starts the account afresh: the next slip is an ordinary miss.
    assert (await _try(guesser, user.username, "d")).status_code == 401


async def test_one_address_trying_many_names_is_stopped(guesser, monkeypatch):
    monkeypatch.setattr(login_limits, "ADDRESS_LIMITS", (RateLimitItemPerMinute(6),))
    names = [f"nobody_{secrets.token_hex(3)}" for _ in range(10)]
    codes = [(await _try(guesser, name, "guess")).status_code for name in names]
    assert codes == [401] * 6 + [429] * 4
    # Another address is not affected.
    transport = httpx.ASGITransport(app=guesser._transport.app, client=(_address(), 1))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as other:
        assert (await _try(other, names[0], "guess")).status_code == 401


async def test_successful_sign_ins_do_not_use_up_the_address(make_user, guesser, monkeypatch):
    """An office behind one address signs in all day: only misses count."""
    monkeypatch.setattr(login_limits, "ADDRESS_LIMITS", (RateLimitItemPerMinute(3),))
    user = await make_user("operator")
    for _ in range(6):
        assert (await _try(guesser, user.username, PASSWORD)).status_code == 200
    assert (await _try(guesser, user.username, "slip")).status_code == 401


async def test_limits_hold_in_memory_while_redis_is_down(app, make_user, guesser, monkeypatch):
    from limits.errors import StorageError

    limiters = login_limits._limiters_for(app)

    async def down(*args, **kwargs):
        raise StorageError(ConnectionError("redis down"))

    for shared in (limiters.account, limiters.address):
        for method in ("hit", "test", "get_window_stats", "clear"):
            monkeypatch.setattr(shared, method, down)
    user = await make_user("operator")
    rung = login_limits.ACCOUNT_LADDER[0].amount
    codes = [(await _try(guesser, user.username, f"g{i}")).status_code for i in range(rung + 2)]
    assert codes == [401] * rung + [429, 429]


def test_wait_texts():
    assert login_limits.wait_text(1) == "1 秒"
    assert login_limits.wait_text(59) == "59 秒"
    assert login_limits.wait_text(60) == "1 分钟"
    assert login_limits.wait_text(61) == "2 分钟"
