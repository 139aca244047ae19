"""The front door: `/` links to every way in, and the receipt page answers like the API
(status and time only, the same limit on guessing)."""

import re

import httpx

from tests.fixtures.reports import _report
from workflows.cases import receipts


async def test_landing_page_links_to_form_receipt_console_and_docs(client):
    page = await client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "未成年人救助保护热线" in page.text
    links = set(re.findall(r'href="([^"]+)"', page.text))
    assert {"/report", "/receipt", "/console", "/console/api-docs", "/openapi.json"} <= links
    for link in ("/report", "/receipt", "/openapi.json"):  # every link leads somewhere real
        assert (await client.get(link)).status_code == 200, link
    docs = await client.get("/console/api-docs", follow_redirects=True)  # for staff only
    assert docs.status_code == 200 and "登录" in docs.text
    console = await client.get("/console", follow_redirects=True)
    assert console.status_code == 200 and "登录" in console.text


async def test_receipt_page_shows_status_and_time_only(client):
    created = (await client.post("/api/v1/reports", json=_report())).json()
    code = created["receipt_code"]
    typed = code.lower()  # people type it however they like
    page = await client.get("/receipt", params={"code": typed})
    assert page.status_code == 200
    assert 'id="receipt-status">已受理<' in page.text
    assert re.search(r'id="receipt-updated">\d{4}-\d\d-\d\d \d\d:\d\d<', page.text)
    for secret in ("赵小红", "周老师", "13800138011", "无人照料"):
        assert secret not in page.text

    empty = await client.get("/receipt")
    assert empty.status_code == 200 and 'name="code"' in empty.text
    assert "receipt-result" not in empty.text


async def test_receipt_page_refuses_unknown_and_mistyped_codes(client):
    unknown = await client.get("/receipt", params={"code": receipts.display(receipts.new_code())})
    assert unknown.status_code == 404
    assert "未找到该回执编号" in unknown.text and "receipt-result" not in unknown.text
    mistyped = await client.get("/receipt", params={"code": "not a code <script>"})
    assert mistyped.status_code == 404 and "回执编号有误" in mistyped.text
    assert "<script>" not in mistyped.text  # what was typed is shown escaped


async def test_receipt_page_shares_the_apis_limit_on_guessing(app, client, monkeypatch):
    from channels import ratelimit

    code = (await client.post("/api/v1/reports", json=_report())).json()["receipt_code"]
    monkeypatch.setattr(ratelimit, "now", lambda: 1_800_000_030.0)
    transport = httpx.ASGITransport(app=app, client=("198.51.100.31", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as guesser:
        for _ in range(10):  # misses on the page and on the API count together
            await guesser.get("/receipt", params={"code": receipts.new_code()})
            await guesser.get(f"/api/v1/receipts/{receipts.new_code()}")
        blocked = await guesser.get("/receipt", params={"code": code})
    assert blocked.status_code == 429
    assert blocked.headers["retry-after"] and "请求过于频繁" in blocked.text
    assert "receipt-result" not in blocked.text
    assert (await client.get("/receipt", params={"code": code})).status_code == 200
