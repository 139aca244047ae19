"""110 / 12345 / 12355 work orders: `POST /api/v1/forwards/{source}` and the partner's 回访
result, `POST /api/v1/forwards/{source}/satisfaction`.

Each request is authenticated first (the partner's HMAC over timestamp + raw body, within
the replay window), then parsed; the order is durable in PostgreSQL before the 202. The
same (source, external_id) is one report whenever and however often it comes, concurrent
twins included (the intake lock); an order naming an `original_external_id` lands on the
earlier order's case, and raises it to an emergency when its urgency says so.
"""

import json
import time
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from channels.errors import ApiError, declared
from channels.partners import signature as partner_signature
from channels.partners.secrets import open_box
from channels.web import client_ip, secret_key, sessions
from db import clock
from db.models import AuditLog, Report
from db.partners import ForwardSatisfaction, Partner
from db.timeline import case_event
from workflows.cases import receipts
from workflows.cases.emergency import raise_emergency
from workflows.cases.intake import (
    IntakeResult,
    NewReport,
    field_errors,
    record_report,
)
from workflows.partners.forwards import (
    FIELD_MESSAGES,
    SATISFACTION_MESSAGES,
    SatisfactionIn,
    WorkOrder,
    mapped,
    satisfaction_labels,
    sources,
    to_report,
)

router = APIRouter(prefix="/api/v1/forwards", tags=["forwards"])
Source = Annotated[
    str, Path(description="来源代码：110、12345、12355，或部署在 partners.toml 中配置的来源",
              json_schema_extra={"enum": list(sources())})
]
# A partner's secret is read again after this many seconds (and at once when a signature
# fails under the cached one), so a request costs no database read for it.
SECRET_TTL = 10.0

_SIGNED = {
    "parameters": [
        {"name": h, "in": "header", "required": True, "schema": {"type": "string"}}
        for h in (partner_signature.TIMESTAMP, partner_signature.SIGNATURE)
    ],
    "responses": declared(400, 401, 413, 415, 422),
}
_UNAUTHORIZED = {
    "signature_missing": "缺少签名（X-Hotline-Timestamp / X-Hotline-Signature）",
    "signature_invalid": "签名无效",
    "signature_expired": "请求时间超出允许范围（300秒），疑似重放",
    "partner_unknown": "该来源未配置对接",
}


class ForwardAccepted(BaseModel):
    receipt_code: str
    case_id: int
    duplicate: bool


class SatisfactionRecorded(BaseModel):
    case_id: int
    score: int
    label: str


def _body_schema(model: type[BaseModel]) -> dict[str, Any]:
    return {
        **_SIGNED,
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        },
    }


def _secret_cache(request: Request) -> dict[str, tuple[float, str]]:
    state = request.app.state
    if not hasattr(state, "partner_secrets"):
        state.partner_secrets = {}
    return state.partner_secrets


async def _partner_secret(request: Request, source: str) -> str | None:
    """The active partner's shared secret, cached briefly on the app."""
    cache = _secret_cache(request)
    hit = cache.get(source)
    if hit and hit[0] > time.monotonic():
        return hit[1]
    async with sessions(request)() as session:
        box = await session.scalar(
            select(Partner.secret_box).where(Partner.source == source, Partner.active)
        )
    secret = open_box(secret_key(request), box) if box else None
    if secret is not None:
        cache[source] = (time.monotonic() + SECRET_TTL, secret)
    return secret


async def _signature_problem(request: Request, source: str, body: bytes) -> str | None:
    secret = await _partner_secret(request, source)
    if secret is None:
        return "partner_unknown"
    return partner_signature.check(
        secret,
        request.headers.get(partner_signature.TIMESTAMP),
        request.headers.get(partner_signature.SIGNATURE),
        body,
        clock.now().timestamp(),
    )


async def _authenticated_json(request: Request, source: str) -> dict[str, Any]:
    """The request's JSON object, once the partner's signature over it holds."""
    if source not in sources():
        raise ApiError(404, "unknown_source", f"未知的来源（应为 {'、'.join(sources())}）")
    body = await request.body()
    problem = await _signature_problem(request, source, body)
    if problem == "signature_invalid":
        # The partner may have been given a new secret since we cached the old one.
        _secret_cache(request).pop(source, None)
        problem = await _signature_problem(request, source, body)
    if problem:
        raise ApiError(401, problem, _UNAUTHORIZED[problem])
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise ApiError(415, message="请以 application/json 提交")
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ApiError(400, "invalid_json", "请求体不是有效的 JSON") from None
    if not isinstance(data, dict):
        raise ApiError(422, message="请求体应为 JSON 对象")
    return data


