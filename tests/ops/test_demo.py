"""`hotline demo`: a demo city on a new database whose accounts sign in and whose cases
stand in the states it says; refused on a database that has cases."""

import os
import subprocess
import sys

import httpx
import pytest
from sqlalchemy import select

from db.engine import make_engine, make_sessionmaker
from db.models import Case, Referral
from dispatch.ops import schema
from dispatch.ops.demo import DemoRefused, load_demo


@pytest.fixture
def new_database(fresh_database) -> str:
    url = fresh_database()
    schema.migrate(url)
    return url


async def test_demo_city_signs_in_and_has_cases_in_each_state(new_database, redis_url, settings):
    database_url = new_database
    demo = await load_demo(settings, database_url, redis_url)

    roles = {a.role for a in demo.accounts}
    assert roles == {"operator", "caseworker", "supervisor", "admin", "liaison"}
    liaisons = {a.department: a for a in demo.accounts if a.role == "liaison"}
    assert {"police", "education", "civil_affairs", "court"} <= set(liaisons)
    # A liaison sits where their department has the office the neighbourhood is routed to.
    assert liaisons["police"].jurisdiction == "990102001"
    assert liaisons["education"].jurisdiction == "990102"

    from dispatch.app import create_app

    app = create_app(settings, database_url=database_url, redis_url=redis_url)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("192.0.2.50", 1))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            for account in demo.accounts:
                signed = await http.post(
                    "/api/v1/auth/token",
                    data={"username": account.username, "password": account.password},
                )
                assert signed.status_code == 200, account.username
            police = liaisons["police"]
            token = (
                await http.post(
                    "/api/v1/auth/token",
                    data={"username": police.username, "password": police.password},
                )
            ).json()
            queue = await http.get(
                "/api/v1/referrals", headers={"Authorization": f"Bearer {token['access_token']}"}
            )
            assert queue.status_code == 200 and queue.json()["items"]  # not an empty desk
            for case in demo.cases:  # each receipt reads on the public page
                page = await http.get("/receipt", params={"code": case.receipt_code})
                assert page.status_code == 200

    engine = make_engine(database_url, pool_size=1)
    try:
        async with make_sessionmaker(engine)() as session:
            states = dict((await session.execute(select(Case.id, Case.state))).all())
            referrals = (await session.execute(select(Referral))).scalars().all()
    finally:
        await engine.dispose()
    assert sorted(states.values()) == ["closed", "discovered", "handling", "reported"]
    statuses = {r.status for r in referrals}
    assert {"queued", "in_progress", "returned", "completed"} <= statuses

    with pytest.raises(DemoRefused):
        await load_demo(settings, database_url, redis_url)
    again = await load_demo(settings, database_url, redis_url, force=True)
    assert len(again.cases) == 4  # forced: new passwords for the same accounts
    assert {a.username for a in again.accounts} == {a.username for a in demo.accounts}


def test_demo_command_refuses_a_database_with_cases(database_url, redis_url, settings):
    import asyncio

    from tests.fixtures.reports import _report

    async def one_case() -> None:
        from dispatch.app import create_app

        app = create_app(settings, database_url=database_url, redis_url=redis_url)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                assert (await http.post("/api/v1/reports", json=_report())).status_code == 201

    asyncio.run(one_case())
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "HOTLINE_SECRET_KEY": settings.hotline_secret_key,
    }
    done = subprocess.run(
        [sys.executable, "-m", "dispatch.ops.cli", "demo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "已有案件" in done.stderr and "--force" in done.stderr
    assert "demo_" not in done.stdout  # no accounts were made or printed
