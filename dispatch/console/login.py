"""Signing in and out of the consoles, and each role's landing page.

Sign-in goes through the staff API's own password endpoint (`dispatch.staff.auth.token`): the
same argon2 check, TOTP second factor, failed-login limits and audit rows; the token it
issues stays in the server-side session. The form itself is protected like the report
form: a signed nonce in a cookie and in the form, so another site cannot sign a browser in
as someone else.
"""

import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from channels.errors import ApiError
from channels.web import secret_key, sessions
from dispatch.console.sessions import close_session, current_session, open_session
from dispatch.console.web import (
    ROLE_HOMES,
    ConsoleRoute,
    ConsoleUser,
    read_form,
    render,
    see_other,
    staff,
    text_field,
)
from dispatch.staff import auth, permissions
from dispatch.staff.audit import audit

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)

LOGIN_COOKIE = "hotline_console_login"
LOGIN_FORM_SECONDS = 3600
REASONS = {
    "idle": "因长时间未操作，已自动退出，请重新登录",
    "ended": "登录已失效，请重新登录",
    "logout": "您已安全退出",
}
SIGNED_IN = staff(permissions.SIGNED_IN)


def _serializer(request: Request) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key(request), salt="console-login")


def _safe_next(target: str) -> str:
    """Only a console path of ours: never an open redirect."""
    ok = target.startswith("/console/") and not target.startswith("/console//")
    return target if ok and "\\" not in target else ""


def _login_page(
    request: Request, *, error: str = "", notice: str = "", next_url: str = "", status: int = 200
) -> HTMLResponse:
    nonce = secrets.token_urlsafe(16)
    response = render(
        request,
        None,
        "login.html",
        {
            "error": error,
            "notice": notice,
            "next": next_url,
            "login_token": _serializer(request).dumps(nonce),
        },
        status=status,
    )
    response.set_cookie(
        LOGIN_COOKIE,
        nonce,
        max_age=LOGIN_FORM_SECONDS,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/console/login",
    )
    return response


@router.get("/login")
async def login_form(request: Request, reason: str = "", next: str = "") -> HTMLResponse:
    return _login_page(request, notice=REASONS.get(reason, ""), next_url=_safe_next(next))


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form(max_files=0, max_fields=10)
    next_url = _safe_next(str(form.get("next", "")))
    try:
        signed = _serializer(request).loads(
            str(form.get("login_token", "")), max_age=LOGIN_FORM_SECONDS
        )
    except BadSignature:
        signed = None
    if not signed or signed != request.cookies.get(LOGIN_COOKIE):
        return _login_page(request, error="页面已过期，请重新输入", next_url=next_url, status=400)
    username = text_field(form, "username", 60)
    password = str(form.get("password", ""))[:200]
    code = text_field(form, "totp_code", 12) or None
    try:
        issued = await auth.token(request, username, password, code)
    except ApiError as exc:  # wrong name or password, or too many misses (429)
        page = _login_page(request, error=exc.message, next_url=next_url, status=exc.status)
        for name, value in (exc.headers or {}).items():
            page.headers[name] = value  # Retry-After
        return page
    principal = await auth.principal_from_token(auth.runtime_of(request), issued.access_token)
    if principal is None:  # disabled between the check and now
        return _login_page(request, error="用户名或密码错误", status=401)
    response = see_other(next_url or ROLE_HOMES[principal.role])
    await open_session(request, response, issued.access_token)
    response.delete_cookie(LOGIN_COOKIE, path="/console/login")
    return response


@router.post("/logout")
async def logout(request: Request, user: Annotated[ConsoleUser, Depends(SIGNED_IN)]) -> Response:
    await read_form(request, user)
    async with sessions(request)() as session, session.begin():
        audit(session, user.principal, "auth.logout", "user", user.principal.id, request)
    response = see_other("/console/login?reason=logout")
    await close_session(request, response)
    return response


@router.get("")
async def home(request: Request) -> RedirectResponse:
    """The console's front door: each role's own main page, or the sign-in form."""
    session = await current_session(request)
    return see_other(ROLE_HOMES[session.principal.role])
