"""The API docs in a real browser under the security headers' policy: Swagger UI starts from
our own files and lists the endpoints, with no Content-Security-Policy violation."""

import pytest
from playwright.async_api import expect

from tests.fixtures.browser import WAIT, sign_in

pytest_plugins = ("tests.fixtures.console", "tests.fixtures.browser")

pytestmark = pytest.mark.slow


async def test_swagger_ui_works_under_the_policy(browser, make_user):
    user = await make_user("supervisor", department="minor_protection_center")
    page = await sign_in(browser, user.username)
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("requestfailed", lambda r: problems.append(f"failed: {r.url}"))
    await page.goto("/console/api-docs")
    await expect(page.get_by_text("/api/v1/auth/token").first).to_be_visible(timeout=WAIT)
    await expect(page.get_by_role("button", name="Authorize")).to_be_visible()
    assert not [p for p in problems if "Content Security Policy" in p or "failed" in p], problems
