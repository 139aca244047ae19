"""Staff authentication and authorization: argon2 passwords, signed bearer tokens, roles.

Default deny: a staff route names the permission it needs (`dispatch.staff.permissions`,
built on `require(...)` here); anything else, including a missing or stale token, is
refused before the handler runs.
"""

import asyncio
import time
from dataclasses import dataclass
from typing import Annotated

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import APIRouter, Depends, Form, Request
from fastapi.security import OAuth2PasswordBearer
from itsdangerous import BadSignature, URLSafeTimedSerializer
from pydantic import BaseModel
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import func, select

from channels.errors import ApiError, declared
from channels.web import client_ip
from db.engine import raw_connection
from db.models import AppUser, AuditLog
from dispatch.runtime import Runtime
from dispatch.staff import login_limits, totp

# inspector: 督查专员, the center's officer who puts cases under 挂牌督办 by hand and
# follows the departments' rectification (dispatch.supervision); no casework powers.
ROLES = (
    "operator",
    "caseworker",
    "supervisor",
    "liaison",
    "admin",
    "child_director",
    "station_worker",
    "inspector",
)
# A village's 儿童主任 and a township 未保站's worker: the cases assigned to them in their area.
AREA_ROLES = ("child_director", "station_worker")
CENTER_ROLES = ("operator", "caseworker", "supervisor", "inspector")
CENTER_DEPARTMENT = "minor_protection_center"

_hasher = PasswordHasher()
# A hash to verify against when the user does not exist, so timing does not tell.
_DUMMY_HASH = _hasher.hash("not-a-password")

oauth2 = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True)
class Principal:
    """The signed-in staff member and the scope their data access is limited to."""

    id: int
    username: str
    role: str
    department: str | None
    jurisdiction: str | None
    # Materialized path of the user's jurisdiction: their scope is that subtree.
    scope_path: str | None

    @property
    def is_center(self) -> bool:
        """The center's own staff, as opposed to a department's (liaison, department supervisor)."""
        return self.role in CENTER_ROLES and self.department in (None, CENTER_DEPARTMENT)

    @property
    def label(self) -> str:
        """How the person appears in timelines and the audit log."""
        return f"{self.role}:{self.username}"


def _serializer(runtime: Runtime) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(runtime.secret_key, salt="staff-token")


def issue_token(runtime: Runtime, user: AppUser) -> str:
    return _serializer(runtime).dumps({"uid": user.id, "v": user.token_version})


def runtime_of(request: Request) -> Runtime:
    return request.app.state.runtime


# A verified token is trusted for this long before the user row is read again: a burst of
# requests (a queue refresh, a claim race) costs one lookup. A change made through
# `dispatch.staff.accounts` (disable, role, password, revoke; the CLI or the accounts page)
# bumps ACCOUNTS_KEY in Redis, which every cached entry is checked against (one GET), so it
# takes effect on the next request in every process; a change by raw SQL within these
# seconds.
PRINCIPAL_TTL = 5.0
_PRINCIPAL_CACHE_MAX = 10_000
ACCOUNTS_KEY = "hotline:staff:accounts"


# After Redis failed to answer, how long requests skip asking it (a timeout would otherwise
# add seconds to every request while it is away).
_REDIS_RETRY_SECONDS = 5.0


async def _accounts_epoch(runtime: Runtime) -> bytes | None:
    """The accounts' change counter; None without Redis (then nothing is trusted from the
    cache: every request reads the user row, as before the cache existed)."""
    now = time.monotonic()
    if now < runtime.redis_retry_at:
        return None
    try:
        return await runtime.redis.get(ACCOUNTS_KEY) or b"0"
    except (RedisError, OSError):
        runtime.redis_retry_at = now + _REDIS_RETRY_SECONDS
        return None


async def accounts_changed(redis: Redis) -> bool:
    """Tell every process that an account changed (after the change committed): their
    cached principals are read again on the next request. False if Redis did not answer."""
    try:
        await redis.incr(ACCOUNTS_KEY)
    except (RedisError, OSError):
        return False
    return True


# One statement on the pooled connection's asyncpg connection: no transaction around a lone
# read (SQLAlchemy's BEGIN and ROLLBACK would triple the round trips of every request).
_PRINCIPAL_SQL = (
    "SELECT u.id, u.username, u.role, u.department_code, u.jurisdiction_code, u.active,"
    " u.token_version, j.path FROM app_user u"
    " LEFT JOIN jurisdiction j ON j.code = u.jurisdiction_code WHERE u.id = $1"
)


