"""Liveness and readiness.

`/readyz` is 200 when PostgreSQL and Redis answer and at least one worker and one scheduler
beat (see `dispatch.heartbeats`); otherwise 503 naming what is down: `postgresql`, `redis`,
`worker`, `scheduler`. A service whose API answers but whose worker is gone accepts reports
that nobody routes, so it is not ready.
"""

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from dispatch.heartbeats import KINDS, living_async

router = APIRouter(tags=["health"])

LABELS = {
    "postgresql": "PostgreSQL 无法连接",
    "redis": "Redis 无法连接",
    "worker": "后台任务进程（worker）未运行",
    "scheduler": "调度进程（scheduler）未运行",
}


@router.get("/healthz")
async def healthz() -> dict:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """200 when PostgreSQL and Redis answer within a second and a worker and a scheduler
    live; 503 naming what is down."""
    runtime = request.app.state.runtime

    async def db() -> None:
        async with runtime.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def redis() -> None:
        await runtime.redis.ping()

    down = []
    for name, check in (("postgresql", db), ("redis", redis)):
        try:
            await asyncio.wait_for(check(), timeout=1.0)
        except Exception:  # noqa: BLE001 - any failure means "not ready"
            down.append(name)
    if "redis" not in down:
        for kind in KINDS:
            try:
                alive = await asyncio.wait_for(living_async(runtime.redis, kind), timeout=1.0)
            except Exception:  # noqa: BLE001
                alive = set()
            if not alive:
                down.append(kind)
    if down:
        body = {
            "error": {
                "code": "unavailable",
                "message": "服务暂不可用：" + "；".join(LABELS[d] for d in down),
            },
            "down": down,
        }
        return JSONResponse(body, status_code=503)
    return JSONResponse({"status": "ready"})
