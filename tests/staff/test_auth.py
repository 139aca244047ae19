"""Tokens, roles and default deny on staff endpoints."""

from tests.fixtures.servers import PASSWORD


async def test_password_flow_gives_a_bearer_token(client, make_user):
    user = await make_user("caseworker")
    response = await client.post(
        "/api/v1/auth/token", data={"username": user.username, "password": PASSWORD}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer" and body["access_token"]
    cases = await client.get(
        "/api/v1/cases", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert cases.status_code == 200
    assert "items" in cases.json()


async def test_wrong_password_and_unknown_user_look_the_same(client, make_user):
    user = await make_user("operator")
    wrong = await client.post(
        "/api/v1/auth/token", data={"username": user.username, "password": "nope"}
    )
    unknown = await client.post(
        "/api/v1/auth/token", data={"username": "nobody-here", "password": "nope"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.json()["error"]["code"] == "invalid_credentials"


async def test_inactive_user_cannot_log_in(client, make_user):
    user = await make_user("operator", active=False)
    response = await client.post(
        "/api/v1/auth/token", data={"username": user.username, "password": PASSWORD}
    )
    assert response.status_code == 401


async def test_staff_endpoint_refuses_no_token_bad_token_and_wrong_role(client, make_user, login):
    response = await client.get("/api/v1/cases")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"

    response = await client.get("/api/v1/cases", headers={"Authorization": "Bearer forged"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_token"

    admin = await make_user("admin")
    response = await client.get("/api/v1/cases", headers=await login(admin))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


async def test_health_and_readiness(client, redis_client):
    from dispatch.worker import heartbeats

    assert (await client.get("/healthz")).status_code == 200
    for kind in heartbeats.KINDS:
        redis_client.delete(f"hotline:alive:{kind}")
    # No worker and no scheduler beat: reports are still taken (durable, routed once a
    # worker returns), so the API stays ready and names what is missing.
    missing = await client.get("/readyz")
    assert missing.status_code == 200
    assert missing.json()["missing"] == ["worker", "scheduler"]
    assert any("worker" in w for w in missing.json()["warnings"])
    heartbeats.beat(redis_client, "worker", "test-worker")
    assert (await client.get("/readyz")).json()["missing"] == ["scheduler"]
    heartbeats.beat(redis_client, "scheduler", "test-scheduler")
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["missing"] == []
    heartbeats.stop(redis_client, "worker", "test-worker")
    heartbeats.stop(redis_client, "scheduler", "test-scheduler")


async def test_a_revoked_token_stops_working_once_the_short_cache_lapses(
    client, make_user, login, app, sessions
):
    from db.models import AppUser

    user = await make_user("caseworker")
    headers = await login(user)
    assert (await client.get("/api/v1/cases", headers=headers)).status_code == 200
    async with sessions() as session, session.begin():
        (await session.get(AppUser, user.id)).token_version += 1  # "log out everywhere"
    app.state.runtime.principal_cache.clear()  # what PRINCIPAL_TTL seconds do
    assert (await client.get("/api/v1/cases", headers=headers)).status_code == 401


async def test_guessing_passwords_is_slowed_down(app, make_user):
    """More in tests/staff/test_login_limits.py: the wait grows, and ends."""
    import httpx

    from dispatch.staff import login_limits

    user = await make_user("operator")
    transport = httpx.ASGITransport(app=app, client=("198.51.100.20", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as guesser:
        for _ in range(login_limits.ACCOUNT_LADDER[0].amount):
            wrong = await guesser.post("/api/v1/auth/token",
                                       data={"username": user.username, "password": "guess"})
            assert wrong.status_code == 401
        blocked = await guesser.post("/api/v1/auth/token",
                                     data={"username": user.username, "password": PASSWORD})
    assert blocked.status_code == 429
    assert blocked.json()["error"]["code"] == "too_many_requests"
    assert int(blocked.headers["retry-after"]) > 0
