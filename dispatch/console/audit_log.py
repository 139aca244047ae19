"""The audit log, read-only: who did what to which record, when and from where.

There is no way to change it here or anywhere in the product (a database trigger refuses
UPDATE and DELETE). Scope: the center's supervisor at the root of the network and the
administrators see every row; a center supervisor lower down sees rows about cases in their
scope and rows by staff of their jurisdiction's subtree; a department's supervisor, rows by
their department's staff there. Reading the log is itself logged.
"""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import ColumnElement, and_, cast, false, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from channels.web import sessions
from db.columns import CASE_ID_DIGITS, case_id_of
from db.models import AppUser, AuditLog, Case, Jurisdiction
from dispatch.console.web import ConsoleRoute, ConsoleUser, render, staff
from dispatch.staff.audit import audit
from dispatch.staff.auth import Principal
from dispatch.staff.permissions import AUDIT_READ
from dispatch.staff.scope import case_filter, is_root
from workflows.cases.workflow import EVENT_LABELS

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)

READERS = staff(AUDIT_READ)
PAGE = 100
ACTION_LABELS = {
    "auth.login": "登录",
    "auth.login_failed": "登录失败",
    "auth.logout": "退出登录",
    "report.create": "收到报告",
    "report.export": "导出季度报表",
    "stats.read": "查看统计",
    "audit.read": "查看审计日志",
    "case.list": "浏览案件列表",
    "case.read": "查看案件",
    "case.search": "搜索案件",
    "case.reveal": "查看完整号码",
    "case.assess": "评估",
    "case.visit": "登记回访",
    "case.conference": "个案会商",
    "case.correct": "更正案件研判",
    "referral.list": "浏览转介列表",
    "referral.read": "查看转介",
    "referral.claim": "认领转介",
    "referral.progress": "报告进展",
    "referral.complete": "办结转介",
    "referral.return": "退回转介",
    "referral.route": "指派转介",
    "sms.list": "浏览短信会话",
    "sms.read": "查看短信会话",
    "sms.reply": "回复短信",
    "call.list": "浏览来电",
    "call.read": "查看来电",
    "call.caller": "查看来电人信息",
    "call.report": "来电登记报告",
    "call.link": "来电关联案件",
    "callback.list": "浏览回电任务",
    "callback.read": "查看回电任务",
    "callback.attempt": "登记回电",
}


def action_label(action: str) -> str:
    if action in ACTION_LABELS:
        return ACTION_LABELS[action]
    kind, _, name = action.partition(".")
    if kind == "case" and name in EVENT_LABELS:
        return f"案件流程：{EVENT_LABELS[name]}"
    return action


def audit_filter(principal: Principal) -> ColumnElement[bool]:
    """Default deny: the rows this person may read."""
    if principal.role == "admin" or (principal.is_center and is_root(principal)):
        return true()
    staff_here = (
        select(AppUser.id)
        .join(Jurisdiction, Jurisdiction.code == AppUser.jurisdiction_code)
        .where(Jurisdiction.path.startswith(principal.scope_path or "\x00", autoescape=True))
    )
    if principal.is_center:
        cases = select(cast(Case.id, AuditLog.object_id.type)).where(case_filter(principal))
        return or_(
            AuditLog.actor_id.in_(staff_here),
            and_(AuditLog.object_type == "case", AuditLog.object_id.in_(cases)),
        )
    if not principal.department:
        return false()
    return AuditLog.actor_id.in_(staff_here.where(AppUser.department_code == principal.department))


async def audit_rows(
    session: AsyncSession,
    principal: Principal,
    *,
    actor: str = "",
    action: str = "",
    case_id: int | None = None,
    before: int | None = None,
) -> list[AuditLog]:
    stmt = select(AuditLog).where(audit_filter(principal)).order_by(AuditLog.id.desc()).limit(PAGE)
    if actor:
        stmt = stmt.where(AuditLog.actor.icontains(actor, autoescape=True))
    if action:
        stmt = stmt.where(AuditLog.action == action)
    if case_id:
        stmt = stmt.where(AuditLog.object_type == "case", AuditLog.object_id == str(case_id))
    if before:
        stmt = stmt.where(AuditLog.id < before)
    return list((await session.execute(stmt)).scalars())


@router.get("/audit", response_class=HTMLResponse)
async def audit_page(
    request: Request,
    user: Annotated[ConsoleUser, Depends(READERS)],
    actor: Annotated[str, Query(max_length=80)] = "",
    action: Annotated[str, Query(max_length=40)] = "",
    case: Annotated[str, Query(alias="case_id", max_length=CASE_ID_DIGITS)] = "",
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
):
    # The filter form sends its empty number box as "": that means any case, not an error.
    case_id = case_id_of(case)
    async with sessions(request)() as session, session.begin():
        rows = await audit_rows(
            session, user.principal, actor=actor, action=action, case_id=case_id, before=before
        )
        audit(session, user.principal, "audit.read", "audit", None, request, {"count": len(rows)})
    return render(
        request,
        user,
        "audit.html",
        {
            "rows": rows,
            "actor": actor,
            "action": action,
            "case_id": case_id,
            "actions": ACTION_LABELS,
            "label": action_label,
            "next_before": rows[-1].id if len(rows) == PAGE else None,
        },
    )
