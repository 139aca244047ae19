"""Case conferences (个案会商): the center calls several departments together on one case and
records who took part, what was discussed and what was decided.

Recorded by the center's caseworkers and supervisors; read on the case page by the center
and by the departments that took part (a department not at the table does not see them).
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import any_, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.console import CaseConference
from dispatch.staff.audit import add_with_event
from dispatch.staff.auth import Principal
from workflows.errors import Invalid
from workflows.reference import department_labels

MIN_DEPARTMENTS = 2


@dataclass(frozen=True)
class ConferenceIn:
    held_at: datetime
    departments: list[str]
    participants: str
    notes: str
    decisions: str

    def checked(self) -> "ConferenceIn":
        """The rules a conference record must meet; Invalid (422) with the reason."""
        known = department_labels()
        departments = list(dict.fromkeys(d for d in self.departments if d))
        if any(d not in known for d in departments):
            raise Invalid("unknown_department", "包含未知的部门")
        if len(departments) < MIN_DEPARTMENTS:
            raise Invalid("departments_required", "个案会商需要至少两个部门参加")
        if not self.notes:
            raise Invalid("notes_required", "请填写会商记录")
        return ConferenceIn(
            self.held_at, departments, self.participants, self.notes, self.decisions
        )


async def record_conference(
    session: AsyncSession, case_id: int, body: ConferenceIn, principal: Principal, now: datetime
) -> CaseConference:
    """In the caller's transaction, with its timeline event (the case row is locked by the
    caller through `load_case`)."""
    body = body.checked()
    row = CaseConference(
        case_id=case_id,
        held_at=body.held_at,
        departments=body.departments,
        participants=body.participants or None,
        notes=body.notes,
        decisions=body.decisions or None,
        created_by=principal.id,
        created_at=now,
    )
    names = "、".join(department_labels()[d] for d in body.departments)
    return await add_with_event(
        session, principal, row, "conference",
        id_as="conference_id", reason=f"个案会商（{names}）", created_at=now,
        departments=body.departments,
    )


async def conferences_for(
    session: AsyncSession, principal: Principal, case_id: int
) -> list[CaseConference]:
    stmt = (
        select(CaseConference)
        .where(CaseConference.case_id == case_id)
        .order_by(CaseConference.held_at.desc())
    )
    if not principal.is_center:
        if not principal.department:
            return []
        stmt = stmt.where(literal(principal.department) == any_(CaseConference.departments))
    return list((await session.execute(stmt)).scalars())
