"""The center administrator's accounts page: every staff account, and disable / enable,
role change, password reset and revoking sign-ins, the same operations as `hotline user`
(`dispatch.staff.accounts`, one set of checks and audit rows for both).

Forms post the session's CSRF token like every console form (`read_form`); a refusal is
shown as a notice with its reason. A change that ends someone's access is announced to
every process (`auth.accounts_changed`) before the page answers, so that person's next
request is already refused.
"""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.datastructures import FormData

from channels.web import in_transaction
from dispatch.console import web
from dispatch.staff import accounts
from dispatch.staff.auth import ROLES, accounts_changed, runtime_of
from dispatch.staff.permissions import ACCOUNT_MANAGE
from workflows.errors import DomainError
from workflows.reference import department_labels

router = APIRouter(prefix="/console", route_class=web.ConsoleRoute, include_in_schema=False)

MANAGE = web.staff(ACCOUNT_MANAGE)
PAGE = "/console/admin/accounts"


@router.get("/admin/accounts", response_class=HTMLResponse)
async def accounts_page(request: Request, user: Annotated[web.ConsoleUser, Depends(MANAGE)]):
    rows = await in_transaction(
        request, accounts.list_users, actor=accounts.Actor.staff(user.principal)
    )
    return web.render(
        request,
        user,
        "accounts.html",
        {
            "accounts": rows,
            "roles": [(r, web.ROLE_LABELS.get(r, r)) for r in ROLES],
            "departments": department_labels(),
            "min_password": accounts.MIN_PASSWORD,
        },
    )


async def _change(
    request: Request,
    user: web.ConsoleUser,
    operation: Callable[..., Awaitable[accounts.Change]],
    fields: Callable[[FormData], dict[str, Any]] = lambda form: {},
) -> RedirectResponse:
    """Read the form (CSRF), run the operation as this administrator, tell the running
    processes, and go back to the list with what was done or why not."""
    form = await web.read_form(request, user)
    try:
        actor = accounts.Actor.staff(user.principal)
        change = await in_transaction(
            request,
            operation,
            actor=actor,
            username=web.text_field(form, "username", 60),
            **fields(form),
        )
    except DomainError as exc:
        return await web.flash_and_go(request, user, PAGE, f"未执行：{exc.message}", "error")
    runtime = runtime_of(request)
    runtime.principal_cache.clear()  # this process at once, even without Redis
    if not await accounts_changed(runtime.redis) and change.ends_access:
        note = "（Redis 暂不可用：其他服务进程最多 5 秒后才会察觉）"
        return await web.flash_and_go(request, user, PAGE, change.message + note)
    return await web.flash_and_go(request, user, PAGE, change.message)


def _changer(
    operation: Callable[..., Awaitable[accounts.Change]],
    fields: Callable[[FormData], dict[str, Any]] = lambda form: {},
) -> Callable[..., Awaitable[RedirectResponse]]:
    """The endpoint of one change of the account named on the form (`_change`)."""

    async def post(
        request: Request, user: Annotated[web.ConsoleUser, Depends(MANAGE)]
    ) -> RedirectResponse:
        return await _change(request, user, operation, fields)

    return post


def _role(form: FormData) -> dict[str, Any]:
    return {**web.texts(form, role=20), **web.optional_texts(form, department=40, jurisdiction=32)}


for _name, _changes in (
    ("disable", _changer(accounts.disable)),
    ("enable", _changer(accounts.enable)),
    ("revoke", _changer(accounts.revoke)),
    ("role", _changer(accounts.set_role, _role)),
):
    router.post(f"/admin/accounts/{_name}")(_changes)


@router.post("/admin/accounts/password")
async def reset_password(
    request: Request, user: Annotated[web.ConsoleUser, Depends(MANAGE)]
) -> RedirectResponse:
    form = await web.read_form(request, user)
    password = str(form.get("password", ""))[:200]
    if password != str(form.get("confirm", ""))[:200]:
        return await web.flash_and_go(
            request, user, PAGE, "未执行：两次输入的新密码不一致", "error"
        )
    # read_form already checked the token: the body is read once more from Starlette's cache.
    return await _change(request, user, accounts.reset_password, lambda _: {"password": password})
