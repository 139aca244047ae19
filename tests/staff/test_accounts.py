"""Account lifecycle through `hotline user …` (dispatch.staff.accounts): each change audited,
refused when it would do nothing or leave a broken account, and the ones that end access
take effect on the very next request, for a bearer token and a console session alike."""

import asyncio
import secrets
import time

import asyncpg
import pyotp
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from db.models import AppUser, AuditLog
from dispatch.ops.cli import app as cli
from tests.fixtures.console import form_token, sign_in
from tests.fixtures.servers import PASSWORD

pytest_plugins = ("tests.fixtures.console",)


@pytest.fixture
def hotline(monkeypatch, database_url, redis_url):
    """`hotline …` in this process (CliRunner), on the tests' database and Redis, off the
    test's event loop (the command runs its own)."""
    monkeypatch.setattr("dispatch.ops.cli._database_url", lambda: database_url)
    monkeypatch.setattr("dispatch.ops.cli._running_redis_url", lambda settings: redis_url)

    async def run(*args: str, stdin: str | None = None, ok: bool = False):
        """`ok`: the command must succeed (exit code 0; its output shown if not)."""
        result = await asyncio.to_thread(CliRunner().invoke, cli, list(args), input=stdin)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    return run


async def _signed_in(client, console_client, login, user):
    """A bearer token and a console session issued now, both used once (so the principal
    cache holds them: what follows must get past it)."""
    headers = await login(user)
    assert (await client.get("/api/v1/cases", headers=headers)).status_code in (200, 403)
    browser = await console_client(user)
    assert (await browser.get("/console")).status_code == 303
    return headers, browser


async def _ended(client, headers, browser) -> None:
    api = await client.get("/api/v1/cases", headers=headers)
    assert api.status_code == 401, api.text
    assert api.json()["error"]["code"] == "invalid_token"
    page = await browser.get("/console/tasks")
    assert page.status_code == 303
    assert page.headers["location"].startswith("/console/login?reason=ended")


async def _audit(sessions, user_id: int, action: str) -> list[AuditLog]:
    async with sessions() as session:
        rows = await session.execute(
            select(AuditLog).where(AuditLog.object_id == str(user_id), AuditLog.action == action)
        )
        return list(rows.scalars())


async def _token(client, username: str, password: str = PASSWORD, code: str | None = None):
    data = {"username": username, "password": password}
    if code is not None:
        data["totp_code"] = code
    return await client.post("/api/v1/auth/token", data=data)


async def test_disable_ends_the_token_and_the_console_session_at_once_and_enable_restores(
    client, console_client, login, make_user, hotline, sessions
):
    user = await make_user("caseworker")
    headers, browser = await _signed_in(client, console_client, login, user)

    done = await hotline("user", "disable", user.username, ok=True)
    assert f"已停用账号 {user.username}" in done.output and "立即失效" in done.output
    await _ended(client, headers, browser)
    assert (await _token(client, user.username)).status_code == 401
    (row,) = await _audit(sessions, user.id, "user.disable")
    assert row.actor.startswith("cli:") and row.detail["username"] == user.username

    again = await hotline("user", "disable", user.username)
    assert again.exit_code == 1
    assert "已是停用状态" in again.output and "未做任何更改" in again.output

    enabled = await hotline("user", "enable", user.username, ok=True)
    assert "已启用账号" in enabled.output
    assert (await client.get("/api/v1/cases", headers=headers)).status_code == 401  # stays void
    assert (await _token(client, user.username)).status_code == 200
    assert (await hotline("user", "enable", user.username)).exit_code == 1
    assert len(await _audit(sessions, user.id, "user.enable")) == 1

    unknown = await hotline("user", "disable", "nobody-" + secrets.token_hex(3))
    assert unknown.exit_code == 1 and "没有登录名为" in unknown.output


