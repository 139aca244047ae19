"""In a real browser: the call page judges the operator's notes as they are typed, and the
operator's list shows a non-case's reason and the evidence."""

import pytest
from playwright.async_api import expect

from tests.fixtures.browser import WAIT, screenshot, sign_in
from tests.fixtures.texts import BELT_THREAT

pytest_plugins = ("tests.fixtures.console", "tests.fixtures.twilio", "tests.fixtures.browser")
pytestmark = pytest.mark.slow  # a real browser: tens of seconds


async def test_the_call_page_shows_the_judgement_while_the_operator_types(
    browser, make_user, seed
):
    operator = await make_user("operator")
    call_sid = await seed.waiting_call()
    page = await sign_in(browser, operator.username)
    await page.goto(f"/console/operator/calls/{call_sid}/report")
    panel = page.locator("#triage-live")
    await expect(panel).to_contain_text("输入来电内容后")
    notes = page.get_by_label("来电内容")
    await notes.press_sequentially("来电称", delay=20)
    await notes.fill(BELT_THREAT)
    await notes.press("End")  # an input event after the fill as well
    await expect(panel).to_contain_text("紧急", timeout=WAIT)
    await expect(panel).to_contain_text("依据")
    await expect(panel.locator(".badge.emergency")).to_be_visible()
    await screenshot(page, "operator-live-triage")
    await notes.fill("请问给孩子办理低保需要什么材料")
    await expect(panel).to_contain_text("疑似咨询", timeout=WAIT)
    await expect(panel).not_to_contain_text("请立即联系公安")
