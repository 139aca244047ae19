"""Referral deadlines and escalation (督办 / 挂牌督办), driven by `next_check_at`.

Each open referral carries the moment the sweep must look at it again; the sweep reads
only rows whose moment has come, through a partial index, so a million quiet referrals
cost nothing. Phases: a queued referral must be claimed by its claim deadline; a claimed
one must see a first action (start or a progress note) by its action deadline; one in
progress under a help plan must be completed by the plan's due date. Within a
phase the stages are 1 warned, 2 escalated at the deadline, 3 flagged at twice the window.
A claim left idle past the claim window goes back to the queue.
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Case, Referral, Visit
from dispatch.common.sweeps import due_with_case
from dispatch.staff.audit import add_timeline_event
from dispatch.staff.notifications import (
    notify,
    notify_case_supervisors,
    office_liaisons,
    supervisors,
)
from workflows.reference import department_labels
from workflows.referrals.deadlines import (
    ESCALATED,
    FLAGGED,
    WARNED,
    deadline_points,
    levels,
    parse_window,
    policy,
    stage_at,
)

# Who the timeline says moved a share on when its deadline passed.
ACTOR = "system:deadlines"
STAGE_EVENTS = {WARNED: "deadline_warning", ESCALATED: "escalated", FLAGGED: "flagged"}
STAGE_LABELS = {WARNED: "即将超时", ESCALATED: "已超时，督办", FLAGGED: "严重超时，挂牌督办"}


def effective_risk(case: Case) -> str:
    """The assessed level, or a provisional one from intake until the case is assessed."""
    known = levels()
    if case.risk_level in known:
        return case.risk_level
    wanted = "red" if case.emergency else "orange" if case.mandatory else "yellow"
    if wanted in known:
        return wanted
    return known[0] if case.emergency or case.mandatory else known[len(known) // 2]


@dataclass(frozen=True)
class Phase:
    name: str  # "claim", "action" or "deliver" (a help plan's due date)
    warn_at: datetime
    due_at: datetime
    flag_at: datetime


def current_phase(referral: Referral, risk: str) -> Phase | None:
    start = referral.created_at
    rules = policy(risk)
    if referral.status == "queued":
        points = deadline_points(start, rules.claim)
        return Phase("claim", points.warn_at, points.due_at, points.flag_at)
    if referral.status == "claimed":
        points = deadline_points(start, rules.action)
        return Phase("action", points.warn_at, points.due_at, points.flag_at)
    if referral.status == "in_progress" and referral.plan_window and referral.plan_started_at:
        points = deadline_points(referral.plan_started_at, parse_window(referral.plan_window))
        return Phase("deliver", points.warn_at, points.due_at, points.flag_at)
    return None


PHASE_LABELS = {"claim": "认领", "action": "首次处置", "deliver": "按帮扶计划办结"}


def set_plan_due(referral: Referral, window: str, now: datetime, risk: str) -> None:
    """A help plan gives the referral a time to deliver from now; a new due date starts its
    phase afresh (a re-plan may give more time or less)."""
    referral.plan_window, referral.plan_started_at = window, now
    referral.plan_due_at = deadline_points(now, parse_window(window)).due_at
    if referral.status == "in_progress":
        referral.escalation = 0
    schedule(referral, risk)



def idle_release_at(referral: Referral, risk: str) -> datetime | None:
    """A claim with no activity for a claim window goes back to the queue."""
    if referral.status != "claimed":
        return None
    since = referral.last_activity_at or referral.claimed_at
    return deadline_points(since, policy(risk).claim).due_at


def schedule(referral: Referral, risk: str) -> None:
    """Set the deadlines shown to people and the next moment the sweep must look."""
    rules = policy(risk)
    referral.claim_due_at = deadline_points(referral.created_at, rules.claim).due_at
    referral.action_due_at = deadline_points(referral.created_at, rules.action).due_at
    phase = current_phase(referral, risk)
    if phase is None:
        referral.next_check_at = None
        return
    points = [phase.warn_at, phase.due_at, phase.flag_at][referral.escalation :]
    release = idle_release_at(referral, risk)
    candidates = points + ([release] if release else [])
    referral.next_check_at = min(candidates) if candidates else None


def enter_phase(referral: Referral, risk: str) -> None:
    """Called on every status change: a new phase starts with a clean escalation stage."""
    referral.escalation = 0
    schedule(referral, risk)


async def _escalate(
    session: AsyncSession, referral: Referral, case: Case, phase: Phase, stage: int, now: datetime
) -> None:
    dept = department_labels().get(referral.department_code, referral.department_code)
    what = PHASE_LABELS[phase.name]
    text = f"案件#{case.id} 转介（{dept}）{what}{STAGE_LABELS[stage]}"
    add_timeline_event(
        session, ACTOR, case.id, STAGE_EVENTS[stage],
        reason=text,
        data={
            "referral_id": referral.id,
            "department": referral.department_code,
            "phase": phase.name,
            "due_at": phase.due_at.isoformat(),
        },
        created_at=now,
    )
    if stage == WARNED:
        if referral.claimed_by:
            users = [referral.claimed_by]
        else:
            users = await office_liaisons(
                session, referral.department_code, referral.jurisdiction_code or ""
            )
    else:
        users = await supervisors(session, referral.department_code, case.jurisdiction_code)
    await notify(
        session, users, STAGE_EVENTS[stage], text, case_id=case.id, referral_id=referral.id
    )


async def _release_idle_claim(
    session: AsyncSession, referral: Referral, case: Case, now: datetime
) -> None:
    add_timeline_event(
        session, ACTOR, case.id, "claim_released",
        reason="认领后长时间无进展，已退回待认领队列",
        data={"referral_id": referral.id, "liaison_id": referral.claimed_by},
        created_at=now,
    )
    referral.status = "queued"
    referral.claimed_by = None
    referral.claimed_at = None
    referral.updated_at = now
    users = await office_liaisons(
        session, referral.department_code, referral.jurisdiction_code or ""
    )
    await notify(
        session,
        users,
        "claim_released",
        f"案件#{case.id} 的转介已退回队列，请重新认领",
        case_id=case.id,
        referral_id=referral.id,
    )


async def sweep_referrals(session: AsyncSession, now: datetime, limit: int = 500) -> int:
    """Act on every referral whose next check has come; returns how many were looked at."""
    rows = await due_with_case(session, Referral, now, limit)
    for referral, case in rows:
        risk = effective_risk(case)
        release = idle_release_at(referral, risk)
        if release and now >= release:
            await _release_idle_claim(session, referral, case, now)
        phase = current_phase(referral, risk)
        if phase is not None:
            stage = stage_at(phase, now)
            if stage > referral.escalation:
                await _escalate(session, referral, case, phase, stage, now)
                referral.escalation = stage
        schedule(referral, risk)
    return len(rows)


async def sweep_visits(session: AsyncSession, now: datetime, limit: int = 500) -> int:
    """Planned follow-up visits past due: escalate each once to the supervisors."""
    rows = (
        await session.execute(
            select(Visit, Case)
            .join(Case, Case.id == Visit.case_id)
            .where(Visit.visited_at.is_(None), Visit.escalated_at.is_(None), Visit.due_at <= now)
            .order_by(Visit.due_at)
            .limit(limit)
            .with_for_update(of=Visit, skip_locked=True)
        )
    ).all()
    for visit, case in rows:
        visit.escalated_at = now
        if case.state != "following_up":
            continue
        text = f"案件#{case.id} 回访已逾期，请尽快安排"
        add_timeline_event(
            session, ACTOR, case.id, "visit_overdue",
            reason=text, data={"visit_id": visit.id, "due_at": visit.due_at.isoformat()},
            created_at=now,
        )
        await notify_case_supervisors(session, case, "visit_overdue", text)
    return len(rows)
