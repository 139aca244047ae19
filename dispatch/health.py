"""Liveness and readiness."""

import asyncio
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from workflows.holidays import calendar_warning

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """200 when PostgreSQL and Redis answer within a second; 503 naming what is down.

    What is wrong but does not stop the service (a year of holidays missing) is listed under
    `warnings`, with the status unchanged: a load balancer must not take the API away for it.
    """
    runtime = request.app.state.runtime

    async def db() -> None:
        async with runtime.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def redis() -> None:
        await runtime.redis.ping()

    warnings = [w for w in (calendar_warning(datetime.now(UTC).date()),) if w]
    down = []
    for name, check in (("postgresql", db), ("redis", redis)):
        try:
            await asyncio.wait_for(check(), timeout=1.0)
        except Exception:  # noqa: BLE001 - any failure means "not ready"
            down.append(name)
    if down:
        names = "、".join("PostgreSQL" if d == "postgresql" else "Redis" for d in down)
        body = {
            "error": {"code": "unavailable", "message": f"服务暂不可用：{names} 无法连接"},
            "down": down,
            "warnings": warnings,
        }
        return JSONResponse(body, status_code=503)
    return JSONResponse({"status": "ready", "warnings": warnings})
