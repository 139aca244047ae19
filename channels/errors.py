"""The contract's error shape, `{"error": {"code", "message"}}`, for every failure.

Messages are Chinese and for people; nothing from the request, the database or a traceback
is echoed back.
"""

import logging
import re

import asyncpg
import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Message, Receive, Scope, Send

from channels import degraded
from channels.asgi import HttpMiddleware
from workflows.cases.intake import field_errors
from workflows.errors import Conflict, DomainError, Forbidden, Invalid, NotFound

log = logging.getLogger("hotline.errors")

_DEFAULTS = {
    400: ("bad_request", "请求有误"),
    401: ("unauthorized", "请先登录或提供有效的凭证"),
    405: ("method_not_allowed", "不支持此请求方法"),
    413: ("payload_too_large", "提交的内容过大"),
    415: ("unsupported_media_type", "不支持的内容类型"),
    429: ("too_many_requests", "请求过于频繁，请稍后再试"),
    503: ("unavailable", "服务暂不可用，请稍后再试"),
    **{kind.status: (kind.code, kind.message) for kind in (Forbidden, NotFound, Conflict, Invalid)},
}


# The error body as the OpenAPI schema declares it (`dispatch.openapi` adds it to the
# components and to every operation for the statuses it can answer).
ERROR_SCHEMA_NAME = "Error"
ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "description": "机器可读的错误代码"},
                "message": {"type": "string", "description": "给人看的中文说明"},
                "fields": {
                    "type": "object",
                    "additionalProperties": {"type": "string"},
                    "description": "逐项说明哪些字段有误、允许什么",
                },
            },
        },
    },
}


def declared(*statuses: int) -> dict[int | str, dict]:
    """`responses=` for a route decorator: statuses its own code answers that the schema
    cannot see from its dependencies (a rate limit, a refused password)."""
    ref = {"$ref": f"#/components/schemas/{ERROR_SCHEMA_NAME}"}
    content = {"application/json": {"schema": ref}}
    return {s: {"description": _DEFAULTS[s][1], "content": content} for s in statuses}


class ApiError(DomainError):
    """An HTTP answer in the contract's error shape, with any status (and headers); the
    domain's own errors (`workflows.errors`) are answered the same way."""

    def __init__(
        self,
        status: int,
        code: str | None = None,
        message: str | None = None,
        *,
        fields: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        default_code, default_message = _DEFAULTS.get(status, ("error", "出错了"))
        self.status = status
        self.code = code or default_code
        self.message = message or default_message
        self.fields = fields
        self.headers = headers


def error_response(err: DomainError) -> JSONResponse:
    body: dict = {"error": {"code": err.code, "message": err.message}}
    fields = getattr(err, "fields", None)
    if fields:
        body["error"]["fields"] = fields
    return JSONResponse(body, status_code=err.status, headers=getattr(err, "headers", None))


def _bad_input(exc: BaseException) -> bool:
    """The database refused a value (a NUL character, a number out of range): the client's
    input was wrong, so 422, not 500. Found anywhere in the exception's chain."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, asyncpg.exceptions.DataError | sqlalchemy.exc.DataError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def allowed_methods(request: Request) -> str:
    """Every method the resource at this path answers. The router's own 405 names only the
    first route that matched, and a path such as /api/v1/cases/{id} has one route per method;
    a path that is a route of its own (/api/v1/forwards/stats) is not also a {source}."""
    literal: set[str] = set()
    templated: set[str] = set()
    for route in iter_route_contexts(request.app.routes):
        pattern = re.sub(r"\{[^}]+\}", "[^/]+", route.path_format)
        if route.methods and re.fullmatch(pattern, request.url.path):
            (templated if "{" in route.path_format else literal).update(route.methods)
    return ", ".join(sorted(literal or templated))


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _refused(_: Request, exc: DomainError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            return error_response(ApiError(400, "invalid_json", "请求内容不是有效的JSON"))
        return error_response(ApiError(422, fields=field_errors(errors)))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            headers = {**(headers or {}), "Allow": allowed_methods(request)}
        return error_response(ApiError(exc.status_code, headers=headers))

    app.add_middleware(CatchAll)


class CatchAll(HttpMiddleware):
    """Turns any unhandled exception into the contract's 500 (or 422 for input the database
    refused, or the channel's degraded answer, 503 for the API, when the database is down:
    `channels.degraded`) and does not re-raise it: Starlette's outermost middleware would otherwise
    hand the exception to the server, whose traceback log can carry SQL parameters, that
    is, personal data. Only the exception type and the route template are logged."""

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:  # noqa: BLE001 - this is the last line of defence
            if degraded.database_down(exc):
                where = getattr(scope.get("route"), "path", "unmatched route")
                log.error(
                    "database unavailable (%s) on %s %s", type(exc).__name__, scope["method"], where
                )
                if not started:
                    answer = degraded.answer_for(Request(scope))
                    if answer is None:
                        answer = error_response(
                            ApiError(*degraded.api_error(), headers={"Retry-After": "30"})
                        )
                    await answer(scope, receive, send)
                return
            if _bad_input(exc):
                err = ApiError(422, "invalid_input", "提交的内容包含无法处理的字符或超出范围的数值")
            else:
                where = getattr(scope.get("route"), "path", "unmatched route")
                log.error("unhandled %s on %s %s", type(exc).__name__, scope["method"], where)
                err = ApiError(500, "internal_error", "服务器内部错误，请稍后再试")
            if not started:
                await error_response(err)(scope, receive, send)
