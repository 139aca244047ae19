"""Staff accounts over their life: add, list, disable and enable, change role, reset the
password, revoke sign-ins, the TOTP second factor.

One module for both ways in, `hotline user …` (dispatch.ops.cli) and the center admin's
accounts page (dispatch.console.accounts): the same checks, the same audit rows, the same
refusals. A change that must end someone's access (disable, role, password, revoke, a new
second factor) bumps `token_version`, which voids every API token and console session
issued before; the caller then calls `dispatch.staff.auth.accounts_changed` after the commit
so running processes do not trust their short principal cache either.

Refused, with the reason in Chinese: what would silently do nothing (disabling a disabled
account, the role it already has) and what would leave a broken account (a liaison without
a department office to receive referrals, a role without the place its scope needs, the
last active administrator disabled or demoted).
"""

import getpass
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import AppUser, AuditLog, Department, Jurisdiction, Office
from dispatch.common.lookup import scalar_or_404
from dispatch.staff import totp
from dispatch.staff.auth import (
    AREA_ROLES,
    CENTER_DEPARTMENT,
    ROLES,
    Principal,
    hash_password,
)
from workflows.errors import Conflict, Forbidden, Invalid

MIN_PASSWORD = 8
ADMIN = "admin"
# Roles whose scope is a jurisdiction's subtree (dispatch.staff.scope): without one they see
# nothing at all. Only the administrator, who sees no case data, may go without.
_NEEDS_PLACE = tuple(r for r in ROLES if r != ADMIN)
# The center's own roles besides supervisor (which a department may also have).
_CENTER_ONLY = ("operator", "caseworker", "inspector", ADMIN, *AREA_ROLES)


@dataclass(frozen=True)
class Actor:
    """Who changes accounts: a center administrator on the console, or the `hotline`
    command run on the server (whoever has the shell has the database anyway)."""

    label: str
    id: int | None = None

    @classmethod
    def command_line(cls) -> "Actor":
        try:
            who = getpass.getuser()
        except (KeyError, OSError):  # no name for this uid (a container)
            who = "unknown"
        return cls(f"cli:{who}")

    @classmethod
    def staff(cls, principal: Principal) -> "Actor":
        """A signed-in person: only the center's administrators manage accounts."""
        if principal.role != ADMIN or principal.department not in (None, CENTER_DEPARTMENT):
            raise Forbidden("forbidden", "只有中心的系统管理员可以管理账号")
        return cls(principal.label, principal.id)


@dataclass(frozen=True)
class Account:
    """One row of the accounts list: nothing secret (no hash, no TOTP seed)."""

    id: int
    username: str
    role: str
    department: str | None
    jurisdiction: str | None
    phone: str | None
    active: bool
    totp: bool
    last_login_at: datetime | None
    created_at: datetime | None

    @classmethod
    def of(cls, user: AppUser) -> "Account":
        assert user.id is not None
        return cls(
            user.id,
            user.username,
            user.role,
            user.department_code,
            user.jurisdiction_code,
            user.phone,
            user.active,
            bool(user.totp_secret),
            user.last_login_at,
            user.created_at,
        )


@dataclass(frozen=True)
class Change:
    """What was done, said plainly (the CLI prints it, the page shows it)."""

    account: Account
    message: str
    ends_access: bool


@dataclass(frozen=True)
class TotpSetup:
    account: Account
    secret: str
    uri: str


def _audit(
    session: AsyncSession,
    actor: Actor,
    action: str,
    user: AppUser,
    ip: str | None,
    detail: dict[str, Any] | None = None,
) -> None:
    session.add(
        AuditLog(
            actor_id=actor.id,
            actor=actor.label[:80],
            action=action,
            object_type="user",
            object_id=str(user.id),
            ip=ip,
            detail={"username": user.username, **(detail or {})},
        )
    )


