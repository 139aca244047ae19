"""Staff API for cases: list and read, scoped and audited (the operations:
`dispatch.cases.service`; workflow events live beside it)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from channels.web import in_transaction
from dispatch.cases import service
from dispatch.cases.service import CaseDetail, CaseList
from dispatch.staff.auth import Principal
from dispatch.staff.permissions import CASE_READ, requires

router = APIRouter(prefix="/api/v1/cases", tags=["cases"])
STAFF = requires(CASE_READ)


@router.get("", response_model=CaseList)
async def list_cases(
    request: Request,
    principal: Annotated[Principal, Depends(STAFF)],
    state: Annotated[str | None, Query(max_length=20)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before_id: Annotated[int | None, Query(ge=1)] = None,
) -> CaseList:
    """Newest first, in the caller's scope. No personal data in the list."""
    return await in_transaction(
        request, service.list_cases, principal=principal, state=state, limit=limit,
        before_id=before_id
    )


@router.get("/{case_id}", response_model=CaseDetail)
async def get_case(
    request: Request,
    case_id: int,
    principal: Annotated[Principal, Depends(STAFF)],
) -> CaseDetail:
    return await in_transaction(request, service.get_case, principal=principal, case_id=case_id)
