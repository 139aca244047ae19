"""What every console page shares: templates, the signed-in dependency, HTML error pages,
form handling and the security headers.

Console routes use `ConsoleRoute`, which turns the JSON API's errors into friendly Chinese
pages (a missing session into the sign-in form) and adds headers that keep pages out of
caches and frames and allow scripts from our own origin only: even markup that slipped
past escaping could not run.
"""

import pathlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

import jinja2
from fastapi import Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData

from channels.errors import ApiError
from channels.web import in_transaction
from dispatch.common.endpoints import RowId as RowId  # the pages' path ids, as the API's
from dispatch.console import timefmt
from dispatch.console.masking import mask_numbers
from dispatch.console.sessions import (
    ConsoleSession,
    LoginRequired,
    check_csrf,
    current_session,
    flash,
)
from dispatch.staff.audit import audit
from dispatch.staff.audit import shown_cases as shown
from dispatch.staff.auth import Principal
from dispatch.staff.permissions import Permission
from workflows.cases.workflow import EVENT_LABELS, STATE_LABELS
from workflows.errors import DomainError
from workflows.partners.forwards import source_names
from workflows.phones import mask_phone
from workflows.reference import (
    category_labels,
    department_labels,
    jurisdiction_labels,
    jurisdictions,
)
from workflows.referrals.deadlines import LEVEL_LABELS
from workflows.referrals.workflow import STATUS_LABELS
from workflows.retention import TIMELINE_LABELS as RETENTION_TIMELINE
from workflows.supervision import TIMELINE_LABELS as SUPERVISION_TIMELINE

TEMPLATES = pathlib.Path(__file__).resolve().parent.parent / "templates" / "console"
# A day from a page's date box (YYYY-MM-DD, `timefmt.parse_day`), "" for none.
DayText = Annotated[str, Query(max_length=10)]

CHANNEL_LABELS = {
    "webform": "强制报告表单",
    "sms": "短信",
    "voice": "电话",
    "110": "110转来",
    "12345": "12345转来",
    "12355": "12355转来",
}
# Timeline entries besides the workflow's own events (EVENT_LABELS).
TIMELINE_LABELS = {
    "intake": "收到报告",
    "assessment": "风险评估",
    "visit": "回访",
    "visit_overdue": "回访逾期",
    "conference": "个案会商",
    "referral_created": "转介",
    "referral_unrouted": "无可接收部门",
    "referral_routed": "人工指派",
    "referral_claimed": "认领",
    "referral_progress": "报告进展",
    "referral_completed": "办结",
    "referral_returned": "退回",
    "referral_cancelled": "转介撤销",
    "referral_withdrawn": "转介撤回",
    "corrected": "更正",
    "claim_released": "释放回队列",
    "deadline_warning": "即将超时",
    "escalated": "督办",
    "flagged": "挂牌督办",
    "sms_received": "收到短信",
    "sms_reply": "短信回复",
    "sms_opted_out": "退订短信",
    "emergency_raised": "报告紧急情况",
    "call_linked": "来电关联",
    "callback_requested": "需要回电",
    "callback_attempt": "回电",
    "report_added": "补充报告",
    "report_held": "重复报告（未再转介，待核实）",
    "satisfaction": "回访评价",
    **SUPERVISION_TIMELINE,
    **RETENTION_TIMELINE,
    "task_created": "新任务",
    "task_done": "任务完成",
    "task_cancelled": "任务撤销",
    "task_warning": "任务即将到期",
    "task_escalated": "任务督办",
    "task_flagged": "任务挂牌督办",
    "owner_assigned": "指派责任社工",
    "owner_changed": "更换责任社工",
    "pairing_assigned": "指派结对帮扶人",
    "pairing_changed": "更换结对帮扶人",
    "plan_proposed": "帮扶计划",
    "plan_adopted": "帮扶计划实施",
    "call_wrapup": "来电小结",
    "placement": "安置",
    "guardian_intervention": "监护干预",
}
CALL_STATUS_LABELS = {
    "queued": "排队中",
    "initiated": "呼叫中",
    "ringing": "振铃",
    "in-progress": "通话中",
    "completed": "已结束",
    "busy": "忙线",
    "no-answer": "未接听",
    "failed": "接通失败",
    "canceled": "已取消",
}
SMS_STATUS_LABELS = {
    "received": "已收到",
    "pending": "待发送",
    "retrying": "重试中",
    "submitting": "发送中",
    "accepted": "已提交",
    "scheduled": "已提交",
    "queued": "已提交",
    "sending": "发送中",
    "sent": "已发出",
    "delivered": "已送达",
    "read": "已读",
    "undelivered": "未送达",
    "failed": "发送失败",
    "canceled": "已取消",
    "suppressed": "对方已退订，未发送",
}
ROLE_LABELS = {
    "operator": "接线员",
    "caseworker": "社工",
    "supervisor": "督导",
    "liaison": "部门联络员",
    "admin": "系统管理员",
    "inspector": "督查专员",
    "child_director": "儿童主任",
    "station_worker": "未保站工作人员",
}
ROLE_HOMES = {
    "operator": "/console/operator",
    "caseworker": "/console/cases",
    "supervisor": "/console/board",
    "liaison": "/console/liaison",
    "admin": "/console/admin",
    "inspector": "/console/supervision",
    "child_director": "/console/casework/mine",
    "station_worker": "/console/casework/mine",
}


