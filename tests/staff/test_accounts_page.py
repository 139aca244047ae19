"""The center administrator's accounts page (dispatch.console.accounts): the same operations
as `hotline user` (dispatch.staff.accounts), CSRF like every console form, the refusal shown,
and a change that ends access effective on the target's very next request."""

import re

from sqlalchemy import select

from db.models import AppUser, AuditLog
from tests.fixtures.console import form_token

pytest_plugins = ("tests.fixtures.console",)

PAGE = "/console/admin/accounts"
FLASH = re.compile(r'<div class="flash (ok|error)" role="status">([^<]+)</div>')


async def _post(browser, action: str, **data: str):
    """Post a form of the page with its CSRF token; the flash on the page it goes back to."""
    page = await browser.get(PAGE)
    assert page.status_code == 200, page.text
    answer = await browser.post(
        f"{PAGE}/{action}", data={"csrf_token": form_token(page.text), **data}
    )
    assert answer.status_code == 303 and answer.headers["location"] == PAGE, answer.text
    shown = FLASH.findall((await browser.get(PAGE)).text)
    assert shown, "no notice after the form"
    return shown[-1]


async def test_admin_disables_and_changes_roles_from_the_page(
    client, console_client, login, make_user, sessions
):
    admin = await make_user("admin", jurisdiction=None)
    browser = await console_client(admin)
    target = await make_user("liaison", "police", "990102")
    headers = await login(target)
    victim = await console_client(target)
    assert (await client.get("/api/v1/referrals", headers=headers)).status_code == 200
    assert (await victim.get("/console/liaison")).status_code == 200

    page = await browser.get(PAGE)
    assert page.status_code == 200
    assert target.username in page.text and "账号管理" in page.text
    assert "$argon2" not in page.text

    # No CSRF token: refused, nothing changed.
    forged = await browser.post(f"{PAGE}/disable", data={"username": target.username})
    assert forged.status_code == 403 and "页面已过期" in forged.text
    assert (await client.get("/api/v1/referrals", headers=headers)).status_code == 200

    kind, text = await _post(browser, "disable", username=target.username)
    assert kind == "ok" and f"已停用账号 {target.username}" in text
    assert (await client.get("/api/v1/referrals", headers=headers)).status_code == 401
    ended = await victim.get("/console/liaison")
    assert ended.status_code == 303 and "reason=ended" in ended.headers["location"]

    kind, text = await _post(browser, "disable", username=target.username)
    assert kind == "error" and "已是停用状态" in text
    kind, text = await _post(browser, "enable", username=target.username)
    assert kind == "ok" and "已启用" in text

    # The same placement check as the command: police has no office at 和平街道.
    kind, text = await _post(
        browser, "role", username=target.username, role="liaison", department="police",
        jurisdiction="990102002",
    )
    assert kind == "error" and "没有办公室" in text
    kind, text = await _post(
        browser, "role", username=target.username, role="caseworker", department="",
        jurisdiction="990102",
    )
    assert kind == "ok" and "角色 caseworker" in text
    async with sessions() as session:
        row = await session.get(AppUser, target.id)
        assert (row.role, row.department_code, row.jurisdiction_code) == (
            "caseworker", None, "990102"
        )
        actions = {
            a.action: a.actor
            for a in (
                await session.execute(
                    select(AuditLog).where(AuditLog.object_id == str(target.id),
                                           AuditLog.action.like("user.%"))
                )
            ).scalars()
        }
    assert actions == dict.fromkeys(
        ("user.disable", "user.enable", "user.set_role"), f"admin:{admin.username}"
    )

    # Not oneself: the page refuses disabling the admin's own account.
    kind, text = await _post(browser, "disable", username=admin.username)
    assert kind == "error" and "自己" in text


async def test_password_reset_and_revoke_from_the_page(
    client, console_client, login, make_user
):
    admin = await make_user("admin", jurisdiction=None)
    browser = await console_client(admin)
    target = await make_user("operator")
    headers = await login(target)

    kind, text = await _post(
        browser, "password", username=target.username, password="another-secret",
        confirm="another-secret-typo",
    )
    assert kind == "error" and "不一致" in text
    kind, text = await _post(
        browser, "password", username=target.username, password="short", confirm="short"
    )
    assert kind == "error" and "至少 8 位" in text
    assert (await client.get("/api/v1/cases", headers=headers)).status_code == 200

    kind, text = await _post(
        browser, "password", username=target.username, password="another-secret",
        confirm="another-secret",
    )
    assert kind == "ok" and "已重置" in text
    assert (await client.get("/api/v1/cases", headers=headers)).status_code == 401
    signed = await client.post(
        "/api/v1/auth/token", data={"username": target.username, "password": "another-secret"}
    )
    assert signed.status_code == 200
    fresh = {"Authorization": f"Bearer {signed.json()['access_token']}"}
    assert (await client.get("/api/v1/cases", headers=fresh)).status_code == 200

    kind, text = await _post(browser, "revoke", username=target.username)
    assert kind == "ok" and "已吊销" in text
    assert (await client.get("/api/v1/cases", headers=fresh)).status_code == 401


async def test_only_the_centers_admins_see_the_page(console_client, make_user):
    for role, department in (("supervisor", None), ("caseworker", None), ("liaison", "police")):
        browser = await console_client(await make_user(role, department, "990102"))
        assert (await browser.get(PAGE)).status_code == 403
    # An admin placed in a department (possible before the placement check existed).
    department_admin = await console_client(await make_user("admin", "police", None))
    refused = await department_admin.get(PAGE)
    assert refused.status_code == 403 and "中心的系统管理员" in refused.text
    anonymous = await console_client()
    answer = await anonymous.get(PAGE)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/console/login")
    # The admin's top bar leads to it.
    admin = await console_client(await make_user("admin", jurisdiction=None))
    assert f'href="{PAGE}"' in (await admin.get("/console/admin")).text