async def test_set_role_checks_the_placement_like_add_and_ends_access(
    client, console_client, login, make_user, hotline, sessions
):
    user = await make_user("caseworker", jurisdiction="990102")
    headers, browser = await _signed_in(client, console_client, login, user)

    refusals = {
        ("--role", "liaison"): "部门联络员需要所属部门",
        ("--role", "liaison", "--department", "police"): "需要辖区代码",
        # Police has no office (no referral queue) at 和平街道: the liaison would get nothing.
        ("--role", "liaison", "--department", "police", "--jurisdiction", "990102002"): (
            "没有办公室"
        ),
        ("--role", "child_director"): "儿童主任与未保站工作人员需要",
        ("--role", "operator", "--department", "police", "--jurisdiction", "990102"): "中心的岗位",
        ("--role", "boss", "--jurisdiction", "990102"): "角色应为",
        ("--role", "caseworker", "--jurisdiction", "990199"): "未知的辖区代码",
        ("--role", "caseworker", "--jurisdiction", "990102"): "未做任何更改",
    }
    for args, reason in refusals.items():
        refused = await hotline("user", "set-role", user.username, *args)
        assert refused.exit_code == 1, (args, refused.output)
        assert reason in refused.output, (args, refused.output)
    # Nothing changed, nobody signed out.
    assert (await client.get("/api/v1/cases", headers=headers)).status_code == 200

    # `user add` refuses the same way (one check for both).
    added = await hotline(
        "user", "add", "--username", "l_" + secrets.token_hex(3), "--role", "liaison",
        "--department", "police", "--jurisdiction", "990102002", stdin="a-long-password\n",
    )
    assert added.exit_code == 1 and "没有办公室" in added.output

    changed = await hotline(
        "user", "set-role", user.username, "--role", "liaison", "--department", "police",
        "--jurisdiction", "990102001",
    )
    assert changed.exit_code == 0, changed.output
    assert "角色 liaison，部门 police，辖区 990102001" in changed.output
    await _ended(client, headers, browser)
    fresh = await _token(client, user.username)
    assert fresh.status_code == 200
    queue = await client.get(
        "/api/v1/referrals", headers={"Authorization": f"Bearer {fresh.json()['access_token']}"}
    )
    assert queue.status_code == 200  # a liaison now
    (row,) = await _audit(sessions, user.id, "user.set_role")
    assert row.detail["before"]["role"] == "caseworker"
    assert row.detail["after"] == {
        "role": "liaison", "department": "police", "jurisdiction": "990102001"
    }


async def test_reset_password_reads_stdin_and_ends_every_sign_in(
    client, console_client, login, make_user, hotline, sessions
):
    user = await make_user("operator")
    headers, browser = await _signed_in(client, console_client, login, user)

    short = await hotline("user", "reset-password", user.username, stdin="short\n")
    assert short.exit_code == 2 and "至少 8 位" in short.output
    assert (await client.get("/api/v1/cases", headers=headers)).status_code == 200

    done = await hotline(
        "user", "reset-password", user.username, stdin="brand-new-secret\n", ok=True)
    assert "brand-new-secret" not in done.output
    assert "已重置账号" in done.output
    await _ended(client, headers, browser)
    assert (await _token(client, user.username)).status_code == 401
    assert (await _token(client, user.username, "brand-new-secret")).status_code == 200
    assert len(await _audit(sessions, user.id, "user.reset_password")) == 1


async def test_revoke_ends_sign_ins_but_not_the_account(
    client, console_client, login, make_user, hotline, sessions
):
    user = await make_user("supervisor")
    headers, browser = await _signed_in(client, console_client, login, user)
    done = await hotline("user", "revoke", user.username, ok=True)
    assert "已吊销账号" in done.output
    await _ended(client, headers, browser)
    assert (await _token(client, user.username)).status_code == 200
    assert len(await _audit(sessions, user.id, "user.revoke")) == 1


