"""The last line of defence: an unexpected failure answers the contract's 500 and logs
neither the exception's text (it may hold SQL parameters) nor the request's ids."""

import logging

import httpx
from fastapi import FastAPI

from channels import errors


def _app() -> FastAPI:
    app = FastAPI()
    errors.install(app)

    @app.get("/cases/{case_id}")
    async def boom(case_id: int) -> dict:
        raise RuntimeError("INSERT INTO report VALUES ('王小明', '13800138000')")

    return app


async def test_unexpected_errors_are_500_in_the_contract_shape_and_logged_blind(caplog):
    transport = httpx.ASGITransport(app=_app(), raise_app_exceptions=True)
    with caplog.at_level(logging.DEBUG):
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.get("/cases/4711")
    assert response.status_code == 500
    assert response.json() == {
        "error": {"code": "internal_error", "message": "服务器内部错误，请稍后再试"}
    }
    # Everything the server side logged (the test's own HTTP client logs the URL it called).
    logged = "\n".join(
        r.getMessage() + str(r.exc_info or "")
        for r in caplog.records
        if not r.name.startswith(("httpx", "httpcore"))
    )
    assert "RuntimeError" in logged and "/cases/{case_id}" in logged
    for secret in ("王小明", "13800138000", "INSERT", "4711"):
        assert secret not in logged and secret not in response.text
