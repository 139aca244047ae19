"""Security headers on every answer (the report form, receipts, the JSON API, errors, the
console, the docs), a policy the pages keep (no inline style or script), and the API docs
for signed-in staff only, served from our own files; /openapi.json stays public."""

import re

import pytest

from tests.fixtures.console import sign_in

pytest_plugins = ("tests.fixtures.console",)

PAGES = [
    ("GET", "/", 200),
    ("GET", "/report", 200),
    ("GET", "/receipt", 200),
    ("GET", "/api/v1/receipts/NOSUCHCODE", 404),
    ("GET", "/api/v1/cases", 401),
    ("GET", "/openapi.json", 200),
    ("GET", "/healthz", 200),
    ("GET", "/console/login", 200),
    ("GET", "/docs", 303),
    ("GET", "/no/such/path", 404),
    ("POST", "/api/v1/reports", 415),
]


@pytest.mark.parametrize(("method", "path", "status"), PAGES)
async def test_every_answer_carries_the_security_headers(client, method, path, status):
    response = await client.request(method, path, content=b"x" if method == "POST" else None)
    assert response.status_code == status, response.text[:300]
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp.split("style-src")[0]  # never for scripts
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"


async def test_a_refused_large_body_carries_them_too(client):
    response = await client.post(
        "/api/v1/reports", content=b"x", headers={"content-length": str(10**9)}
    )
    assert response.status_code == 413
    assert response.headers["x-frame-options"] == "DENY"


async def test_the_public_pages_need_nothing_inline(client):
    """style-src 'self' forbids inline styles: the form's look comes from a file."""
    page = await client.get("/report")
    assert "<style" not in page.text and not re.search(r"<script(?![^>]*\bsrc=)", page.text)
    sheet = re.search(r'<link rel="stylesheet" href="([^"]+)"', page.text).group(1)
    css = await client.get(sheet)
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert "fieldset" in css.text
    assert "no-store" not in css.headers.get("cache-control", "")  # static: may be cached


async def test_https_behind_the_proxy_is_kept(app):
    import httpx

    transport = httpx.ASGITransport(app=app, client=("203.0.113.70", 1))
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as c:
        response = await c.get("/healthz")
    assert response.headers["strict-transport-security"].startswith("max-age=")


# ---------------------------------------------------------------------------------------
# The API docs


async def test_the_schema_is_public_as_the_contract_says(client):
    schema = await client.get("/openapi.json")
    assert schema.status_code == 200 and "/api/v1/cases" in schema.json()["paths"]


async def test_anonymous_visitors_are_sent_to_sign_in(client, console_client):
    docs = await client.get("/docs")
    assert docs.status_code == 303 and docs.headers["location"] == "/console/api-docs"
    browser = await console_client()
    page = await browser.get("/console/api-docs")
    assert page.status_code == 303
    assert page.headers["location"].startswith("/console/login")
    assert "next=%2Fconsole%2Fapi-docs" in page.headers["location"]
    forged = await client.get("/docs", headers={"Authorization": "Bearer forged"})
    assert forged.status_code == 303
    assert (await client.get("/redoc")).status_code == 404  # needs a CDN: not offered


async def _assets_are_ours(client, html: str) -> None:
    refs = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert refs and all(ref.startswith("/") and not ref.startswith("//") for ref in refs), refs
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)  # no inline script: CSP holds
    for ref in refs:
        asset = await client.get(ref)
        assert asset.status_code == 200, ref
    assert "https://" not in html


async def test_signed_in_staff_see_the_docs_from_our_own_files(
    client, console_client, make_user, login
):
    user = await make_user("liaison", department="police")
    browser = await console_client()
    assert (await sign_in(browser, user.username)).status_code == 303
    page = await browser.get("/console/api-docs")
    assert page.status_code == 200 and "swagger-ui" in page.text
    assert "style-src 'self' 'unsafe-inline'" in page.headers["content-security-policy"]
    await _assets_are_ours(browser, page.text)
    # The same page for the holder of a bearer token.
    bearer = await client.get("/docs", headers=await login(user))
    assert bearer.status_code == 200 and bearer.text == page.text
