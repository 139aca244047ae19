"""Who is responsible for a case: its caseworker (责任社工) and its pairing person (结对帮扶人).

The owner is one of the center's caseworkers or supervisors whose area covers the case; the
pairing person may also be a village's 儿童主任 or a township 未保站's worker, who from then
on sees the case (and only the cases assigned to them in their area). Changing who holds
either is refused without a reason, and every change is on the timeline. "My cases" lists
what a person holds, the next visit first.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import func, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from db.casework import CaseAssignment
from db.models import AppUser, Case, Jurisdiction, Visit
from dispatch.staff.audit import add_case_event
from dispatch.staff.auth import AREA_ROLES, CENTER_DEPARTMENT, Principal
from dispatch.staff.notifications import notify, supervisors
from dispatch.staff.scope import case_filter
from workflows import config
from workflows.errors import Conflict, Invalid
from workflows.referrals.deadlines import add_window, parse_window

Kind = Literal["owner", "pairing"]
OWNER_ROLES = ("caseworker", "supervisor")
PAIRING_ROLES = OWNER_ROLES + AREA_ROLES
KIND_LABELS = {"owner": "责任社工", "pairing": "结对帮扶人"}
TERMINAL = ("closed", "merged", "invalid")


async def _covers(session: AsyncSession, user: AppUser, case: Case) -> bool:
    """The user's jurisdiction is the case's or above it (the city covers a case with none)."""
    if not user.jurisdiction_code:
        return False
    mine = await session.scalar(
        select(Jurisdiction.path).where(Jurisdiction.code == user.jurisdiction_code)
    )
    if not mine:
        return False
    if not case.jurisdiction_code:
        return mine.count("/") == 1
    theirs = await session.scalar(
        select(Jurisdiction.path).where(Jurisdiction.code == case.jurisdiction_code)
    )
    return bool(theirs) and theirs.startswith(mine)


async def _eligible(session: AsyncSession, username: str, kind: Kind, case: Case) -> AppUser:
    user = await session.scalar(select(AppUser).where(AppUser.username == username))
    if user is None or not user.active:
        raise Invalid("unknown_user", "未找到该用户，或该账号已停用")
    allowed = OWNER_ROLES if kind == "owner" else PAIRING_ROLES
    center = user.department_code in (None, CENTER_DEPARTMENT)
    if user.role not in allowed or (user.role in OWNER_ROLES and not center):
        who = "中心的社工或督导" if kind == "owner" else "中心社工、督导、儿童主任或未保站工作人员"
        raise Invalid("not_eligible", f"{KIND_LABELS[kind]}须为{who}")
    if not await _covers(session, user, case):
        raise Invalid("out_of_area", f"该用户的辖区不包含此案件，不能担任{KIND_LABELS[kind]}")
    return user


async def assign(
    *,
    session: AsyncSession,
    case: Case,
    kind: Kind,
    username: str,
    reason: str | None,
    principal: Principal,
    now: datetime,
) -> AppUser:
    """Make `username` the case's owner (or pairing person), on the locked case row.

    Refused: a closed case, the same person again (nothing would change), a change of holder
    without a reason. The new holder is told; the one replaced too."""
    if case.state in TERMINAL:
        raise Conflict("case_closed", "案件已结案、并案或不予受理，不能指派")
    user = await _eligible(session, username, kind, case)
    row = await session.get(CaseAssignment, case.id, with_for_update=True)
    column = "owner_id" if kind == "owner" else "pairing_id"
    before = getattr(row, column) if row else None
    if before == user.id:
        raise Conflict("no_change", f"该案件的{KIND_LABELS[kind]}已是此人")
    reason = (reason or "").strip() or None
    if before is not None and not reason:
        raise Invalid("reason_required", f"更换{KIND_LABELS[kind]}需要填写原因")
    await session.execute(
        insert(CaseAssignment)
        .values(case_id=case.id, **{column: user.id}, updated_at=now)
        .on_conflict_do_update(
            index_elements=["case_id"], set_={column: user.id, "updated_at": now}
        )
    )
    previous = await session.get(AppUser, before) if before else None
    verb = "更换" if before else "指派"
    add_case_event(
        session,
        principal,
        case.id,
        f"{kind}_{'changed' if before else 'assigned'}",
        reason=reason or f"{verb}{KIND_LABELS[kind]}",
        data={
            "kind": kind,
            "user": user.username,
            "previous": previous.username if previous else None,
        },
        created_at=now,
    )
    await notify(
        session,
        [user.id],
        f"case_{kind}",
        f"案件#{case.id} 已指派给您（{KIND_LABELS[kind]}）",
        case_id=case.id,
    )
    if previous is not None:
        await notify(
            session,
            [previous.id],
            f"case_{kind}_released",
            f"案件#{case.id} 的{KIND_LABELS[kind]}已改由他人担任",
            case_id=case.id,
        )
    return user


@dataclass(frozen=True)
class Holders:
    owner: str | None
    pairing: str | None


async def holders_of(session: AsyncSession, case_ids: list[int]) -> dict[int, Holders]:
    """Usernames of each case's owner and pairing person (cases with neither are absent)."""
    if not case_ids:
        return {}
    owner = AppUser.__table__.alias("owner")
    pairing = AppUser.__table__.alias("pairing")
    rows = await session.execute(
        select(CaseAssignment.case_id, owner.c.username, pairing.c.username)
        .outerjoin(owner, owner.c.id == CaseAssignment.owner_id)
        .outerjoin(pairing, pairing.c.id == CaseAssignment.pairing_id)
        .where(CaseAssignment.case_id.in_(case_ids))
    )
    return {cid: Holders(o, p) for cid, o, p in rows}