async def check_placement(
    session: AsyncSession, role: str, department: str | None, jurisdiction: str | None
) -> None:
    """The one check of a role with its department and jurisdiction (`user add`, set-role
    and the page alike): refuses a combination with which the account could not work."""
    if role not in ROLES:
        raise Invalid("unknown_role", f"角色应为 {', '.join(ROLES)} 之一")
    if department and not await session.get(Department, department):
        raise Invalid("unknown_department", f"未知的部门代码 {department}")
    if jurisdiction and not await session.get(Jurisdiction, jurisdiction):
        raise Invalid("unknown_jurisdiction", f"未知的辖区代码 {jurisdiction}")
    own_department = department not in (None, CENTER_DEPARTMENT)
    if role == "liaison" and not own_department:
        raise Invalid("department_required", "部门联络员需要所属部门（如 police），不能属于中心")
    if role in _CENTER_ONLY and own_department:
        raise Invalid(
            "center_role", f"角色 {role} 是中心的岗位，不能属于部门 {department}（去掉部门）"
        )
    if role in _NEEDS_PLACE and not jurisdiction:
        if role in AREA_ROLES:
            need = "儿童主任与未保站工作人员需要所在村/社区或乡镇/街道的辖区代码"
        else:
            need = f"角色 {role} 需要辖区代码（其可见范围是该辖区及以下）"
        raise Invalid("jurisdiction_required", need)
    if role == "liaison":
        assert department and jurisdiction
        offices = sorted(
            (
                await session.execute(
                    select(Office.jurisdiction_code).where(Office.department_code == department)
                )
            ).scalars()
        )
        if jurisdiction not in offices:
            where = "、".join(offices) if offices else "无"
            raise Invalid(
                "no_office",
                f"部门 {department} 在辖区 {jurisdiction} 没有办公室（转介队列），该联络员将收不到"
                f"任何转介；该部门有办公室的辖区：{where}",
            )


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise Invalid("password_too_short", f"密码至少 {MIN_PASSWORD} 位")


async def _user(session: AsyncSession, username: str) -> AppUser:
    """The account, locked for this transaction (two admins acting at once go in turn)."""
    stmt = select(AppUser).where(AppUser.username == username).with_for_update()
    return await scalar_or_404(session, stmt, "user_not_found", f"没有登录名为 {username} 的账号")


# Taken by every change that could remove an administrator: two admins disabling each
# other at once go in turn, and the second sees the first's change (no deadlock either:
# only this lock is waited for, the other's row is never locked).
_ADMINS_LOCK = 0x686F746C696E65  # "hotline"


async def _keep_an_admin(session: AsyncSession, user: AppUser, what: str) -> None:
    """Refuse taking the last active administrator away: nobody could manage accounts
    from the console any more."""
    if user.role != ADMIN or not user.active:
        return
    await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADMINS_LOCK})
    others = await session.execute(
        select(AppUser.id).where(AppUser.role == ADMIN, AppUser.active, AppUser.id != user.id)
    )
    if not others.first():
        raise Conflict("last_admin", f"{user.username} 是唯一在用的系统管理员，不能{what}")


def _end_access(user: AppUser) -> None:
    user.token_version += 1


def _changed(
    session: AsyncSession,
    actor: Actor,
    action: str,
    user: AppUser,
    ip: str | None,
    message: str,
    *,
    ends_access: bool,
    detail: dict[str, Any] | None = None,
) -> Change:
    """Audit the change to `user` and say it; one that ends access first makes the tokens
    and console sessions issued so far invalid."""
    if ends_access:
        _end_access(user)
    _audit(session, actor, action, user, ip, detail)
    return Change(Account.of(user), message, ends_access)


async def add_user(
    *,
    session: AsyncSession,
    actor: Actor,
    ip: str | None = None,
    username: str,
    role: str,
    department: str | None,
    jurisdiction: str | None,
    phone: str | None,
    password: str,
) -> Change:
    username = username.strip()
    if not username or len(username) > 60:
        raise Invalid("bad_username", "登录名不能为空，且不超过60个字符")
    check_password(password)
    await check_placement(session, role, department, jurisdiction)
    exists = await session.execute(select(AppUser.id).where(AppUser.username == username))
    if exists.first():
        raise Conflict("username_taken", f"登录名 {username} 已存在")
    user = AppUser(
        username=username,
        password_hash=hash_password(password),
        role=role,
        department_code=department,
        jurisdiction_code=jurisdiction,
        phone=phone,
    )
    session.add(user)
    await session.flush()
    said = f"已添加账号 {username}（{_describe(user)}）"
    return _changed(
        session, actor, "user.add", user, ip, said, ends_access=False, detail=_placement(user)
    )


def _placement(user: AppUser) -> dict[str, Any]:
    return {
        "role": user.role,
        "department": user.department_code,
        "jurisdiction": user.jurisdiction_code,
    }


def _describe(user: AppUser) -> str:
    parts = [f"角色 {user.role}"]
    if user.department_code:
        parts.append(f"部门 {user.department_code}")
    if user.jurisdiction_code:
        parts.append(f"辖区 {user.jurisdiction_code}")
    return "，".join(parts)


async def list_users(
    *, session: AsyncSession, actor: Actor, ip: str | None = None
) -> list[Account]:
    """Every account, active ones first, by name. The read is audited (who looked)."""
    users = (
        await session.execute(select(AppUser).order_by(AppUser.active.desc(), AppUser.username))
    ).scalars()
    accounts = [Account.of(u) for u in users]
    session.add(
        AuditLog(
            actor_id=actor.id,
            actor=actor.label[:80],
            action="user.list",
            object_type="user",
            ip=ip,
            detail={"count": len(accounts)},
        )
    )
    return accounts


