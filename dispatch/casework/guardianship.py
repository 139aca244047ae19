"""Guardianship and placement records, and the steps against a failing guardian, on a case.

Each record is on the timeline; the rules (kinds, order of the steps, who may take each) are
in workflows.casework.guardianship.
"""

from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.casework import GuardianIntervention, Placement
from db.models import Case
from dispatch.staff.audit import add_with_event
from dispatch.staff.auth import Principal
from workflows.casework.guardianship import check_placement, check_step, placement_kinds
from workflows.errors import Invalid, WorkflowRefused
from workflows.reference import allowed, department_labels


def _refused(exc: WorkflowRefused) -> Invalid:
    return Invalid(exc.code, exc.message)


async def add_placement(
    *,
    session: AsyncSession,
    case: Case,
    kind: str,
    body: str,
    department: str | None,
    start_on: date,
    end_on: date | None,
    note: str | None,
    principal: Principal,
    now: datetime,
) -> Placement:
    try:
        check_placement(kind, start_on, end_on)
    except WorkflowRefused as exc:
        raise _refused(exc) from exc
    if department and department not in department_labels():
        raise Invalid(
            "unknown_department", "未知的部门，可选：" + allowed(department_labels())
        )
    if not (body or "").strip():
        raise Invalid("body_required", "请填写负责的机构或监护人")
    row = Placement(
        case_id=case.id,
        kind=kind,
        body=body.strip(),
        department_code=department,
        start_on=start_on,
        end_on=end_on,
        note=(note or "").strip() or None,
        created_by=principal.id,
        created_at=now,
    )
    return await add_with_event(
        session, principal, row, "placement",
        id_as="placement_id", reason=f"{placement_kinds()[kind]}：{row.body}", created_at=now,
        kind=kind,
    )


async def add_intervention(
    *,
    session: AsyncSession,
    case: Case,
    step: str,
    department: str,
    acted_on: date,
    document: str | None,
    note: str | None,
    skip_reason: str | None,
    principal: Principal,
    now: datetime,
) -> GuardianIntervention:
    taken = list(
        (
            await session.execute(
                select(GuardianIntervention.step).where(GuardianIntervention.case_id == case.id)
            )
        ).scalars()
    )
    try:
        found = check_step(step, department, taken, skip_reason)
    except WorkflowRefused as exc:
        raise _refused(exc) from exc
    row = GuardianIntervention(
        case_id=case.id,
        step=step,
        department_code=department,
        acted_on=acted_on,
        document=(document or "").strip() or None,
        note=(note or "").strip() or None,
        skip_reason=(skip_reason or "").strip() or None,
        created_by=principal.id,
        created_at=now,
    )
    dept = department_labels()[department]
    return await add_with_event(
        session, principal, row, "guardian_intervention",
        id_as="intervention_id", reason=f"监护干预：{found.label}（{dept}）", created_at=now,
        step=step,
    )


async def records(
    session: AsyncSession, case_id: int
) -> tuple[list[Placement], list[GuardianIntervention]]:
    placements = list(
        (
            await session.execute(
                select(Placement).where(Placement.case_id == case_id).order_by(Placement.start_on)
            )
        ).scalars()
    )
    steps = list(
        (
            await session.execute(
                select(GuardianIntervention)
                .where(GuardianIntervention.case_id == case_id)
                .order_by(GuardianIntervention.acted_on, GuardianIntervention.id)
            )
        ).scalars()
    )
    return placements, steps
