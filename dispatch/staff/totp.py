"""An optional second factor for staff sign-in: TOTP (RFC 6238, any authenticator app).

A user has it once `hotline user totp-enable` stored a seed (encrypted at rest,
`AppUser.totp_secret`); the token endpoint and the console sign-in then ask for the six-digit
code. `HOTLINE_TOTP_REQUIRED_ROLES` names roles that may not sign in without it at all.
A code is accepted once: a second use within its window (someone who watched it typed) is
refused, remembered in Redis under a keyed hash.
"""

import hashlib
import hmac
import time

import pyotp
from redis.asyncio import Redis
from redis.exceptions import RedisError

from db.settings import Settings

ISSUER = "未保热线"
STEP = 30
_USED_PREFIX = "hotline:totp:used:"


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, username: str) -> str:
    """The otpauth:// URI an authenticator app reads (as a QR code or pasted)."""
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER)


def required_roles(settings: Settings) -> frozenset[str]:
    """HOTLINE_TOTP_REQUIRED_ROLES; an unknown role name stops the service at start (a typo
    must not silently leave supervisors without their second factor)."""
    from dispatch.staff.auth import ROLES

    roles = frozenset(settings.hotline_totp_required_roles)
    unknown = roles - set(ROLES)
    if unknown:
        raise ValueError(
            f"HOTLINE_TOTP_REQUIRED_ROLES 含未知角色 {', '.join(sorted(unknown))}；"
            f"可用：{', '.join(ROLES)}"
        )
    return roles


def matching_step(secret: str, code: str, at: float | None = None) -> int | None:
    """The time step whose code this is (the current one or a neighbour, for clock drift)."""
    code = "".join(code.split())
    if not (code.isdigit() and len(code) == 6):
        return None
    now = time.time() if at is None else at
    totp = pyotp.TOTP(secret)
    step = int(now // STEP)
    for candidate in (step, step - 1, step + 1):
        if hmac.compare_digest(totp.at(candidate * STEP), code):
            return candidate
    return None


async def accept(redis: Redis, user_id: int, secret: str, code: str) -> bool:
    """The code is right and not used before. Without Redis a right code is accepted (the
    password and the code still had to be right; refusing would lock every staff out)."""
    step = matching_step(secret, code)
    if step is None:
        return False
    key = _USED_PREFIX + hashlib.sha256(f"{user_id}:{step}".encode()).hexdigest()[:32]
    try:
        return bool(await redis.set(key, "1", nx=True, ex=STEP * 4))
    except RedisError:
        return True