def _label(table: Any, code: Any) -> str:
    if code is None:
        return ""
    return table.get(code, str(code))


def jurisdiction_choices() -> list[tuple[str, str, int]]:
    """The places a form offers: code, name and level (the page indents by level)."""
    return [(code, name, level) for code, name, level, _ in jurisdictions()]


def channel_label(code: str) -> str:
    """A channel's name; a partner source configured by the deployment reads "<name>转来"."""
    if code in CHANNEL_LABELS:
        return CHANNEL_LABELS[code]
    name = source_names().get(code)
    return f"{name}转来" if name else _label(CHANNEL_LABELS, code)


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,  # every template, whatever its name: report text is shown as text
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(
        dt=timefmt.local,
        time_left=timefmt.time_left,
        urgency=timefmt.urgency,
        masked=mask_numbers,
        mask_phone=mask_phone,
        state=lambda c: _label(STATE_LABELS, c),
        event=lambda c: (
            _label(EVENT_LABELS, c) if c in EVENT_LABELS else _label(TIMELINE_LABELS, c)
        ),
        status=lambda c: _label(STATUS_LABELS, c),
        level=lambda c: _label(LEVEL_LABELS, c) if c else "未评估",
        category=lambda c: _label(category_labels(), c),
        department=lambda c: _label(department_labels(), c),
        place=lambda c: _label(jurisdiction_labels(), c) if c else "未定辖区",
        channel=channel_label,
        role=lambda c: _label(ROLE_LABELS, c),
        call_status=lambda c: _label(CALL_STATUS_LABELS, c),
        sms_status=lambda c: _label(SMS_STATUS_LABELS, c),
    )
    return env


templates = Jinja2Templates(env=_env())


@dataclass
class ConsoleUser:
    """The signed-in person on a console page: who, and their session's CSRF token."""

    session: ConsoleSession

    @property
    def principal(self) -> Principal:
        return self.session.principal

    @property
    def csrf(self) -> str:
        return self.session.csrf


def staff(permission: Permission, *, touch: bool = True):
    """Dependency admitting signed-in people the permission admits (default deny; the same
    named permissions as the JSON API's, `dispatch.staff.permissions`)."""

    async def dependency(request: Request) -> ConsoleUser:
        session = await current_session(request, touch=touch)
        if not permission.allows(session.principal):
            raise ApiError(403, "forbidden", "您的账号没有权限查看此页面")
        return ConsoleUser(session)

    return dependency


def audit_list(
    session: AsyncSession, principal: Principal, request: Request, kind: str, case_ids: list[int]
) -> None:
    """A list page's read, audited as `<kind>.list` with the cases it showed (ids only)."""
    audit(session, principal, f"{kind}.list", kind, None, request, shown(case_ids))


