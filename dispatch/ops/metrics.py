"""`GET /metrics`: the processes' counters, and the state of the pipeline read at scrape time.

Counters (intake, triage, jobs, SMS, request latency; `db.metrics`) are added up over every
process that shares the folder in PROMETHEUS_MULTIPROC_DIR. States (outbox backlog and its
oldest row, RQ queues, referrals by state and deadline, partner lines, living processes)
are read from PostgreSQL and Redis on each scrape, so every API process answers the same
figures and nothing has to be kept in step.

Not public: the reader sends `Authorization: Bearer $HOTLINE_METRICS_TOKEN` (Prometheus:
`authorization: {credentials_file: ...}`). With no token set nobody may read it (401 naming
the setting) and requests are not timed: a deployment turns metrics on by giving the token.
"""

import hmac
import re
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from channels.asgi import HttpMiddleware
from channels.errors import ApiError
from db.metrics import INTAKE, REQUEST_SECONDS, multiprocess_folder
from dispatch.console.board import deadline_counts
from dispatch.partners.service import line_rows
from dispatch.worker.heartbeats import KINDS, living_async
from workflows.partners.forwards import sources

router = APIRouter(tags=["health"])

# Intake routes whose refusals (a 4xx) count as intake refused, by channel.
_INTAKE_ROUTES = {
    "/api/v1/reports": "webform",
    "/report": "webform",
    "/channels/twilio/sms": "sms",
    "/channels/twilio/voice": "voice",
}
_FORWARD_ROUTE = "/api/v1/forwards/{source}"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {}}, "description": "Prometheus 文本格式"},
        401: {"description": "缺少或错误的指标令牌，或本部署未设置 HOTLINE_METRICS_TOKEN"},
    },
)
async def metrics(request: Request) -> Response:
    """The counters of every process of this deployment and the pipeline's state now."""
    runtime = request.app.state.runtime
    _check_token(request, runtime.settings.hotline_metrics_token)
    async with runtime.sessions() as session:
        families = await _state(session)
    families += await _queues(runtime.redis)
    families.append(await _processes(runtime.redis))
    state = CollectorRegistry()
    state.register(_Fixed(families))
    body = generate_latest(_counters()) + generate_latest(state)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def _check_token(request: Request, token: str | None) -> None:
    """Default deny: 401 unless the deployment's token is sent, and always without one."""
    given = request.headers.get("authorization", "")
    scheme, _, value = given.partition(" ")
    if not token:
        message = "本部署未启用指标：请在部署配置中设置 HOTLINE_METRICS_TOKEN"
    elif scheme.lower() != "bearer" or not hmac.compare_digest(value.encode(), token.encode()):
        message = "请以 Authorization: Bearer <HOTLINE_METRICS_TOKEN> 读取指标"
    else:
        return
    raise ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


def _counters() -> CollectorRegistry:
    folder = multiprocess_folder()
    if folder is None:
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(folder))
    return registry


class _Fixed(Collector):
    """Families computed before the registry asks (the reads are async, collect() is not)."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families


async def _state(session: AsyncSession) -> list[Metric]:
    now = datetime.now(UTC)
    backlog = GaugeMetricFamily(
        "hotline_outbox_backlog", "Outbox rows not done yet, by topic", labels=["topic"]
    )
    oldest = GaugeMetricFamily(
        "hotline_outbox_oldest_age_seconds",
        "Age of the oldest outbox row not done (0 when none waits)",
    )
    rows = (await session.execute(_OUTBOX)).all()
    for topic, count, _ in rows:
        backlog.add_metric([topic], count)
    created = [first for *_, first in rows]
    oldest.add_metric([], (now - min(created)).total_seconds() if created else 0.0)

    referrals = GaugeMetricFamily("hotline_referrals", "Referrals by state", labels=["state"])
    for state, count in (await session.execute(_REFERRALS)).all():
        referrals.add_metric([state], count)
    deadlines = GaugeMetricFamily(
        "hotline_referral_deadlines",
        "Open referrals by deadline state, as on the supervisors' board "
        "(soon: due within hours or already warned; overdue: 督办; flagged: 挂牌督办)",
        labels=["deadline"],
    )
    for name, count in (await deadline_counts(session, now)).items():
        deadlines.add_metric([name], count)

    waiting = GaugeMetricFamily(
        "hotline_partner_undelivered", "Feedback waiting for each partner", labels=["partner"]
    )
    lag = GaugeMetricFamily(
        "hotline_partner_delivery_lag_seconds",
        "Age of the oldest feedback not yet delivered to each partner (0 when none waits)",
        labels=["partner"],
    )
    for line in await line_rows(session):
        waiting.add_metric([line["source"]], line["undelivered"])
        first = line["oldest_undelivered_at"]
        lag.add_metric([line["source"]], (now - first).total_seconds() if first else 0.0)
    return [backlog, oldest, referrals, deadlines, waiting, lag]


_OUTBOX = text(
    "SELECT topic, count(*), min(created_at) FROM outbox WHERE done_at IS NULL GROUP BY topic"
)
_REFERRALS = text("SELECT status, count(*) FROM referral GROUP BY status")


async def _queues(redis) -> list[Metric]:
    depth = GaugeMetricFamily(
        "hotline_rq_queue_depth", "Jobs waiting in each RQ queue", labels=["queue"]
    )
    failed = GaugeMetricFamily(
        "hotline_rq_failed_jobs", "Jobs in each RQ queue's failed registry", labels=["queue"]
    )
    keys = await redis.smembers("rq:queues")
    names = sorted(raw.decode().removeprefix("rq:queue:") for raw in keys)
    async with redis.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.llen(f"rq:queue:{name}")
            pipe.zcard(f"rq:failed:{name}")
        counts = await pipe.execute()
    for i, name in enumerate(names):
        depth.add_metric([name], counts[2 * i])
        failed.add_metric([name], counts[2 * i + 1])
    return [depth, failed]


async def _processes(redis) -> Metric:
    living = GaugeMetricFamily(
        "hotline_processes",
        "Worker and scheduler processes with a fresh heartbeat",
        labels=["kind"],
    )
    for kind in KINDS:
        living.add_metric([kind], len(await living_async(redis, kind)))
    return living


class Observe(HttpMiddleware):
    """Every request gets an id (the caller's X-Request-ID when it is plain, else a new one),
    bound to its log lines and answered in X-Request-ID; with `timed`, its latency is
    recorded by route template, and refused intake is counted by channel."""

    def __init__(self, app: ASGIApp, *, timed: bool) -> None:
        super().__init__(app)
        self.timed = timed

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex[:16]
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        started = time.perf_counter()
        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                if self.timed:
                    _observe(scope, status, time.perf_counter() - started)


def _observe(scope: Scope, status: int, seconds: float) -> None:
    route = scope.get("route")
    template = getattr(route, "path", None) or "<unmatched>"
    REQUEST_SECONDS.labels(template, scope["method"], str(status)).observe(seconds)
    if 400 <= status < 500 and scope["method"] == "POST":
        channel = _INTAKE_ROUTES.get(template)
        if template == _FORWARD_ROUTE:
            source = scope.get("path_params", {}).get("source")
            channel = source if source in sources() else None  # partners.toml's
        if channel:
            INTAKE.labels(channel, "refused").inc()