async def test_list_shows_the_accounts_and_nothing_secret(client, make_user, hotline, sessions):
    liaison = await make_user("liaison", "police", "990102")
    gone = await make_user("operator", active=False)
    assert (await _token(client, liaison.username)).status_code == 200
    listed = await hotline("user", "list", ok=True)
    line = next(x for x in listed.output.splitlines() if x.startswith(liaison.username))
    assert "liaison" in line and "police" in line and "990102" in line and "启用" in line
    assert "从未" not in line  # signed in just now
    off = next(x for x in listed.output.splitlines() if x.startswith(gone.username))
    assert "停用" in off and "从未" in off
    assert "$argon2" not in listed.output
    async with sessions() as session:
        signed = (await session.get(AppUser, liaison.id)).last_login_at
    assert signed is not None


async def _until_a_lock_waits(database_url: str) -> None:
    """Polls PostgreSQL until a session of this database waits for a lock (the second
    disable behind the first's), so the race is set up by what happened, not by a pause."""
    conn = await asyncpg.connect(database_url)
    try:
        for _ in range(1200):
            if await conn.fetchval(
                "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
                " WHERE NOT l.granted AND d.datname = current_database()"
            ):
                return
            await asyncio.sleep(0.05)  # polling, not timing
        raise AssertionError("the second disable never waited for the first")
    finally:
        await conn.close()


async def _disable_each_other(database_url: str, first: str, second: str) -> None:
    """Two administrators disabling each other at the same moment: the second waits for the
    first to commit, then sees it was the last one and is refused."""
    from db.engine import make_engine, make_sessionmaker
    from dispatch.staff import accounts
    from workflows.errors import Conflict

    engine = make_engine(database_url, pool_size=2)
    sm = make_sessionmaker(engine)
    actor = accounts.Actor("test:race")

    async def disable_second() -> None:
        async with sm() as session, session.begin():
            await accounts.disable(session=session, actor=actor, username=second)

    try:
        async with sm() as session, session.begin():
            await accounts.disable(session=session, actor=actor, username=first)
            racing = asyncio.create_task(disable_second())
            await _until_a_lock_waits(database_url)
            assert not racing.done()  # waiting for the first to commit
        with pytest.raises(Conflict, match="唯一在用的系统管理员"):
            await racing
    finally:
        await engine.dispose()


async def test_the_last_active_admin_cannot_be_disabled_or_demoted(
    make_user, hotline, database_url
):
    admin = await make_user("admin", jurisdiction=None)
    conn = await asyncpg.connect(database_url)
    try:
        others = [
            r["id"]
            for r in await conn.fetch(
                "UPDATE app_user SET active = false WHERE role = 'admin' AND active"
                " AND id <> $1 RETURNING id",
                admin.id,
            )
        ]
        try:
            disabled = await hotline("user", "disable", admin.username)
            assert disabled.exit_code == 1
            assert "唯一在用的系统管理员" in disabled.output
            demoted = await hotline(
                "user", "set-role", admin.username, "--role", "caseworker",
                "--jurisdiction", "990100",
            )
            assert demoted.exit_code == 1 and "唯一在用的系统管理员" in demoted.output
            second = await make_user("admin", jurisdiction=None)
            await _disable_each_other(database_url, admin.username, second.username)
        finally:
            await conn.execute("UPDATE app_user SET active = true WHERE id = ANY($1)", others)
    finally:
        await conn.close()