def nav_for(principal: Principal) -> list[tuple[str, str]]:
    """The pages a person's role and place give them, for the top bar."""
    desk = [
        ("/console/operator", "来电与报告"),
        ("/console/casework/calls", "来电小结"),
        ("/console/sms", "短信"),
        ("/console/search", "案件搜索"),
    ]
    oversight = [
        ("/console/board", "督办看板"),
        ("/console/stats", "统计与报表"),
        ("/console/supervision", "督导考核"),
    ]
    audit_log = [("/console/audit", "审计日志")]
    tasks = [("/console/tasks", "任务")]
    if principal.role == "liaison":
        orders = ("/console/supervision/orders", "督查督办")
        return [("/console/liaison", "转介队列"), *tasks, orders]
    if principal.role == "inspector":
        return [("/console/supervision", "督导考核")]
    mine = [("/console/casework/mine", "我的案件")]
    if principal.role in ("child_director", "station_worker"):
        return mine
    partners = [("/console/partners", "对接平台")]
    if principal.role == "admin":
        accounts = ("/console/admin/accounts", "账号管理")
        return [("/console/admin", "系统状态"), accounts, *partners, *audit_log]
    if not principal.is_center:  # a department's supervisor
        return oversight + tasks + audit_log
    if principal.role == "operator":
        return desk
    casework = [("/console/cases", "个案工作"), *mine, *tasks]
    if principal.role == "caseworker":
        return casework + desk
    return oversight + casework + desk + partners + audit_log


def render(
    request: Request,
    user: ConsoleUser | None,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status: int = 200,
) -> HTMLResponse:
    data = {
        "user": user,
        "p": user.principal if user else None,
        "home": _home(user),
        "nav": nav_for(user.principal) if user else [],
        "path": request.url.path,
    }
    return templates.TemplateResponse(
        request, template, {**data, **(context or {})}, status_code=status
    )


def _home(user: ConsoleUser | None) -> str:
    return ROLE_HOMES.get(user.principal.role, "/console") if user else "/console/login"


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


async def as_user(
    request: Request, user: ConsoleUser, operation: Callable[..., Awaitable[Any]], **arguments: Any
) -> Any:
    """One service operation run as the signed-in person, in its own transaction: what the
    API would do for them, audited the same way."""
    return await in_transaction(request, operation, principal=user.principal, **arguments)


async def read_form(request: Request, user: ConsoleUser) -> FormData:
    """A form posted from a console page, with its CSRF token checked."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        raise ApiError(415)
    form = await request.form(max_files=0, max_fields=200)
    check_csrf(user.session, form)
    return form


def text_field(form: FormData, name: str, limit: int = 5000) -> str:
    return str(form.get(name, "")).strip()[:limit]


def texts(form: FormData, **limits: int) -> dict[str, str]:
    """The named fields as text, each cut to its limit: a model's body from its form."""
    return {name: text_field(form, name, limit) for name, limit in limits.items()}


def optional_texts(form: FormData, **limits: int) -> dict[str, str | None]:
    """As `texts`, a field left blank as None: the model's "not given", not an empty text."""
    return {name: value or None for name, value in texts(form, **limits).items()}


def choices(form: FormData, name: str, most: int) -> list[str]:
    """The ticked boxes of one name, at most `most` of them."""
    return [str(value) for value in form.getlist(name)][:most]


def yes(form: FormData, name: str) -> bool:
    return form.get(name) == "yes"


def child_fields(form: FormData, *keys: str) -> dict[str, str]:
    """The child's fields (`child_<key>` on the form) that were filled in: a blank one is not
    an answer, so the model keeps what it had."""
    values = {key: text_field(form, f"child_{key}", 200) for key in keys}
    return {key: value for key, value in values.items() if value}


async def act(
    request: Request,
    user: ConsoleUser,
    back: str,
    action: Callable[[], Awaitable[Any]],
    done: str,
) -> RedirectResponse:
    """Run one action (an API service call) and go back to the page with its outcome: the
    refusal's Chinese message (not allowed now, a reason missing) or `done`."""
    try:
        await action()
    except DomainError as exc:
        return await flash_and_go(request, user, back, exc.message, "error")
    except ValidationError as exc:
        return await flash_and_go(request, user, back, _first_problem(exc), "error")
    return await flash_and_go(request, user, back, done)