async def principal_from_token(runtime: Runtime, token: str) -> Principal | None:
    cached = runtime.principal_cache.get(token)
    now = time.monotonic()
    # Read before the user row: a change committed after this read bumps the counter past
    # what the entry stores, so the entry is not trusted again.
    epoch = await _accounts_epoch(runtime)
    if cached and now - cached[0] < PRINCIPAL_TTL and epoch is not None and cached[1] == epoch:
        return cached[2]
    try:
        data = _serializer(runtime).loads(token, max_age=runtime.settings.hotline_token_ttl)
    except BadSignature:
        return None
    uid = data.get("uid") if isinstance(data, dict) else None
    if not isinstance(uid, int):
        return None
    async with raw_connection(runtime.engine) as conn:
        row = await conn.fetchrow(_PRINCIPAL_SQL, uid)
    if row is None or not row["active"] or row["token_version"] != data.get("v"):
        return None
    principal = Principal(
        row["id"],
        row["username"],
        row["role"],
        row["department_code"],
        row["jurisdiction_code"],
        row["path"],
    )
    if len(runtime.principal_cache) >= _PRINCIPAL_CACHE_MAX:
        runtime.principal_cache.clear()
    runtime.principal_cache[token] = (now, epoch, principal)
    return principal


async def current_principal(
    request: Request, token: Annotated[str | None, Depends(oauth2)]
) -> Principal:
    if not token:
        raise ApiError(401, headers={"WWW-Authenticate": "Bearer"})
    principal = await principal_from_token(runtime_of(request), token)
    if principal is None:
        raise ApiError(
            401, "invalid_token", "登录已失效，请重新登录", headers={"WWW-Authenticate": "Bearer"}
        )
    return principal


def require(*roles: str):
    """Dependency admitting only the named roles."""
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown roles {unknown}")

    async def dependency(
        principal: Annotated[Principal, Depends(current_principal)],
    ) -> Principal:
        if principal.role not in roles:
            raise ApiError(403)
        return principal

    return dependency


def require_center(*roles: str):
    """Like `require`, for the center's work (the workflow, routing): a department's
    supervisor holds the role but not the job."""
    base = require(*roles)

    async def dependency(principal: Annotated[Principal, Depends(base)]) -> Principal:
        if not principal.is_center:
            raise ApiError(403)
        return principal

    return dependency


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"


router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


TOTP_REQUIRED = "该账号已开启两步验证：请同时输入验证器应用中的6位动态码"
TOTP_INVALID = "动态码错误或已使用过，请输入验证器应用中最新的6位动态码"
TOTP_SETUP_REQUIRED = (
    "按本单位规定，您的角色须开启两步验证后才能登录：请联系系统管理员为您开启"
    "（hotline user totp-enable 登录名），用验证器应用扫描后再登录"
)


async def _second_factor(runtime: Runtime, user: AppUser, code: str | None) -> ApiError | None:
    """Why a user whose password was right may not sign in yet, or None."""
    if not user.totp_secret:
        if user.role in totp.required_roles(runtime.settings):
            return ApiError(403, "totp_setup_required", TOTP_SETUP_REQUIRED)
        return None
    if not code:
        return ApiError(401, "totp_required", TOTP_REQUIRED)
    assert user.id is not None
    if not await totp.accept(runtime.redis, user.id, user.totp_secret, code):
        return ApiError(401, "totp_invalid", TOTP_INVALID)
    return None


@router.post("/token", response_model=TokenOut, responses=declared(401, 403, 429))
async def token(
    request: Request,
    username: Annotated[str, Form(max_length=60)],
    password: Annotated[str, Form(max_length=200)],
    totp_code: Annotated[str | None, Form(max_length=12)] = None,
) -> TokenOut:
    """OAuth2 password flow, plus `totp_code` for a user with a second factor. The same
    answer for an unknown user and a wrong password; guessing (passwords and codes) is
    slowed per user name and per address (`dispatch.staff.login_limits`), and the right
    password still signs in once the wait is over."""
    runtime = runtime_of(request)
    await login_limits.admit(request, username)
    refusal: ApiError | None = None
    async with runtime.sessions() as session, session.begin():
        user = (
            await session.execute(select(AppUser).where(AppUser.username == username))
        ).scalar_one_or_none()
        # argon2 is deliberately slow: keep it off the event loop.
        ok = await asyncio.to_thread(
            verify_password, user.password_hash if user else _DUMMY_HASH, password
        )
        ok = ok and user is not None and user.active
        if ok and user is not None:
            refusal = await _second_factor(runtime, user, totp_code)
            if refusal is None:
                user.last_login_at = func.now()
        known = ok and user is not None  # the password was right: the row names the user
        session.add(
            AuditLog(
                actor_id=user.id if known and user else None,
                actor=username if known else "anonymous",
                action="auth.login" if known and refusal is None else "auth.login_failed",
                object_type="user",
                object_id=str(user.id) if known and user else None,
                ip=client_ip(request),
                detail={"refused": refusal.code} if refusal else None,
            )
        )
    if not ok or user is None:
        raise ApiError(401, "invalid_credentials", "用户名或密码错误")
    if refusal is not None:  # counted as a miss by the limits: codes cannot be tried freely
        raise refusal
    await login_limits.succeeded(request, username)
    issued = issue_token(runtime, user)
    # Warm the principal cache: a liaison who has just signed in to take a referral should
    # not pay a user lookup on the race itself (argon2 proved the user just now).
    await principal_from_token(runtime, issued)
    return TokenOut(access_token=issued)
