"""Edges a status code alone does not show: /readyz naming what is down, the guessing limits
with Redis gone, the report form's CSRF check with an expired token or another session's
cookie."""

import time
from collections.abc import AsyncIterator

import httpx
import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import select

from channels.receipts import MISSES_PER_MINUTE
from channels.webform import CSRF_COOKIE, CSRF_MAX_AGE
from db.models import Report
from tests.fixtures.apps import app_client, csrf_token, open_form, webform_data
from tests.fixtures.processes import _free_port
from tests.fixtures.servers import PASSWORD

DEAD_REDIS = "redis://127.0.0.1:{port}/0"


def _dead_database() -> str:
    return f"postgresql://postgres@127.0.0.1:{_free_port()}/nothing"


@pytest.fixture
async def no_redis(settings, database_url) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(settings, database_url, DEAD_REDIS.format(port=_free_port())) as client:
        yield client


async def _down(client: httpx.AsyncClient) -> dict:
    answer = await client.get("/readyz")
    assert answer.status_code == 503
    body = answer.json()
    assert body["error"]["code"] == "unavailable"
    return body


async def test_readyz_names_postgresql_when_only_the_database_is_down(settings, redis_url):
    async with app_client(settings, _dead_database(), redis_url) as client:
        body = await _down(client)
    assert body["down"] == ["postgresql"]
    assert "PostgreSQL 无法连接" in body["error"]["message"]
    assert "Redis" not in body["error"]["message"]


async def test_readyz_names_redis_when_only_redis_is_down(no_redis):
    body = await _down(no_redis)
    assert body["down"] == ["redis"]
    assert "Redis 无法连接" in body["error"]["message"]
    assert "PostgreSQL" not in body["error"]["message"]


async def test_readyz_names_both_when_both_are_down(settings):
    dead_redis = DEAD_REDIS.format(port=_free_port())
    async with app_client(settings, _dead_database(), dead_redis) as client:
        body = await _down(client)
    assert body["down"] == ["postgresql", "redis"]
    assert "127.0.0.1" not in str(body)


async def test_with_redis_down_receipt_lookups_are_never_limited(no_redis):
    """The door stays open: a reporter checking a receipt matters more than the limit."""
    for _ in range(MISSES_PER_MINUTE + 5):
        answer = await no_redis.get("/api/v1/receipts/AAAAA-AAAAA")
        assert answer.status_code == 404, answer.text


async def test_with_redis_down_a_right_password_still_signs_in(no_redis, make_user):
    user = await make_user("caseworker")
    for _ in range(3):
        wrong = await no_redis.post("/api/v1/auth/token",
                                    data={"username": user.username, "password": "wrong-guess"})
        assert wrong.status_code == 401
    right = await no_redis.post("/api/v1/auth/token",
                                data={"username": user.username, "password": PASSWORD})
    assert right.status_code == 200 and right.json()["access_token"]


class _Yesterday(TimestampSigner):
    """Signs as if the page had been opened longer ago than the token lives."""

    def get_timestamp(self) -> int:
        return int(time.time()) - CSRF_MAX_AGE - 60


async def _not_stored(sessions, description: str) -> bool:
    async with sessions() as session:
        found = await session.scalar(select(Report.id).where(Report.description == description))
    return found is None


async def test_an_expired_form_token_is_refused_with_the_input_kept(client, settings, sessions):
    await open_form(client)
    nonce = client.cookies[CSRF_COOKIE]
    expired = URLSafeTimedSerializer(settings.hotline_secret_key, salt="report-form",
                                     signer=_Yesterday).dumps(nonce)
    data = webform_data()
    answer = await client.post("/report", data={**data, "csrf_token": expired})
    assert answer.status_code == 400
    assert "页面已过期" in answer.text
    assert data["child_name"] in answer.text
    assert await _not_stored(sessions, data["description"])
    # The page it answers with carries a fresh token that works.
    again = await client.post("/report", data={**data, "csrf_token": csrf_token(answer.text)})
    assert again.status_code == 201


async def test_a_token_with_another_sessions_cookie_is_refused(app, sessions):
    def browser() -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=("198.51.100.4", 50000))
        return httpx.AsyncClient(transport=transport, base_url="http://testserver")

    async with browser() as mine, browser() as theirs:
        my_token = csrf_token(await open_form(mine))
        await open_form(theirs)
        assert mine.cookies[CSRF_COOKIE] != theirs.cookies[CSRF_COOKIE]
        data = webform_data()
        answer = await theirs.post("/report", data={**data, "csrf_token": my_token})
        assert answer.status_code == 400
        assert "页面已过期" in answer.text
        assert await _not_stored(sessions, data["description"])