async def submit(
    request: Request,
    user: ConsoleUser,
    back: str,
    operation: Callable[..., Awaitable[Any]],
    done: str,
    fields: Callable[[FormData], dict[str, Any]] = lambda form: {},
    **ids: Any,
) -> RedirectResponse:
    """A form's action: read the form (CSRF checked), take the operation's arguments from
    it (`fields`, checked as the API's body would be), run the service operation as the
    signed-in person, and go back to `back` with its outcome."""
    form = await read_form(request, user)

    async def run() -> None:
        await as_user(request, user, operation, **fields(form), **ids)

    return await act(request, user, back, run, done)


def case_url(case_id: int) -> str:
    """The case page: where every form on it comes back to."""
    return f"/console/cases/{case_id}"


def case_form(
    who: Callable[..., Awaitable[ConsoleUser]],
    operation: Callable[..., Awaitable[Any]],
    done: str,
    body: Callable[[FormData], Any] | None = None,
    **fixed: Any,
) -> Callable[..., Awaitable[RedirectResponse]]:
    """The endpoint of one form of the case page, for `router.post(path)`: `submit` of the
    service operation on the case in the path, its `body` read from the form (none without
    one) and the `fixed` arguments, back to the case page."""

    def fields(form: FormData) -> dict[str, Any]:
        return {"body": body(form)} if body else {}

    async def post(
        request: Request, case_id: int, user: Annotated[ConsoleUser, Depends(who)]
    ) -> RedirectResponse:
        return await submit(
            request, user, case_url(case_id), operation, done, fields, case_id=case_id, **fixed
        )

    return post


async def flash_and_go(
    request: Request, user: ConsoleUser, url: str, text: str, kind: str = "ok"
) -> RedirectResponse:
    await flash(request, user.session, kind, text)
    return see_other(url)


# What a person reads when a console form misses or mistypes a field (pydantic's field names).
FIELD_MESSAGES = {
    "event": "请选择流程操作",
    "reason": "请填写原因",
    "risk_level": "请选择风险等级",
    "needs": "请从列出的需求中选择",
    "findings": "请填写回访情况",
    "risk_after": "请选择回访后的风险等级",
    "department": "请选择部门",
    "note": "请填写进展说明",
    "outcome": "请填写办理结果",
    "text": "请填写短信内容（不能为空或过长）",
    "categories": "请从列出的困境类型中选择",
    "child": "儿童信息填写有误（年龄应为0到17之间的整数）",
    "age": "儿童年龄应为0到17之间的整数",
    "gender": "请选择儿童性别",
}


def _first_problem(exc: ValidationError) -> str:
    for err in exc.errors():
        field = str(err["loc"][0]) if err.get("loc") else ""
        if field in FIELD_MESSAGES:
            return FIELD_MESSAGES[field]
    return "提交的内容有误，请检查后重试"


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        "error.html",
        {
            "user": None,
            "p": None,
            "home": "/console",
            "nav": [],
            "path": request.url.path,
            "status": status,
            "message": message,
        },
        status_code=status,
    )


def _login_redirect(request: Request, reason: str) -> Response:
    if request.headers.get("x-console-poll"):
        # A background refresh: the page script reloads, and the reload signs in.
        return Response(status_code=401, headers={"X-Console-Login": "1"})
    target = request.url.path
    if request.method == "GET" and request.url.query:
        target += "?" + request.url.query
    return see_other(f"/console/login?reason={reason}&next={quote(target, safe='')}")


class ConsoleRoute(APIRoute):
    """Console routes answer in HTML: errors become pages, a missing session the sign-in."""

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                response = await handler(request)
            except LoginRequired as exc:
                response = _login_redirect(request, exc.reason)
            except DomainError as exc:
                response = error_page(request, exc.status, exc.message)
                for name, value in (getattr(exc, "headers", None) or {}).items():
                    response.headers[name] = value
            except RequestValidationError:
                response = error_page(request, 422, "链接或提交的内容有误，请返回后重试")
            return response  # security headers: dispatch.headers, on every answer

        return route
