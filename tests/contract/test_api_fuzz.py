"""Schemathesis against our own OpenAPI schema, on a real server: whatever it sends, the
answer is never a 5xx, and every error has the contract's shape with a Chinese message."""

import threading

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings

from tests.fixtures.processes import _free_port

# Read-only probing is enough for most operations; a few examples each keep this quick.
EXAMPLES = 25


@pytest.fixture(scope="module")
def live_url(settings_for_live):
    from dispatch.app import create_app

    settings_obj, database_url, redis_url = settings_for_live
    app = create_app(settings_obj, database_url=database_url, redis_url=redis_url)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("test server did not start")
        threading.Event().wait(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def settings_for_live(settings, database_url, redis_url):
    return settings, database_url, redis_url


def _operations(url: str):
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    return [result.ok() for result in schema.get_all_operations()]


def _check(response, path: str = "") -> None:
    assert response.status_code < 500, f"{response.status_code}: {response.text[:300]}"
    if response.status_code >= 400:
        error = response.json()["error"]
        assert error["code"] and any("\u4e00" <= ch <= "\u9fff" for ch in error["message"])
        assert "Traceback" not in response.text and "SELECT" not in response.text


def test_every_operation_survives_generated_input(live_url, staff_token):
    operations = _operations(live_url)
    assert len(operations) >= 15
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None,
                  suppress_health_check=list(HealthCheck))
        def probe(case) -> None:
            _check(case.call(), case.path)
            _check(case.call(headers={"Authorization": f"Bearer {staff_token}"}), case.path)

        probe()


@pytest.fixture(scope="module")
def staff_token(live_url, database_url):
    import asyncio

    import httpx

    from db.engine import make_engine, make_sessionmaker, transaction
    from db.models import AppUser
    from dispatch.staff.auth import hash_password

    async def add() -> None:
        engine = make_engine(database_url, pool_size=1)
        async with transaction(make_sessionmaker(engine)) as session:
            session.add(AppUser(username="fuzz_supervisor", role="supervisor",
                                jurisdiction_code="990100",
                                password_hash=hash_password("fuzz-password")))
        await engine.dispose()

    asyncio.run(add())
    response = httpx.post(f"{live_url}/api/v1/auth/token",
                          data={"username": "fuzz_supervisor", "password": "fuzz-password"})
    return response.json()["access_token"]