async def disable(
    *, session: AsyncSession, actor: Actor, ip: str | None = None, username: str
) -> Change:
    user = await _user(session, username)
    if not user.active:
        raise Conflict("already_disabled", f"账号 {username} 已是停用状态，未做任何更改")
    if actor.id is not None and actor.id == user.id:
        raise Conflict("self_disable", "不能停用自己正在使用的账号")
    await _keep_an_admin(session, user, "停用")
    user.active = False
    said = f"已停用账号 {username}：不能再登录，已签发的令牌和控制台会话立即失效"
    return _changed(session, actor, "user.disable", user, ip, said, ends_access=True)


async def enable(
    *, session: AsyncSession, actor: Actor, ip: str | None = None, username: str
) -> Change:
    user = await _user(session, username)
    if user.active:
        raise Conflict("already_active", f"账号 {username} 已是启用状态，未做任何更改")
    try:
        await check_placement(session, user.role, user.department_code, user.jurisdiction_code)
    except Invalid as exc:
        raise Invalid(
            exc.code,
            f"账号 {username} 现有的角色设置无法使用（{exc.message}）：请先用 set-role 改正",
        ) from None
    user.active = True
    said = f"已启用账号 {username}：可以用原密码重新登录（停用前签发的令牌仍然无效）"
    return _changed(session, actor, "user.enable", user, ip, said, ends_access=False)


async def set_role(
    *,
    session: AsyncSession,
    actor: Actor,
    ip: str | None = None,
    username: str,
    role: str,
    department: str | None,
    jurisdiction: str | None,
) -> Change:
    """A new role with the department and jurisdiction it needs (given in full: what is
    not given is cleared, so a liaison turned caseworker does not keep a department)."""
    user = await _user(session, username)
    await check_placement(session, role, department, jurisdiction)
    before = _placement(user)
    if before == {"role": role, "department": department, "jurisdiction": jurisdiction}:
        raise Conflict("unchanged", f"账号 {username} 已是{_describe(user)}，未做任何更改")
    if role != ADMIN:
        await _keep_an_admin(session, user, "改为其他角色")
    user.role, user.department_code, user.jurisdiction_code = role, department, jurisdiction
    said = (
        f"已将账号 {username} 改为{_describe(user)}；已签发的令牌和控制台会话立即失效，需重新登录"
    )
    return _changed(
        session,
        actor,
        "user.set_role",
        user,
        ip,
        said,
        ends_access=True,
        detail={"before": before, "after": _placement(user)},
    )


async def reset_password(
    *, session: AsyncSession, actor: Actor, ip: str | None = None, username: str, password: str
) -> Change:
    check_password(password)
    user = await _user(session, username)
    user.password_hash = hash_password(password)
    said = f"已重置账号 {username} 的密码；已签发的令牌和控制台会话立即失效，需用新密码登录"
    return _changed(session, actor, "user.reset_password", user, ip, said, ends_access=True)


async def revoke(
    *, session: AsyncSession, actor: Actor, ip: str | None = None, username: str
) -> Change:
    user = await _user(session, username)
    note = "" if user.active else "（该账号本已停用）"
    said = f"已吊销账号 {username} 的全部登录：已签发的令牌和控制台会话立即失效{note}"
    return _changed(session, actor, "user.revoke", user, ip, said, ends_access=True)


async def totp_enable(
    *,
    session: AsyncSession,
    actor: Actor,
    ip: str | None = None,
    username: str,
    replace: bool = False,
) -> TotpSetup:
    """A new TOTP seed (shown once to whoever enables it, stored encrypted). Sign-ins made
    without the second factor end."""
    user = await _user(session, username)
    if user.totp_secret and not replace:
        raise Conflict(
            "totp_already_enabled",
            f"账号 {username} 已开启两步验证；要换新的验证器，请加 --replace（原验证器将失效）",
        )
    secret = totp.new_secret()
    user.totp_secret = secret
    _end_access(user)
    _audit(session, actor, "user.totp_enable", user, ip, {"replaced": bool(replace)})
    return TotpSetup(Account.of(user), secret, totp.provisioning_uri(secret, user.username))


async def totp_disable(
    *, session: AsyncSession, actor: Actor, ip: str | None = None, username: str
) -> Change:
    user = await _user(session, username)
    if not user.totp_secret:
        raise Conflict("totp_not_enabled", f"账号 {username} 没有开启两步验证，未做任何更改")
    user.totp_secret = None
    said = (
        f"已关闭账号 {username} 的两步验证：今后只凭密码登录"
        "（若其角色须两步验证，将无法登录，直到重新开启）"
    )
    return _changed(session, actor, "user.totp_disable", user, ip, said, ends_access=False)