@dataclass(frozen=True)
class MyCase:
    case: Case
    kind: Kind
    next_visit_due: datetime | None


async def my_cases(
    *, session: AsyncSession, principal: Principal, limit: int = 50, include_closed: bool = False
) -> list[MyCase]:
    """The cases the person holds (within what they may see), the next visit due first."""
    next_visit = (
        select(func.min(Visit.due_at))
        .where(Visit.case_id == Case.id, Visit.visited_at.is_(None))
        .correlate(Case)
        .scalar_subquery()
    )
    stmt = (
        select(Case, CaseAssignment.owner_id, next_visit.label("next_visit"))
        .join(CaseAssignment, CaseAssignment.case_id == Case.id)
        .where(
            or_(CaseAssignment.owner_id == principal.id, CaseAssignment.pairing_id == principal.id),
            case_filter(principal),
        )
        .order_by(next_visit.asc().nulls_last(), Case.id.desc())
        .limit(limit)
    )
    if not include_closed:
        stmt = stmt.where(Case.state.not_in(TERMINAL))
    rows = await session.execute(stmt)
    return [
        MyCase(case, "owner" if owner_id == principal.id else "pairing", due)
        for case, owner_id, due in rows
    ]


def reminder_lead() -> str:
    return config.casework().visit_reminder_before


async def remind_visits(session: AsyncSession, now: datetime, limit: int = 500) -> int:
    """Tell each planned visit's holders once, `visit_reminder_before` ahead of its date
    (a case nobody holds: its supervisors). Returns how many visits were reminded."""
    horizon = add_window(now, parse_window(reminder_lead()))
    rows = (
        await session.execute(
            select(Visit, Case, CaseAssignment)
            .join(Case, Case.id == Visit.case_id)
            .outerjoin(CaseAssignment, CaseAssignment.case_id == Case.id)
            .where(
                Visit.visited_at.is_(None),
                Visit.escalated_at.is_(None),
                Visit.reminded_at.is_(None),
                Visit.due_at <= horizon,
                Visit.due_at > now,
                Case.state == "following_up",
            )
            .order_by(Visit.due_at)
            .limit(limit)
            .with_for_update(of=Visit, skip_locked=True)
        )
    ).all()
    for visit, case, held in rows:
        visit.reminded_at = now
        users = [u for u in (held.owner_id, held.pairing_id) if u] if held else []
        users = users or await supervisors(session, None, case.jurisdiction_code)
        await notify(
            session,
            users,
            "visit_reminder",
            f"案件#{case.id} 的回访即将到期，请按时回访",
            case_id=case.id,
        )
    return len(rows)
