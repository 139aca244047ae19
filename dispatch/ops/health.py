"""Liveness and readiness.

`/readyz` is 200 when PostgreSQL and Redis answer, else 503 naming what is down (the
contract). What is wrong but does not stop intake is reported with the 200, not as a 503:
a worker or scheduler kind with no heartbeat (`missing`, see `dispatch.worker.heartbeats`) and a
missing year of holidays (`warnings`). A report accepted while the worker is gone is durable
in PostgreSQL and is routed when a worker returns (the reconciler), so a load balancer must
keep sending reporters to the API; the dispatch status turns red instead.
"""

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from db import clock
from dispatch.worker.heartbeats import KINDS, living_async
from workflows.holidays import calendar_warning

router = APIRouter(tags=["health"])

LABELS = {
    "postgresql": "PostgreSQL 无法连接",
    "redis": "Redis 无法连接",
    "worker": "后台任务进程（worker）未运行：新报告已保存，但暂无人转介",
    "scheduler": "调度进程（scheduler）未运行：新报告已保存，但暂无人转介",
}


@router.get("/healthz")
async def healthz() -> dict:
    return {"status": "ok"}


_LIST = {"type": "array", "items": {"type": "string"}}
_READY = {
    "type": "object",
    "required": ["status", "missing", "warnings"],
    "properties": {"status": {"const": "ready"}, "missing": _LIST, "warnings": _LIST},
}
_DOWN = {
    "type": "object",
    "required": ["error", "down", "missing", "warnings"],
    "properties": {
        "error": {"$ref": "#/components/schemas/Error/properties/error"},
        "down": {"type": "array", "items": {"enum": ["postgresql", "redis"]}, "minItems": 1},
        "missing": _LIST,
        "warnings": _LIST,
    },
}


@router.get(
    "/readyz",
    responses={
        200: {"description": "可以受理", "content": {"application/json": {"schema": _READY}}},
        503: {
            "description": "不可用，指明哪一项",
            "content": {"application/json": {"schema": _DOWN}},
        },
    },
)
async def readyz(request: Request) -> JSONResponse:
    """200 when PostgreSQL and Redis answer within a second, with the process kinds that
    have no heartbeat under `missing` and other warnings; 503 naming what is down."""
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
    missing = []
    if "redis" not in down:
        for kind in KINDS:
            try:
                alive = await asyncio.wait_for(living_async(runtime.redis, kind), timeout=1.0)
            except Exception:  # noqa: BLE001
                alive = set()
            if not alive:
                missing.append(kind)
    warnings = [LABELS[kind] for kind in missing]
    if calendar := calendar_warning(clock.now().date()):
        warnings.append(calendar)
    if down:
        body = {
            "error": {
                "code": "unavailable",
                "message": "服务暂不可用：" + "；".join(LABELS[d] for d in down),
            },
            "down": down,
            "missing": missing,
            "warnings": warnings,
        }
        return JSONResponse(body, status_code=503)
    return JSONResponse({"status": "ready", "missing": missing, "warnings": warnings})
