"""The form's proof of work in a real browser: Chromium's Web Crypto finds the answer while
the reporter types, and the report it sends carries it."""

import hashlib

import pytest
from playwright.async_api import expect

from channels import proof

pytest_plugins = ("tests.fixtures.console", "tests.fixtures.browser")
pytestmark = pytest.mark.slow  # a real browser


async def test_the_page_script_solves_the_challenge_before_the_reporter_sends(browser):
    page = browser.pages[0]
    await page.goto("/report")
    solution = page.locator('input[name="pow_solution"]')
    await expect(solution).not_to_have_value("", timeout=30_000)
    challenge = await page.locator('input[name="pow_challenge"]').input_value()
    answer = await solution.input_value()
    bits = int(challenge.split(".")[3])
    digest = hashlib.sha256(f"{challenge}:{answer}".encode()).digest()
    assert proof.zero_bits(digest) >= bits

    await page.locator("#description").fill("孩子被锁在家里两天没有吃饭，邻居听见哭声")
    await page.locator('input[name="in_danger_now"][value="yes"]').check()
    await page.get_by_role("button", name="提交报告").click()
    await expect(page.locator("#receipt-code")).to_be_visible()
