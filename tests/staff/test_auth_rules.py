"""The permission rules of dispatch/staff/auth.py one by one: which roles `require` and
`require_center` admit, who counts as the center, and what a bearer token is worth (its
user's current role and scope, expiry, revocation, and the five seconds it is trusted for
before the account is read again). test_auth.py covers the login form and default deny."""

import time
from types import SimpleNamespace
from typing import Annotated

import httpx
import pytest
from fastapi import Depends, FastAPI
from itsdangerous import TimestampSigner

from channels.errors import ApiError, error_response
from db.models import AppUser
from dispatch.staff import auth
from dispatch.staff.auth import (
    Principal,
    hash_password,
    issue_token,
    principal_from_token,
    require,
    require_center,
    verify_password,
)


def staff(role: str, department: str | None = None) -> Principal:
    return Principal(7, "li", role, department, "990100", "990100/")


async def admitted(dependency, principal: Principal) -> bool:
    """Whether a route guarded by `dependency` lets this signed-in principal through (FastAPI
    resolves the whole chain; only the token lookup is replaced by the principal)."""
    app = FastAPI()
    app.add_exception_handler(ApiError, lambda request, exc: error_response(exc))
    app.dependency_overrides[auth.current_principal] = lambda: principal

    @app.get("/guarded")
    async def guarded(who: Annotated[Principal, Depends(dependency)]) -> dict:
        return {"id": who.id, "role": who.role}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/guarded")
    if response.status_code == 403:
        assert response.json()["error"]["code"] == "forbidden"
        return False
    assert response.json() == {"id": principal.id, "role": principal.role}
    return True


@pytest.mark.parametrize("role", auth.ROLES)
async def test_require_admits_exactly_the_named_roles(role):
    dependency = require("caseworker", "supervisor")
    assert await admitted(dependency, staff(role)) is (role in ("caseworker", "supervisor"))
    assert await admitted(require(role), staff(role))


def test_require_refuses_a_role_that_does_not_exist():
    with pytest.raises(ValueError, match="unknown roles"):
        require("caseworker", "superuser")


@pytest.mark.parametrize(
    ("principal", "center"),
    [
        (staff("supervisor"), True),
        (staff("supervisor", "minor_protection_center"), True),
        (staff("caseworker"), True),
        (staff("operator", "minor_protection_center"), True),
        (staff("supervisor", "police"), False),  # a department's supervisor
        (staff("caseworker", "education"), False),
        (staff("liaison"), False),
        (staff("admin"), False),
    ],
    ids=lambda v: f"{v.role}-{v.department}" if isinstance(v, Principal) else str(v),
)
async def test_the_center_s_work_is_for_the_center_s_staff(principal, center):
    assert principal.is_center is center
    dependency = require_center("operator", "caseworker", "supervisor")
    assert await admitted(dependency, principal) is center


async def test_require_center_still_checks_the_role():
    assert not await admitted(require_center("supervisor"), staff("caseworker"))
    assert await admitted(require_center("supervisor"), staff("supervisor"))


def test_timelines_name_staff_by_role_and_user_name():
    assert staff("caseworker").label == "caseworker:li"


def test_passwords_verify_only_with_the_right_password():
    stored = hash_password("correct horse battery")
    assert stored != "correct horse battery"
    assert verify_password(stored, "correct horse battery") is True
    assert verify_password(stored, "correct horse batterY") is False
    assert verify_password("not-a-hash", "anything") is False


async def test_a_token_carries_the_user_s_role_department_and_scope(app, make_user):
    runtime = app.state.runtime
    liaison = await make_user("liaison", department="police", jurisdiction="990102")
    principal = await principal_from_token(runtime, issue_token(runtime, liaison))
    assert principal == Principal(liaison.id, liaison.username, "liaison", "police", "990102",
                                  "990100/990102/")
    nowhere = await make_user("admin", jurisdiction=None)
    principal = await principal_from_token(runtime, issue_token(runtime, nowhere))
    assert principal is not None and principal.scope_path is None
    assert principal.username == nowhere.username


async def test_a_forged_or_expired_token_is_worth_nothing(app, make_user, monkeypatch):
    runtime = app.state.runtime
    user = await make_user("caseworker")
    assert await principal_from_token(runtime, issue_token(runtime, user) + "x") is None
    other = AppUser(id=user.id + 10_000, username="ghost", password_hash="-", role="admin")
    assert await principal_from_token(runtime, issue_token(runtime, other)) is None
    ttl = runtime.settings.hotline_token_ttl
    with monkeypatch.context() as past:
        past.setattr(TimestampSigner, "get_timestamp", lambda self: int(time.time()) - ttl - 5)
        stale = issue_token(runtime, user)
    assert await principal_from_token(runtime, stale) is None


async def test_a_disabled_account_is_trusted_for_five_seconds_at_most(
    app, make_user, sessions, monkeypatch
):
    runtime = app.state.runtime
    user = await make_user("caseworker")
    token = issue_token(runtime, user)
    clock = [1000.0]
    # Only auth's own clock: the event loop keeps the real one.
    monkeypatch.setattr(auth, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    assert (await principal_from_token(runtime, token)).id == user.id
    async with sessions() as session, session.begin():
        (await session.get(AppUser, user.id)).active = False
    clock[0] = 1004.9
    assert (await principal_from_token(runtime, token)).id == user.id  # the short cache
    clock[0] = 1005.0  # five seconds on: read again
    assert await principal_from_token(runtime, token) is None


async def test_no_token_and_a_bad_token_are_told_apart(client):
    missing = await client.get("/api/v1/cases")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert missing.json()["error"] == {"code": "unauthorized",
                                       "message": "请先登录或提供有效的凭证"}
    bad = await client.get("/api/v1/cases", headers={"Authorization": "Bearer forged"})
    assert bad.status_code == 401
    assert bad.headers["www-authenticate"] == "Bearer"
    assert bad.json()["error"] == {"code": "invalid_token", "message": "登录已失效，请重新登录"}
