"""Console sign-in sessions: a random id in an HttpOnly cookie, the rest in Redis.

The session holds a staff bearer token (`dispatch.staff.auth.issue_token`), never sent to the
browser, so a console user is resolved exactly like an API caller: the user must still be
active, a logout-everywhere (token_version bump) ends the session, and the token's age
bounds the session's (HOTLINE_TOKEN_TTL, 8 hours). On top of that a session ends after
IDLE_SECONDS without a person acting: background polling does not count as acting.

Every form posts the session's CSRF token, compared in constant time; the cookie is also
SameSite=Strict, so another site cannot make the browser send it at all.
"""

import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from redis.exceptions import RedisError

from channels.errors import ApiError
from dispatch.staff.auth import Principal, principal_from_token, runtime_of

COOKIE = "hotline_console"
COOKIE_PATH = "/console"
IDLE_SECONDS = 30 * 60
_PREFIX = "hotline:console:session:"


def now() -> float:
    """The clock idle time is measured on."""
    return time.time()


class LoginRequired(Exception):
    """No live session: the page sends the browser to the sign-in form."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason  # missing, idle, ended


@dataclass
class ConsoleSession:
    sid: str
    csrf: str
    principal: Principal
    flashes: list[dict[str, str]] = field(default_factory=list)


def _key(sid: str) -> str:
    return _PREFIX + sid


def _absolute_ttl(request: Request) -> int:
    return runtime_of(request).settings.hotline_token_ttl


async def open_session(request: Request, response: Response, token: str) -> None:
    """A fresh session id at every sign-in (no fixation), set on `response`."""
    sid = secrets.token_urlsafe(32)
    key = _key(sid)
    redis = runtime_of(request).redis
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(
            key,
            mapping={"token": token, "csrf": secrets.token_urlsafe(32), "last_seen": now()},
        )
        pipe.expire(key, _absolute_ttl(request))
        await pipe.execute()
    response.set_cookie(
        COOKIE,
        sid,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path=COOKIE_PATH,
    )


async def close_session(request: Request, response: Response) -> None:
    sid = request.cookies.get(COOKIE)
    if sid:
        await runtime_of(request).redis.delete(_key(sid))
    response.delete_cookie(COOKIE, path=COOKIE_PATH)


async def current_session(request: Request, *, touch: bool = True) -> ConsoleSession:
    """The signed-in person, or LoginRequired. `touch` marks a person's action (resets the
    idle clock); background refreshes pass False."""
    sid = request.cookies.get(COOKIE)
    if not sid or len(sid) > 100:
        raise LoginRequired("missing")
    redis = runtime_of(request).redis
    key = _key(sid)
    try:
        data = await redis.hgetall(key)
    except RedisError as exc:
        raise ApiError(503, "sessions_unavailable", "登录服务暂不可用，请稍后再试") from exc
    if not data:
        raise LoginRequired("missing")
    values = {k.decode(): v.decode() for k, v in data.items()}
    if now() - float(values["last_seen"]) > IDLE_SECONDS:
        await redis.delete(key)
        raise LoginRequired("idle")
    principal = await principal_from_token(runtime_of(request), values["token"])
    if principal is None:
        await redis.delete(key)
        raise LoginRequired("ended")
    flashes = json.loads(values.get("flash", "[]"))
    if touch or flashes:
        async with redis.pipeline(transaction=True) as pipe:
            if touch:
                pipe.hset(key, "last_seen", now())
            if flashes:
                pipe.hdel(key, "flash")
            await pipe.execute()
    return ConsoleSession(sid, values["csrf"], principal, flashes)


async def flash(request: Request, session: ConsoleSession, kind: str, text: str) -> None:
    """A one-time message for the next page (after a form's redirect)."""
    session.flashes.append({"kind": kind, "text": text})
    await runtime_of(request).redis.hset(_key(session.sid), "flash", json.dumps(session.flashes))


def check_csrf(session: ConsoleSession, form: Any) -> None:
    sent = str(form.get("csrf_token", ""))
    if not hmac.compare_digest(sent.encode(), session.csrf.encode()):
        raise ApiError(403, "csrf_failed", "页面已过期或来源无法验证，请刷新页面后重试")
