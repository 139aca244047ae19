"""Casework pages in a real browser (Debian's Chromium through Playwright): the caseworker
assigns an owner and adopts a plan on the case page, the 儿童主任 finds the case in "my
cases", the liaison sees the task, the operator wraps up a call. A screenshot of each new
page is kept in docs/screenshots/ (casework-*.png)."""

import secrets
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from db.telephony import VoiceCall
from tests.fixtures.browser import sign_in

pytest_plugins = ("tests.fixtures.console", "tests.fixtures.twilio", "tests.fixtures.browser")
pytestmark = pytest.mark.slow

SHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"


async def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"casework-{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000


async def test_casework_pages_in_a_browser(browser, make_user, new_case, client, login,
                                           sessions):
    caseworker = await make_user("caseworker")
    director = await make_user("child_director", jurisdiction="990102001001")
    liaison = await make_user("liaison", "education", "990102")
    operator = await make_user("operator")
    case_id = await new_case(categories=["dropout"], situations=[])
    api = await login(caseworker)
    await client.post(f"/api/v1/cases/{case_id}/events", headers=api, json={"event": "assess"})
    await client.post(f"/api/v1/cases/{case_id}/assessment", headers=api,
                      json={"risk_level": "yellow"})

    page = await sign_in(browser, caseworker.username)
    await page.goto(f"/console/cases/{case_id}")
    await page.locator("#owner_username").select_option(caseworker.username)
    await page.get_by_role("button", name="指派责任社工").click()
    await expect(page.locator("#owner")).to_have_text(caseworker.username)
    await page.locator("#pairing_username").select_option(director.username)
    await page.get_by_role("button", name="指派结对帮扶人").click()
    await expect(page.locator("#pairing")).to_have_text(director.username)
    plan = page.locator("#plan")
    await plan.get_by_label("教育救助（教育）").check()
    await plan.get_by_label("生活救助（民政）").check()
    await plan.get_by_role("button", name="制定帮扶计划").click()
    await expect(page.locator("#plan")).to_contain_text("已实施")
    tasks = page.locator("#tasks")
    await tasks.get_by_label("任务内容").fill("联系学校安排复学")
    await tasks.get_by_label("承办部门").select_option("education")
    await tasks.get_by_role("button", name="添加任务").click()
    await expect(page.locator("#tasks")).to_contain_text("联系学校安排复学")
    await page.locator("#plan").scroll_into_view_if_needed()
    await shot(page, "case-panel")
    await page.goto("/console/casework/mine")
    await expect(page.locator("#my-cases")).to_contain_text(f"#{case_id}")
    await shot(page, "my-cases")

    await browser.clear_cookies()
    page = await sign_in(browser, director.username)
    await expect(page.locator("#my-cases")).to_contain_text(f"#{case_id}")
    await shot(page, "director-home")

    await browser.clear_cookies()
    page = await sign_in(browser, liaison.username)
    await page.goto("/console/tasks")
    await expect(page.locator("#open-tasks")).to_contain_text("联系学校安排复学")
    await shot(page, "tasks")

    sid = "CA" + secrets.token_hex(16)
    now = datetime.now(UTC)
    async with sessions() as session, session.begin():
        session.add(VoiceCall(call_sid=sid, phone="+8613912345678", status="completed",
                              route="open", answered_at=now, created_at=now, updated_at=now))
    await browser.clear_cookies()
    page = await sign_in(browser, operator.username)
    await page.goto("/console/casework/calls")
    row = page.locator("#to-wrap-up tr", has=page.get_by_role("button", name="小结")).first
    await row.get_by_label("来电类型").select_option("consultation")
    await row.get_by_label("备注").fill("咨询监护权变更手续")
    await row.get_by_role("button", name="小结").click()
    await expect(page.locator("#wrapup-stats")).to_contain_text("咨询")
    await shot(page, "call-wrapup")
