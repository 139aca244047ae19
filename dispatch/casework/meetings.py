"""Case conferences called ahead (个案会商): proposed by the triggers, scheduled with the
departments invited (their liaisons are told in the console and by SMS, through the outbox),
then held: attendance and notes recorded, and each decision becomes a task with an owner
department and a due date that escalates like a referral.
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, any_, false, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.casework import CaseMeeting, Task
from db.models import Case, Referral
from dispatch.common.lookup import scalar_or_404
from dispatch.console.conferences import MIN_DEPARTMENTS, ConferenceIn, record_conference
from dispatch.referrals.routing import plan_routes_for
from dispatch.staff.audit import add_with_event
from dispatch.staff.auth import Principal
from dispatch.staff.notifications import notify, office_liaisons
from dispatch.staff.scope import case_filter, in_subtree
from dispatch.tasks.service import create_task
from workflows.casework.conference import triggers
from workflows.errors import Conflict, Invalid
from workflows.reference import allowed, department_labels
from workflows.referrals.workflow import ACTIVE


async def proposed_because(session: AsyncSession, case: Case) -> list[str]:
    """Why a conference should be called on this case now (empty: no trigger holds)."""
    live = await session.scalar(
        select(func.count(func.distinct(Referral.department_code))).where(
            Referral.case_id == case.id, Referral.status.in_(ACTIVE)
        )
    )
    returns = await _most_returns(session, case.id)
    return triggers(case.risk_level, live or 0, returns)


async def _most_returns(session: AsyncSession, case_id: int) -> int:
    rows = await session.execute(
        select(func.count())
        .where(Referral.case_id == case_id, Referral.status == "returned")
        .group_by(Referral.department_code)
    )
    return max((n for (n,) in rows), default=0)


def _checked_departments(departments: list[str]) -> list[str]:
    known = department_labels()
    chosen = list(dict.fromkeys(d for d in departments if d))
    if any(d not in known for d in chosen):
        raise Invalid(
            "unknown_department", "包含未知的部门，可选：" + allowed(known)
        )
    if len(chosen) < MIN_DEPARTMENTS:
        raise Invalid("departments_required", "个案会商需要邀请至少两个部门")
    return chosen


async def schedule(
    *,
    session: AsyncSession,
    case: Case,
    scheduled_at: datetime,
    departments: list[str],
    agenda: str,
    place: str | None,
    principal: Principal,
    now: datetime,
) -> CaseMeeting:
    """Call a conference on the locked case and invite the departments' liaisons."""
    if scheduled_at.tzinfo is None:
        raise Invalid("timezone_required", "会商时间需要带时区")
    if scheduled_at <= now:
        raise Invalid("in_the_past", "会商时间必须晚于现在")
    chosen = _checked_departments(departments)
    if not (agenda or "").strip():
        raise Invalid("agenda_required", "请填写会商议题")
    meeting = CaseMeeting(
        case_id=case.id,
        scheduled_at=scheduled_at,
        place=place or None,
        agenda=agenda.strip(),
        departments=chosen,
        status="scheduled",
        created_by=principal.id,
        created_at=now,
    )
    labels = department_labels()
    await add_with_event(
        session, principal, meeting, "conference_scheduled",
        id_as="meeting_id", reason=f"召开个案会商，邀请{'、'.join(labels[d] for d in chosen)}",
        created_at=now, departments=chosen, scheduled_at=scheduled_at.isoformat(),
    )
    local = scheduled_at.astimezone(_tz()).strftime("%m月%d日%H:%M")
    for dept in chosen:
        office = await plan_routes_for(session, case, dept, None)
        users = await office_liaisons(session, dept, office.jurisdiction_code or "")
        await notify(
            session,
            users,
            "conference_invite",
            f"案件#{case.id} 个案会商邀请：{local}，请登录工作台查看",
            case_id=case.id,
        )
    return meeting


def _tz():
    from zoneinfo import ZoneInfo

    from workflows import config

    return ZoneInfo(config.risk().timezone)


@dataclass(frozen=True)
class Decision:
    title: str
    department: str
    due: datetime | str


async def hold(
    *,
    session: AsyncSession,
    meeting: CaseMeeting,
    attended: list[str],
    participants: str,
    notes: str,
    decisions: list[Decision],
    principal: Principal,
    now: datetime,
) -> list[Task]:
    """Record the conference held: attendance, notes, and a task per decision."""
    if meeting.status != "scheduled":
        raise Conflict("meeting_held", "该会商已记录")
    present = list(dict.fromkeys(d for d in attended if d))
    strangers = [d for d in present if d not in meeting.departments]
    if strangers:
        raise Invalid("not_invited", "出席部门须在邀请之列")
    decision_text = "；".join(
        f"{d.title}（{department_labels().get(d.department, d.department)}）" for d in decisions
    )
    row = await record_conference(
        session,
        meeting.case_id,
        ConferenceIn(
            held_at=now,
            departments=present,
            participants=participants,
            notes=notes,
            decisions=decision_text,
        ),
        principal,
        now,
    )
    meeting.status, meeting.attended, meeting.conference_id = "held", present, row.id
    return [
        await create_task(
            session=session,
            case_id=meeting.case_id,
            source="conference_decision",
            source_id=f"{meeting.id}-{i}",
            department_code=d.department,
            due=d.due,
            title=d.title,
            detail=f"个案会商决定（{now.astimezone(_tz()):%Y-%m-%d}）",
            actor=principal.label,
            now=now,
        )
        for i, d in enumerate(decisions, 1)
    ]


def meeting_filter(principal: Principal) -> ColumnElement[bool]:
    """Center staff: meetings on cases they may see. Department staff: meetings their
    department is invited to, on cases in their subtree. Nobody else."""
    if principal.is_center:
        return (
            select(Case.id).where(Case.id == CaseMeeting.case_id, case_filter(principal)).exists()
        )
    if (
        principal.role in ("liaison", "supervisor")
        and principal.department
        and principal.scope_path
    ):
        return (
            select(Case.id)
            .where(
                Case.id == CaseMeeting.case_id,
                and_(
                    principal.department == any_(CaseMeeting.departments),
                    in_subtree(Case.jurisdiction_code, principal.scope_path),
                ),
            )
            .exists()
        )
    return false()


async def meetings(
    session: AsyncSession,
    principal: Principal,
    *,
    case_id: int | None = None,
    upcoming: bool = False,
    now: datetime | None = None,
) -> list[CaseMeeting]:
    stmt = select(CaseMeeting).where(meeting_filter(principal))
    if case_id is not None:
        stmt = stmt.where(CaseMeeting.case_id == case_id)
    if upcoming:
        stmt = stmt.where(CaseMeeting.status == "scheduled")
    return list(
        (await session.execute(stmt.order_by(CaseMeeting.scheduled_at).limit(100))).scalars()
    )


async def load_meeting(session: AsyncSession, principal: Principal, meeting_id: int) -> CaseMeeting:
    stmt = select(CaseMeeting).where(CaseMeeting.id == meeting_id, meeting_filter(principal))
    return await scalar_or_404(
        session, stmt.with_for_update(), "meeting_not_found", "未找到该会商"
    )
