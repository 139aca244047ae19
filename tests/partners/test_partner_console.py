"""The supervisor's view of the partner loop, in a real browser: a partner refused our
feedback, the supervisor sees why, retries once the partner is back, and sees it delivered."""

import pytest
from playwright.async_api import expect

from tests.fixtures.browser import screenshot, sign_in
from tests.fixtures.partners import order

pytest_plugins = ("tests.fixtures.partners", "tests.fixtures.console", "tests.fixtures.browser")
pytestmark = pytest.mark.slow  # a real browser: tens of seconds


async def test_supervisor_sees_a_refused_feedback_retries_it_and_sees_it_delivered(
    browser, make_user, post_forward, partner_server, pump, console_client
):
    fake = await partner_server("110", script=[503])
    ack = (await post_forward("110", order(in_progress=True))).json()
    await pump()
    assert [r.message["status"] for r in fake.received] == ["accepted"] and fake.taken == []

    supervisor = await make_user("supervisor")
    page = await sign_in(browser, supervisor.username)
    await page.get_by_role("link", name="对接平台").click()
    line = page.locator("#lines tr", has_text="110报警服务台")
    await expect(line).to_contain_text("http_503")
    messages = page.locator("#messages")
    await expect(messages).to_contain_text(f"#{ack['case_id']}")
    await expect(messages).to_contain_text("已受理")
    await screenshot(page, "partners")

    await messages.get_by_role("link", name="#", exact=False).first.click()
    await expect(page.locator("#attempts")).to_contain_text("http_503")
    await expect(page.locator("#message-text")).to_contain_text(ack["receipt_code"])
    await page.get_by_role("button", name="立即重试").click()
    await expect(page.get_by_role("status")).to_contain_text("已安排立即重新发送")
    await pump()
    assert [m["status"] for m in fake.taken] == ["accepted"]
    await page.reload()
    await expect(page.locator("#attempts")).to_contain_text("成功")

    # The center's oversight only: a caseworker and a department's supervisor are refused.
    for user in (await make_user("caseworker"), await make_user("supervisor", "police")):
        signed_in = await console_client(user)
        refused = await signed_in.get("/console/partners")
        assert refused.status_code == 403 and "没有权限" in refused.text
        assert (await signed_in.get("/console/partners/messages/1")).status_code == 403
