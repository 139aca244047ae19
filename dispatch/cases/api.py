"""Staff API for cases: list and read, scoped and audited (the operations:
`dispatch.cases.service`; workflow events live beside it)."""

from typing import Annotated

from fastapi import APIRouter, Query

from dispatch.cases import service
from dispatch.cases.service import CaseDetail, CaseList
from dispatch.common.endpoints import Limit, acting
from dispatch.staff.permissions import CASE_READ, requires

router = APIRouter(prefix="/api/v1/cases", tags=["cases"])
Staff = acting(requires(CASE_READ))


@router.get("", response_model=CaseList)
async def list_cases(
    caller: Staff,
    state: Annotated[str | None, Query(max_length=20)] = None,
    limit: Limit = 50,
    before_id: Annotated[int | None, Query(ge=1)] = None,
) -> CaseList:
    """Newest first, in the caller's scope. No personal data in the list."""
    return await caller.run(service.list_cases, state=state, limit=limit, before_id=before_id)


@router.get("/{case_id}", response_model=CaseDetail)
async def get_case(case_id: int, caller: Staff) -> CaseDetail:
    return await caller.run(service.get_case, case_id=case_id)