async def test_totp_second_factor_for_the_token_and_the_console(
    client, console_client, login, make_user, hotline, database_url, sessions
):
    user = await make_user("caseworker")
    headers, browser = await _signed_in(client, console_client, login, user)
    enabled = await hotline("user", "totp-enable", user.username, ok=True)
    uri = next(x for x in enabled.output.split() if x.startswith("otpauth://"))
    secret = pyotp.parse_uri(uri).secret
    assert f"    {secret}\n" in enabled.output
    await _ended(client, headers, browser)  # sign-ins without the second factor end

    # Stored as ciphertext, never the seed itself.
    conn = await asyncpg.connect(database_url)
    try:
        stored = await conn.fetchval("SELECT totp_secret FROM app_user WHERE id = $1", user.id)
    finally:
        await conn.close()
    assert stored and secret not in stored

    missing = await _token(client, user.username)
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "totp_required"
    assert "动态码" in missing.json()["error"]["message"]
    now = pyotp.TOTP(secret).now()
    wrong = await _token(client, user.username, code=f"{(int(now) + 1) % 1_000_000:06d}")
    assert wrong.json()["error"]["code"] == "totp_invalid"
    assert (await _token(client, user.username, "wrong-password", pyotp.TOTP(secret).now())
            ).json()["error"]["code"] == "invalid_credentials"
    code = pyotp.TOTP(secret).now()
    assert (await _token(client, user.username, code=code)).status_code == 200
    replay = await _token(client, user.username, code=code)
    assert replay.json()["error"]["code"] == "totp_invalid"  # a code works once

    # The console asks for it too.
    fresh = await console_client()
    page = await sign_in(fresh, user.username)
    assert page.status_code == 401 and "动态码" in page.text
    login_page = await fresh.get("/console/login")
    next_code = pyotp.TOTP(secret).at(time.time() + 30)  # the next step: drift is allowed
    signed = await fresh.post(
        "/console/login",
        data={"username": user.username, "password": PASSWORD, "totp_code": next_code,
              "login_token": form_token(login_page.text)},
    )
    assert signed.status_code == 303, signed.text

    again = await hotline("user", "totp-enable", user.username)
    assert again.exit_code == 1 and "--replace" in again.output
    off = await hotline("user", "totp-disable", user.username)
    assert off.exit_code == 0 and "已关闭" in off.output
    assert (await _token(client, user.username)).status_code == 200
    assert len(await _audit(sessions, user.id, "user.totp_enable")) == 1
    failed = await _audit(sessions, user.id, "auth.login_failed")
    assert {r.detail["refused"] for r in failed} >= {"totp_required", "totp_invalid"}


async def test_roles_that_require_totp_cannot_sign_in_without_it(
    app, client, make_user, hotline, monkeypatch
):
    from dispatch.staff import totp

    runtime = app.state.runtime
    monkeypatch.setattr(
        runtime,
        "settings",
        runtime.settings.model_copy(update={"hotline_totp_required_roles": ("supervisor",)}),
    )
    supervisor = await make_user("supervisor")
    refused = await _token(client, supervisor.username)
    assert refused.status_code == 403
    body = refused.json()["error"]
    assert body["code"] == "totp_setup_required" and "两步验证" in body["message"]
    assert (await _token(client, (await make_user("operator")).username)).status_code == 200

    enabled = await hotline("user", "totp-enable", supervisor.username)
    secret = pyotp.parse_uri(
        next(x for x in enabled.output.split() if x.startswith("otpauth://"))
    ).secret
    ok = await _token(client, supervisor.username, code=pyotp.TOTP(secret).now())
    assert ok.status_code == 200

    with pytest.raises(ValueError, match="未知角色"):
        totp.required_roles(runtime.settings.model_copy(
            update={"hotline_totp_required_roles": ("supervsor",)}
        ))


async def test_without_redis_a_cached_token_is_not_trusted(
    app, client, login, make_user, sessions, monkeypatch
):
    """No accounts counter to check against: every request reads the user row (a change
    by raw SQL, which tells nobody, still takes effect at once), and Redis is not asked
    again on every request while it is away."""
    from redis.asyncio import Redis

    runtime = app.state.runtime
    user = await make_user("caseworker")
    headers = await login(user)
    assert (await client.get("/api/v1/cases", headers=headers)).status_code == 200
    gone = Redis.from_url("redis://127.0.0.1:1", socket_connect_timeout=1)
    monkeypatch.setattr(runtime, "redis", gone)
    monkeypatch.setattr(runtime, "redis_retry_at", 0.0)
    try:
        assert (await client.get("/api/v1/cases", headers=headers)).status_code == 200
        assert runtime.redis_retry_at > time.monotonic()  # not asked again for a while
        async with sessions() as session, session.begin():
            (await session.get(AppUser, user.id)).token_version += 1
        started = time.monotonic()
        assert (await client.get("/api/v1/cases", headers=headers)).status_code == 401
        assert time.monotonic() - started < 1
    finally:
        await gone.aclose()