def _invalid(error: ValidationError, messages: dict[str, str]) -> ApiError:
    fields = {path: messages.get(path, message) for path, message in field_errors(error).items()}
    return ApiError(422, fields=fields)


@router.post(
    "/{source}",
    status_code=202,
    response_model=ForwardAccepted,
    openapi_extra=_body_schema(WorkOrder),
)
async def forward(request: Request, source: Source) -> ForwardAccepted:
    """A partner's work order: acknowledged once it is stored; the same order again is
    `duplicate: true` with the same receipt and case."""
    data = await _authenticated_json(request, source)
    try:
        order = WorkOrder.model_validate(mapped(source, data))
    except ValidationError as exc:
        raise _invalid(exc, FIELD_MESSAGES) from None
    new = to_report(source, order, data)
    new.ip = client_ip(request)
    async with sessions(request)() as session, session.begin():
        result = await _store(session, source, order.original_external_id, new)
    return ForwardAccepted(
        receipt_code=receipts.display(result.receipt_code),
        case_id=result.case_id,
        duplicate=result.duplicate,
    )


async def _store(
    session: AsyncSession, source: str, original: str | None, new: NewReport
) -> IntakeResult:
    """A new order opens a case; an update of a known order joins its case, and makes it
    an emergency when the update says the danger is happening now."""
    case_id = None
    if original and original != new.external_id:
        case_id = await session.scalar(
            select(Report.case_id).where(Report.channel == source, Report.external_id == original)
        )
    result = await record_report(session, new, case_id=case_id)
    if case_id is not None and not result.duplicate and result.emergency:
        judged = new.judgement.evidence.get("emergency", []) if new.judgement else []
        await raise_emergency(
            session,
            case_id,
            result.report_id,
            actor=new.actor,
            reason="来单更新：危险正在发生",
            data={"report_id": result.report_id, "source": source, "matched": judged},
            now=clock.now(),
        )
    return result


@router.post(
    "/{source}/satisfaction",
    response_model=SatisfactionRecorded,
    openapi_extra=_body_schema(SatisfactionIn),
)
async def satisfaction(request: Request, source: Source) -> SatisfactionRecorded:
    """The caller's satisfaction from the partner's 回访; sent again, it replaces the first."""
    data = await _authenticated_json(request, source)
    try:
        body = SatisfactionIn.model_validate(data)
    except ValidationError as exc:
        raise _invalid(exc, SATISFACTION_MESSAGES) from None
    score = int(body.satisfaction)
    label = satisfaction_labels()[score - 1]
    async with sessions(request)() as session, session.begin():
        report = (
            await session.execute(
                select(Report.id, Report.case_id).where(
                    Report.channel == source, Report.external_id == body.external_id
                )
            )
        ).first()
        if report is None:
            raise ApiError(404, "work_order_not_found", "未找到该工单")
        row = await session.get(ForwardSatisfaction, report.id, with_for_update=True)
        changed = row is None or (row.score, row.comment) != (score, body.comment)
        if row is None:
            row = ForwardSatisfaction(report_id=report.id, case_id=report.case_id, source=source)
            session.add(row)
        row.score, row.comment, row.visited_at = score, body.comment, body.visited_at
        row.recorded_at = clock.now()
        session.add(
            AuditLog(
                actor=f"partner:{source}",
                action="satisfaction.record",
                object_type="case",
                object_id=str(report.case_id),
                ip=client_ip(request),
                detail={"report_id": report.id, "score": score},
            )
        )
        if changed:
            session.add(
                case_event(
                    case_id=report.case_id,
                    event="satisfaction",
                    actor=f"partner:{source}",
                    reason=label,
                    data={"report_id": report.id, "source": source, "score": score},
                )
            )
    return SatisfactionRecorded(case_id=report.case_id, score=score, label=label)
